package homeserver

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDiscoveryAndVersions(t *testing.T) {
	s, c := newServer(t, Options{})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	if want := strings.TrimPrefix(s.URL(), "http://"); s.ServerName() != want {
		t.Fatalf("ServerName = %q, want %q", s.ServerName(), want)
	}
	if uid := s.AddUser("alice", "pw"); uid != "@alice:"+s.ServerName() {
		t.Fatalf("AddUser = %q", uid)
	}
	r := c.do("GET", "/.well-known/matrix/client", "", nil)
	hs, _ := r.body["m.homeserver"].(map[string]any)
	if r.status != 200 || hs["base_url"] != s.URL() {
		t.Fatalf("well-known: %d %s", r.status, r.raw)
	}
	r = c.do("GET", "/_matrix/client/versions", "", nil)
	vs := strings.Join(toStrings(r.body["versions"]), " ")
	if !strings.Contains(vs, "r0.6.1") || !strings.Contains(vs, "v1.1 ") || !strings.HasSuffix(vs, "v1.12") {
		t.Fatalf("versions = %q", vs)
	}
	if uf, _ := r.body["unstable_features"].(map[string]any); uf["org.matrix.msc3882"] == true {
		t.Fatalf("msc3882 advertised without the unstable path: %s", r.raw)
	}

	s2, c2 := newServer(t, Options{GetTokenUnstableOnly: true, ServerName: "example.test"})
	if s2.ServerName() != "example.test" || s2.AddUser("bob", "x") != "@bob:example.test" {
		t.Fatalf("custom server name not used")
	}
	r = c2.do("GET", "/_matrix/client/versions", "", nil)
	vs = strings.Join(toStrings(r.body["versions"]), " ")
	if !strings.HasSuffix(vs, "v1.6") || strings.Contains(vs, "v1.7") {
		t.Fatalf("unstable-only server must not claim v1.7+: %q", vs)
	}
	if uf, _ := r.body["unstable_features"].(map[string]any); uf["org.matrix.msc3882"] != true {
		t.Fatalf("msc3882 flag missing: %s", r.raw)
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestNewOnListenerUnspecifiedAddress(t *testing.T) {
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on 0.0.0.0:", err)
	}
	s := NewOnListener(l, Options{})
	defer s.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if s.URL() != "http://127.0.0.1:"+port {
		t.Fatalf("URL = %q", s.URL())
	}
	res, err := http.Get(s.URL() + "/_matrix/client/versions")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	s.Close()
	if _, err := http.Get(s.URL() + "/_matrix/client/versions"); err == nil {
		t.Fatal("server still answering after Close")
	}
}

func flowTypes(r resp) map[string]map[string]any {
	out := map[string]map[string]any{}
	list, _ := r.body["flows"].([]any)
	for _, f := range list {
		m, _ := f.(map[string]any)
		typ, _ := m["type"].(string)
		out[typ] = m
	}
	return out
}

func TestLoginFlows(t *testing.T) {
	_, c := newServer(t, Options{})
	for _, p := range []string{"/_matrix/client/v3/login", "/_matrix/client/r0/login"} {
		f := flowTypes(c.do("GET", p, "", nil))
		if f["m.login.password"] == nil || f["m.login.token"]["get_login_token"] != true {
			t.Fatalf("%s flows: %v", p, f)
		}
	}
	_, c = newServer(t, Options{NoGetToken: true})
	if f := flowTypes(c.do("GET", "/_matrix/client/v3/login", "", nil)); f["m.login.token"] != nil || f["m.login.password"] == nil {
		t.Fatalf("NoGetToken flows: %v", f)
	}
	_, c = newServer(t, Options{GetTokenUnstableOnly: true})
	f := flowTypes(c.do("GET", "/_matrix/client/v3/login", "", nil))
	if tf := f["m.login.token"]; tf["org.matrix.msc3882.get_login_token"] != true || tf["get_login_token"] != nil {
		t.Fatalf("unstable flows: %v", f)
	}
	s, c := newServer(t, Options{OAuthOnly: true})
	s.AddUser("alice", "pw")
	expectErr(t, c.do("GET", "/_matrix/client/v3/login", "", nil), 404, "M_UNRECOGNIZED")
	expectErr(t, c.do("POST", "/_matrix/client/v3/login", "", map[string]any{
		"type": "m.login.password", "user": "alice", "password": "pw"}), 404, "M_UNRECOGNIZED")
}

func TestPasswordLogin(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	alice := s.AddUser("alice", "secret")

	// Full MXID, localpart, and the deprecated top-level user all work.
	a := c.login(alice, "secret", nil)
	if a.userID != alice || a.deviceID == "" || !strings.HasPrefix(a.access, "syt_") {
		t.Fatalf("login: %+v", a)
	}
	if a.refresh != "" || a.expiresInMS != 0 {
		t.Fatal("refresh token or expiry without refresh_token:true")
	}
	b := c.login("alice", "secret", map[string]any{"refresh_token": true})
	if !strings.HasPrefix(b.refresh, "syr_") || b.expiresInMS != 60000 || b.deviceID == a.deviceID {
		t.Fatalf("refreshable login: %+v", b)
	}
	r := c.do("POST", "/_matrix/client/r0/login", "", map[string]any{"type": "m.login.password", "user": "alice", "password": "secret"})
	if r.status != 200 || r.str("user_id") != alice {
		t.Fatalf("legacy user login: %d %s", r.status, r.raw)
	}
	wk, _ := r.body["well_known"].(map[string]any)
	if hs, _ := wk["m.homeserver"].(map[string]any); hs["base_url"] != s.URL() {
		t.Fatalf("well_known missing: %s", r.raw)
	}
	if r.str("home_server") != s.ServerName() {
		t.Fatalf("home_server: %s", r.raw)
	}

	login := func(body any) resp { return c.do("POST", "/_matrix/client/v3/login", "", body) }
	pw := func(user, password string) map[string]any {
		return map[string]any{"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": user}, "password": password}
	}
	expectErr(t, login(pw("alice", "wrong")), 403, "M_FORBIDDEN")
	expectErr(t, login(pw("nobody", "secret")), 403, "M_FORBIDDEN")
	expectErr(t, login(pw("@alice:elsewhere.test", "secret")), 403, "M_FORBIDDEN")
	expectErr(t, login(""), 400, "M_NOT_JSON")
	expectErr(t, login("{not json"), 400, "M_NOT_JSON")
	expectErr(t, login("[1,2]"), 400, "M_BAD_JSON")
	expectErr(t, login(map[string]any{"password": "secret"}), 400, "M_MISSING_PARAM")
	expectErr(t, login(map[string]any{"type": "m.login.bogus"}), 400, "M_UNKNOWN")
	bad := pw("alice", "secret")
	bad["refresh_token"] = "true"
	expectErr(t, login(bad), 400, "M_INVALID_PARAM")
	bad = pw("alice", "secret")
	bad["identifier"] = map[string]any{"type": "m.id.weird"}
	expectErr(t, login(bad), 400, "M_INVALID_PARAM")
	bad["identifier"] = map[string]any{"type": "m.id.thirdparty", "medium": "email", "address": "a@b.c"}
	expectErr(t, login(bad), 403, "M_FORBIDDEN")

	s.SetUserDeactivated(alice, true)
	if len(s.Devices(alice)) != 0 {
		t.Fatal("deactivation kept devices")
	}
	expectUnknownToken(t, c.whoami(a.access), false)
	expectErr(t, login(pw("alice", "secret")), 403, "M_USER_DEACTIVATED")
	s.SetUserDeactivated(alice, false)
	c.login("alice", "secret", nil)
}

func TestLoginWithoutRefreshSupport(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute, NoRefresh: true})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"refresh_token": true})
	if a.refresh != "" || a.expiresInMS != 0 {
		t.Fatalf("NoRefresh handed out %+v", a)
	}
	expectErr(t, c.do("POST", "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": "x"}), 404, "M_UNRECOGNIZED")

	// Lifetime 0: refresh_token:true yields a non-expiring token and no refresh token.
	s, c = newServer(t, Options{})
	s.AddUser("alice", "pw")
	if a := c.login("alice", "pw", map[string]any{"refresh_token": true}); a.refresh != "" || a.expiresInMS != 0 {
		t.Fatalf("lifetime 0 handed out %+v", a)
	}

	// NonRefreshableLifetime: expires_in_ms without a refresh token.
	clk := newClock()
	s, c = newServer(t, Options{NonRefreshableLifetime: 30 * time.Second, Now: clk.Now})
	s.AddUser("alice", "pw")
	a = c.login("alice", "pw", nil)
	if a.refresh != "" || a.expiresInMS != 30000 {
		t.Fatalf("non-refreshable expiring login: %+v", a)
	}
	clk.Advance(30 * time.Second)
	expectUnknownToken(t, c.whoami(a.access), true)
}

func TestDeviceReuse(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"device_id": "MYDEVICE", "initial_device_display_name": "laptop", "refresh_token": true})
	if a.deviceID != "MYDEVICE" {
		t.Fatalf("device_id not echoed: %+v", a)
	}
	b := c.login("alice", "pw", map[string]any{"device_id": "MYDEVICE", "initial_device_display_name": "other", "refresh_token": true})
	if b.deviceID != "MYDEVICE" || b.access == a.access {
		t.Fatalf("reuse: %+v", b)
	}
	expectUnknownToken(t, c.whoami(a.access), false)
	expectUnknownToken(t, c.refresh(a.refresh), false)
	if r := c.whoami(b.access); r.status != 200 || r.str("device_id") != "MYDEVICE" || r.str("user_id") != alice {
		t.Fatalf("whoami: %s", r.raw)
	}
	r := c.do("GET", "/_matrix/client/v3/devices/MYDEVICE", b.access, nil)
	if r.str("display_name") != "laptop" {
		t.Fatalf("display name changed on reuse: %s", r.raw)
	}
	if got := s.Devices(alice); len(got) != 1 || got[0] != "MYDEVICE" {
		t.Fatalf("Devices = %v", got)
	}
	// Another user's device of the same ID is a different device.
	s.AddUser("bob", "pw")
	c.login("bob", "pw", map[string]any{"device_id": "MYDEVICE"})
	if c.whoami(b.access).status != 200 {
		t.Fatal("bob's login disturbed alice's device")
	}
}

func TestAccessTokenChecks(t *testing.T) {
	clk := newClock()
	s, c := newServer(t, Options{AccessTokenLifetime: 5 * time.Second, Now: clk.Now})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"refresh_token": true})

	expectErr(t, c.whoami(""), 401, "M_MISSING_TOKEN")
	// Query-string tokens are not accepted.
	expectErr(t, c.do("GET", "/_matrix/client/v3/account/whoami?access_token="+a.access, "", nil), 401, "M_MISSING_TOKEN")
	expectUnknownToken(t, c.whoami("syt_bogus"), false)

	clk.Advance(4999 * time.Millisecond)
	if r := c.whoami(a.access); r.status != 200 {
		t.Fatalf("token refused before expiry: %s", r.raw)
	}
	if s.ExpiredTokenUses() != 0 {
		t.Fatal("ExpiredTokenUses counted a valid use")
	}
	clk.Advance(time.Millisecond)
	expectUnknownToken(t, c.whoami(a.access), true)
	if s.ExpiredTokenUses() != 1 {
		t.Fatalf("ExpiredTokenUses = %d", s.ExpiredTokenUses())
	}
	log := s.Requests()
	last := log[len(log)-1]
	if !last.TokenExpired || last.Authenticated || last.Status != 401 || last.UserID != a.userID || last.DeviceID != a.deviceID {
		t.Fatalf("log entry: %+v", last)
	}
	// Refresh still works, and the new token is fine.
	r := c.refresh(a.refresh)
	if r.status != 200 {
		t.Fatalf("refresh: %s", r.raw)
	}
	if c.whoami(r.str("access_token")).status != 200 {
		t.Fatal("new token refused")
	}

	// ExpireTokens forces expiry without moving the clock.
	s.ExpireTokens(a.userID, a.deviceID)
	expectUnknownToken(t, c.whoami(r.str("access_token")), true)
}

func TestRefreshRotation(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"refresh_token": true})

	r1 := c.refresh(a.refresh)
	if r1.status != 200 || !strings.HasPrefix(r1.str("access_token"), "syt_") || !strings.HasPrefix(r1.str("refresh_token"), "syr_") || r1.num("expires_in_ms") != 60000 {
		t.Fatalf("refresh: %d %s", r1.status, r1.raw)
	}
	// The old access token runs on until the new refresh token is redeemed (Synapse).
	if c.whoami(a.access).status != 200 {
		t.Fatal("old access token died at the first refresh")
	}

	// The new pair is unused, so the old refresh token still works (lost response).
	r2 := c.refresh(a.refresh)
	if r2.status != 200 || r2.str("refresh_token") == r1.str("refresh_token") {
		t.Fatalf("replayed refresh: %d %s", r2.status, r2.raw)
	}
	// ...and the unused pair from the first attempt is gone.
	expectUnknownToken(t, c.whoami(r1.str("access_token")), false)
	expectUnknownToken(t, c.refresh(r1.str("refresh_token")), false)

	// Using the new access token supersedes the old refresh token: 403.
	if c.whoami(r2.str("access_token")).status != 200 {
		t.Fatal("new access token refused")
	}
	expectErr(t, c.refresh(a.refresh), 403, "M_FORBIDDEN")

	if c.whoami(a.access).status != 200 {
		t.Fatal("old access token died when the new one was used")
	}
	// Redeeming the new refresh token supersedes its predecessor and ends
	// the predecessor's access token.
	r3 := c.refresh(r2.str("refresh_token"))
	if r3.status != 200 {
		t.Fatalf("second-generation refresh: %s", r3.raw)
	}
	expectUnknownToken(t, c.whoami(a.access), false)
	if c.whoami(r2.str("access_token")).status != 200 {
		t.Fatal("access token of the redeemed refresh token died early")
	}
	r4 := c.refresh(r3.str("refresh_token"))
	if r4.status != 200 {
		t.Fatalf("third-generation refresh: %s", r4.raw)
	}
	expectErr(t, c.refresh(r2.str("refresh_token")), 403, "M_FORBIDDEN")
	if c.whoami(r4.str("access_token")).status != 200 {
		t.Fatal("latest token refused")
	}
	if r := c.whoami(r4.str("access_token")); r.str("device_id") != a.deviceID {
		t.Fatalf("refresh changed device: %s", r.raw)
	}
	if n := s.RefreshCount(); n != 4 {
		t.Fatalf("RefreshCount = %d, want 4", n)
	}

	expectUnknownToken(t, c.refresh("syr_unknown"), false)
	expectErr(t, c.do("POST", "/_matrix/client/v3/refresh", "", ""), 400, "M_NOT_JSON")
	expectErr(t, c.do("POST", "/_matrix/client/v3/refresh", "", map[string]any{}), 400, "M_MISSING_PARAM")
	expectErr(t, c.do("POST", "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": 5}), 400, "M_INVALID_PARAM")
	for _, p := range []string{"/_matrix/client/r0/refresh", "/_matrix/client/unstable/refresh"} {
		r := c.do("POST", p, "", map[string]any{"refresh_token": r4.str("refresh_token")})
		if r.status != 200 {
			t.Fatalf("%s: %s", p, r.raw)
		}
		r4 = r
	}
}

func TestSupersededMemoryIsBounded(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"refresh_token": true})
	rt := a.refresh
	var old []string
	for i := 0; i < 10; i++ {
		old = append(old, rt)
		r := c.refresh(rt)
		rt = r.str("refresh_token")
		c.whoami(r.str("access_token"))
	}
	// Recent generations answer 403; the oldest are forgotten (401).
	expectErr(t, c.refresh(old[len(old)-1]), 403, "M_FORBIDDEN")
	expectUnknownToken(t, c.refresh(old[0]), false)
	s.mu.Lock()
	n, live, access := len(s.superseded), len(s.refresh), len(s.access)
	s.mu.Unlock()
	if n > supersededKept || live != 1 || access > 2 {
		t.Fatalf("kept %d superseded, %d live refresh, %d access tokens", n, live, access)
	}
}

func TestSoftHardLogoutAndLock(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"refresh_token": true, "device_id": "DEV1"})

	s.SoftLogoutDevice(alice, "DEV1")
	expectUnknownToken(t, c.whoami(a.access), true)
	expectUnknownToken(t, c.refresh(a.refresh), true)
	if got := s.Devices(alice); len(got) != 1 {
		t.Fatalf("soft logout removed the device: %v", got)
	}
	// Signing in again on the same device revives it.
	b := c.login("alice", "pw", map[string]any{"refresh_token": true, "device_id": "DEV1"})
	if r := c.whoami(b.access); r.status != 200 || r.str("device_id") != "DEV1" {
		t.Fatalf("re-login: %s", r.raw)
	}
	expectUnknownToken(t, c.whoami(a.access), false)

	s.SetUserLocked(alice, true)
	for _, r := range []resp{c.whoami(b.access), c.refresh(b.refresh)} {
		expectErr(t, r, 401, "M_USER_LOCKED")
		if r.body["soft_logout"] != true {
			t.Fatalf("locked without soft_logout: %s", r.raw)
		}
	}
	s.SetUserLocked(alice, false)
	if c.whoami(b.access).status != 200 {
		t.Fatal("unlock did not restore access")
	}

	s.HardLogoutDevice(alice, "DEV1")
	expectUnknownToken(t, c.whoami(b.access), false)
	expectUnknownToken(t, c.refresh(b.refresh), false)
	if len(s.Devices(alice)) != 0 {
		t.Fatal("hard logout kept the device")
	}
}

func TestLogout(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"refresh_token": true})
	b := c.login("alice", "pw", nil)
	d := c.login("alice", "pw", nil)

	// Logout works on a locked account, with an empty body.
	s.SetUserLocked(alice, true)
	if r := c.do("POST", "/_matrix/client/v3/logout", a.access, nil); r.status != 200 {
		t.Fatalf("logout: %s", r.raw)
	}
	s.SetUserLocked(alice, false)
	expectUnknownToken(t, c.whoami(a.access), false)
	expectUnknownToken(t, c.refresh(a.refresh), false)
	if got := s.Devices(alice); len(got) != 2 {
		t.Fatalf("devices after logout: %v", got)
	}
	expectUnknownToken(t, c.do("POST", "/_matrix/client/v3/logout", a.access, "{}"), false)
	if r := c.do("POST", "/_matrix/client/v3/logout/all", b.access, "{}"); r.status != 200 {
		t.Fatalf("logout/all: %s", r.raw)
	}
	expectUnknownToken(t, c.whoami(d.access), false)
	if len(s.Devices(alice)) != 0 {
		t.Fatal("logout/all kept devices")
	}
}

func TestRoutingErrors(t *testing.T) {
	_, c := newServer(t, Options{})
	expectErr(t, c.do("GET", "/_matrix/client/v3/nope", "", nil), 404, "M_UNRECOGNIZED")
	expectErr(t, c.do("GET", "/_matrix/client/v1/auth_metadata", "", nil), 404, "M_UNRECOGNIZED")
	expectErr(t, c.do("GET", "/_matrix/client/v3/login/", "", nil), 404, "M_UNRECOGNIZED")
	r := c.do("PUT", "/_matrix/client/v3/login", "", "{}")
	expectErr(t, r, 405, "M_UNRECOGNIZED")
	if r.header.Get("Allow") != "GET, POST" {
		t.Fatalf("Allow = %q", r.header.Get("Allow"))
	}
	expectErr(t, c.do("GET", "/_matrix/client/v3/refresh", "", nil), 405, "M_UNRECOGNIZED")
	expectErr(t, c.do("GET", "/_matrix/client/v1/login/get_token", "", nil), 405, "M_UNRECOGNIZED")
	expectErr(t, c.do("POST", "/_matrix/client/v3/login/get_token", "", "{}"), 404, "M_UNRECOGNIZED")
}
