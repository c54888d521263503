package homeserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const getTokenPath = "/_matrix/client/v1/login/get_token"

// expectChallenge checks a 401 UIA body and returns its session.
func expectChallenge(t *testing.T, r resp, stages ...string) string {
	t.Helper()
	flows, _ := r.body["flows"].([]any)
	if r.status != 401 || len(flows) != 1 {
		t.Fatalf("want UIA challenge, got %d %s", r.status, r.raw)
	}
	f, _ := flows[0].(map[string]any)
	if got := strings.Join(toStrings(f["stages"]), ","); got != strings.Join(stages, ",") {
		t.Fatalf("stages = %s, want %v", got, stages)
	}
	if _, ok := r.body["params"].(map[string]any); !ok {
		t.Fatalf("params missing: %s", r.raw)
	}
	if r.str("session") == "" {
		t.Fatalf("session missing: %s", r.raw)
	}
	return r.str("session")
}

func TestGetLoginToken(t *testing.T) {
	clk := newClock()
	s, c := newServer(t, Options{Now: clk.Now})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)

	expectErr(t, c.do("POST", getTokenPath, a.access, ""), 400, "M_NOT_JSON")
	expectErr(t, c.do("POST", getTokenPath, "", "{}"), 401, "M_MISSING_TOKEN")
	expectUnknownToken(t, c.do("POST", getTokenPath, "syt_nope", "{}"), false)

	sid := expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
	if c.do("POST", getTokenPath, a.access, "{}").str("session") == sid {
		t.Fatal("session IDs repeat")
	}

	// Wrong password: 401 with the same session and M_FORBIDDEN.
	r := c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "nope"))
	if expectChallenge(t, r, "m.login.password") != sid || r.str("errcode") != "M_FORBIDDEN" || r.str("error") != "Invalid username or password" {
		t.Fatalf("wrong password: %s", r.raw)
	}
	// Someone else's correct password is refused.
	s.AddUser("bob", "bobpw")
	expectErr(t, c.do("POST", getTokenPath, a.access, passwordAuth(sid, "bob", "bobpw")), 403, "M_FORBIDDEN")
	expectErr(t, c.do("POST", getTokenPath, a.access, passwordAuth("nosuchsession", alice, "pw")), 400, "M_UNKNOWN")
	// The same session on another operation is refused.
	expectErr(t, c.do("DELETE", "/_matrix/client/v3/devices/"+a.deviceID, a.access, passwordAuth(sid, alice, "pw")), 403, "M_FORBIDDEN")

	r = c.do("POST", getTokenPath, a.access, passwordAuth(sid, "alice", "pw"))
	if r.status != 200 || len(r.str("login_token")) < 32 || r.num("expires_in_ms") != 120000 || r.num("expires_in") != 120 {
		t.Fatalf("get_token: %d %s", r.status, r.raw)
	}
	tok := r.str("login_token")
	// The session is used up.
	expectErr(t, c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw")), 400, "M_UNKNOWN")

	// The token logs a new device in, once.
	tl := map[string]any{"type": "m.login.token", "token": tok}
	r = c.do("POST", "/_matrix/client/v3/login", "", tl)
	if r.status != 200 || r.str("user_id") != alice || r.str("device_id") == a.deviceID {
		t.Fatalf("token login: %d %s", r.status, r.raw)
	}
	expectErr(t, c.do("POST", "/_matrix/client/v3/login", "", tl), 403, "M_FORBIDDEN")
	expectErr(t, c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": "syl_bogus"}), 403, "M_FORBIDDEN")
	expectErr(t, c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token"}), 400, "M_MISSING_PARAM")

	// Expiry is checked against the server clock.
	sid = expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
	tok = c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw")).str("login_token")
	clk.Advance(2 * time.Minute)
	expectErr(t, c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": tok}), 403, "M_FORBIDDEN")

	// A token of a user deactivated meanwhile is refused.
	sid = expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
	tok = c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw")).str("login_token")
	s.SetUserDeactivated(alice, true)
	expectErr(t, c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": tok}), 403, "M_USER_DEACTIVATED")
}

func TestGetLoginTokenLifetimeAndCapabilities(t *testing.T) {
	s, c := newServer(t, Options{LoginTokenLifetime: 5 * time.Minute})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)
	r := c.do("GET", "/_matrix/client/v3/capabilities", a.access, nil)
	caps, _ := r.body["capabilities"].(map[string]any)
	glt, _ := caps["m.get_login_token"].(map[string]any)
	cp, _ := caps["m.change_password"].(map[string]any)
	if glt["enabled"] != true || cp["enabled"] != true {
		t.Fatalf("capabilities: %s", r.raw)
	}
	expectErr(t, c.do("GET", "/_matrix/client/v3/capabilities", "", nil), 401, "M_MISSING_TOKEN")
	sid := expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
	r = c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw"))
	if r.num("expires_in_ms") != 300000 || r.num("expires_in") != 300 {
		t.Fatalf("custom lifetime: %s", r.raw)
	}

	s, c = newServer(t, Options{NoGetToken: true})
	s.AddUser("alice", "pw")
	a = c.login("alice", "pw", nil)
	expectErr(t, c.do("POST", getTokenPath, a.access, "{}"), 404, "M_UNRECOGNIZED")
	r = c.do("GET", "/_matrix/client/r0/capabilities", a.access, nil)
	caps, _ = r.body["capabilities"].(map[string]any)
	if glt, _ := caps["m.get_login_token"].(map[string]any); glt["enabled"] != false {
		t.Fatalf("NoGetToken capabilities: %s", r.raw)
	}
	expectErr(t, c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.token", "token": "x"}), 400, "M_UNKNOWN")
}

func TestGetLoginTokenUnstableOnly(t *testing.T) {
	s, c := newServer(t, Options{GetTokenUnstableOnly: true})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)
	expectErr(t, c.do("POST", getTokenPath, a.access, "{}"), 404, "M_UNRECOGNIZED")
	for _, p := range []string{
		"/_matrix/client/unstable/org.matrix.msc3882/login/get_token",
		"/_matrix/client/unstable/org.matrix.msc3882/login/token",
	} {
		sid := expectChallenge(t, c.do("POST", p, a.access, "{}"), "m.login.password")
		// Switching paths mid-session is refused, as Synapse does.
		other := getTokenPath
		if strings.HasSuffix(p, "/token") {
			other = strings.TrimSuffix(p, "/token") + "/get_token"
		} else {
			other = strings.TrimSuffix(p, "/get_token") + "/token"
		}
		expectErr(t, c.do("POST", other, a.access, passwordAuth(sid, alice, "pw")), 403, "M_FORBIDDEN")
		r := c.do("POST", p, a.access, passwordAuth(sid, alice, "pw"))
		if r.status != 200 || r.str("login_token") == "" {
			t.Fatalf("%s: %d %s", p, r.status, r.raw)
		}
	}
	r := c.do("GET", "/_matrix/client/v3/capabilities", a.access, nil)
	caps, _ := r.body["capabilities"].(map[string]any)
	if u, _ := caps["org.matrix.msc3882.get_login_token"].(map[string]any); u["enabled"] != true {
		t.Fatalf("unstable capability: %s", r.raw)
	}
}

func expect429(t *testing.T, r resp, wantSecs string, minMS, maxMS float64) {
	t.Helper()
	expectErr(t, r, 429, "M_LIMIT_EXCEEDED")
	if got := r.header.Get("Retry-After"); got != wantSecs {
		t.Fatalf("Retry-After = %q, want %q", got, wantSecs)
	}
	if ms := r.num("retry_after_ms"); ms < minMS || ms > maxMS {
		t.Fatalf("retry_after_ms = %v, want %v..%v", ms, minMS, maxMS)
	}
}

func TestLoginTokenRateLimit(t *testing.T) {
	clk := newClock()
	s, c := newServer(t, Options{LoginTokenRateLimit: true, Now: clk.Now})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)
	mint := func() resp {
		sid := expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
		return c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw"))
	}
	if r := mint(); r.status != 200 {
		t.Fatalf("first mint: %s", r.raw)
	}
	clk.Advance(20*time.Second + 500*time.Millisecond)
	// The limit is checked after UIA: the challenge still comes first.
	sid := expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
	r := c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw"))
	expect429(t, r, "40", 39500, 39500)
	// The completed session survives: resending {session} after the wait works.
	clk.Advance(39500 * time.Millisecond)
	r = c.do("POST", getTokenPath, a.access, map[string]any{"auth": map[string]any{"session": sid}})
	if r.status != 200 || r.str("login_token") == "" {
		t.Fatalf("resend after wait: %d %s", r.status, r.raw)
	}
	// Another user is not affected.
	bob := s.AddUser("bob", "pw")
	b := c.login("bob", "pw", nil)
	sid = expectChallenge(t, c.do("POST", getTokenPath, b.access, "{}"), "m.login.password")
	if r := c.do("POST", getTokenPath, b.access, passwordAuth(sid, bob, "pw")); r.status != 200 {
		t.Fatalf("bob: %s", r.raw)
	}
}

func TestFailedLoginLimit(t *testing.T) {
	clk := newClock()
	s, c := newServer(t, Options{FailedLoginLimit: 2, Now: clk.Now})
	alice := s.AddUser("alice", "pw")
	pw := func(p string) resp {
		return c.do("POST", "/_matrix/client/v3/login", "", map[string]any{
			"type": "m.login.password", "identifier": map[string]any{"type": "m.id.user", "user": "alice"}, "password": p})
	}
	expectErr(t, pw("x"), 403, "M_FORBIDDEN")
	clk.Advance(10 * time.Second)
	expectErr(t, pw("y"), 403, "M_FORBIDDEN")
	// Even the right password waits until the oldest failure leaves the window.
	expect429(t, pw("pw"), "50", 50000, 50000)
	clk.Advance(50 * time.Second)
	if r := pw("pw"); r.status != 200 {
		t.Fatalf("after the window: %s", r.raw)
	}

	// UIA password failures count too.
	a := c.login(alice, "pw", nil)
	clk.Advance(time.Minute)
	sid := expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
	for i := 0; i < 2; i++ {
		r := c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "bad"))
		if r.status != 401 || r.str("errcode") != "M_FORBIDDEN" {
			t.Fatalf("attempt %d: %s", i, r.raw)
		}
	}
	expect429(t, c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw")), "60", 60000, 60000)
}

func TestFallbackStage(t *testing.T) {
	s, c := newServer(t, Options{})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)
	s.SetUIAStages(alice, "m.login.sso")

	sid := expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.sso")
	// A password cannot complete an SSO flow; resending too early is still a challenge.
	expectChallenge(t, c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw")), "m.login.sso")
	expectChallenge(t, c.do("POST", getTokenPath, a.access, map[string]any{"auth": map[string]any{"session": sid}}), "m.login.sso")

	fallback := "/_matrix/client/v3/auth/m.login.sso/fallback/web?session=" + url.QueryEscape(sid)
	r := c.do("GET", fallback, "", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.raw), "authDone") {
		t.Fatalf("fallback page: %d %s", r.status, r.raw)
	}
	r = c.do("POST", getTokenPath, a.access, map[string]any{"auth": map[string]any{"session": sid}})
	if r.status != 200 || r.str("login_token") == "" {
		t.Fatalf("resend after fallback: %d %s", r.status, r.raw)
	}

	// CompleteFallback does the same without a browser.
	sid = expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.sso")
	s.CompleteFallback(sid)
	r = c.do("POST", getTokenPath, a.access, map[string]any{"auth": map[string]any{"type": "m.login.sso", "session": sid}})
	if r.status != 200 {
		t.Fatalf("after CompleteFallback: %d %s", r.status, r.raw)
	}

	expectErr(t, c.do("GET", "/_matrix/client/v3/auth/m.login.sso/fallback/web?session=nope", "", nil), 400, "M_UNKNOWN")
	expectErr(t, c.do("GET", "/_matrix/client/v3/auth/m.login.sso/fallback/web", "", nil), 400, "M_MISSING_PARAM")
	sid = expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.sso")
	expectErr(t, c.do("GET", "/_matrix/client/v3/auth/m.login.recaptcha/fallback/web?session="+sid, "", nil), 400, "M_UNRECOGNIZED")

	// Back to the default password stage; its fallback is a form.
	s.SetUIAStages(alice)
	sid = expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
	page := "/_matrix/client/r0/auth/m.login.password/fallback/web?session=" + sid
	if r := c.do("GET", page, "", nil); r.status != 200 || !strings.Contains(string(r.raw), `type="password"`) {
		t.Fatalf("password fallback form: %s", r.raw)
	}
	post := func(pw string) string {
		res, err := c.hc.PostForm(s.URL()+page, url.Values{"password": {pw}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		buf := new(strings.Builder)
		_, _ = bufCopy(buf, res)
		return buf.String()
	}
	if body := post("wrong"); !strings.Contains(body, "Invalid username or password") {
		t.Fatalf("wrong password page: %s", body)
	}
	if body := post("pw"); !strings.Contains(body, "authDone") {
		t.Fatalf("right password page: %s", body)
	}
	if r := c.do("POST", getTokenPath, a.access, map[string]any{"auth": map[string]any{"session": sid}}); r.status != 200 {
		t.Fatalf("resend after password fallback: %s", r.raw)
	}
}

func bufCopy(b *strings.Builder, res *http.Response) (int64, error) {
	buf := make([]byte, 4096)
	var n int64
	for {
		k, err := res.Body.Read(buf)
		b.Write(buf[:k])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

func TestDeviceEndpoints(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"device_id": "AAA", "initial_device_display_name": "phone"})
	b := c.login("alice", "pw", map[string]any{"device_id": "BBB", "refresh_token": true})
	d := c.login("alice", "pw", map[string]any{"device_id": "CCC"})
	e := c.login("alice", "pw", map[string]any{"device_id": "DDD"})

	r := c.do("GET", "/_matrix/client/v3/devices", a.access, nil)
	list, _ := r.body["devices"].([]any)
	if r.status != 200 || len(list) != 4 {
		t.Fatalf("devices: %s", r.raw)
	}
	first, _ := list[0].(map[string]any)
	if first["device_id"] != "AAA" || first["display_name"] != "phone" || first["last_seen_ip"] != "127.0.0.1" || first["last_seen_ts"] == nil {
		t.Fatalf("device entry: %v", first)
	}
	expectErr(t, c.do("GET", "/_matrix/client/v3/devices/NOPE", a.access, nil), 404, "M_NOT_FOUND")
	if r := c.do("PUT", "/_matrix/client/v3/devices/CCC", a.access, map[string]any{"display_name": "tablet"}); r.status != 200 {
		t.Fatalf("rename: %s", r.raw)
	}
	if r := c.do("GET", "/_matrix/client/v3/devices/CCC", a.access, nil); r.str("display_name") != "tablet" {
		t.Fatalf("renamed device: %s", r.raw)
	}

	// DELETE /devices/{id}: a bodiless DELETE starts UIA.
	del := "/_matrix/client/v3/devices/BBB"
	sid := expectChallenge(t, c.do("DELETE", del, a.access, nil), "m.login.password")
	expectChallenge(t, c.do("DELETE", del, a.access, passwordAuth(sid, alice, "wrong")), "m.login.password")
	if r := c.do("DELETE", del, a.access, passwordAuth(sid, alice, "pw")); r.status != 200 {
		t.Fatalf("delete: %s", r.raw)
	}
	expectUnknownToken(t, c.whoami(b.access), false)
	expectUnknownToken(t, c.refresh(b.refresh), false)
	// Deleting a device that is already gone still succeeds (after UIA).
	sid = expectChallenge(t, c.do("DELETE", del, a.access, "{}"), "m.login.password")
	if r := c.do("DELETE", del, a.access, passwordAuth(sid, alice, "pw")); r.status != 200 {
		t.Fatalf("delete again: %s", r.raw)
	}

	// POST /delete_devices.
	dd := "/_matrix/client/v3/delete_devices"
	expectErr(t, c.do("POST", dd, a.access, "{}"), 400, "M_MISSING_PARAM")
	expectErr(t, c.do("POST", dd, a.access, ""), 400, "M_NOT_JSON")
	body := map[string]any{"devices": []string{"CCC", "DDD"}}
	sid = expectChallenge(t, c.do("POST", dd, a.access, body), "m.login.password")
	body["auth"] = passwordAuth(sid, alice, "pw")["auth"]
	if r := c.do("POST", dd, a.access, body); r.status != 200 {
		t.Fatalf("delete_devices: %s", r.raw)
	}
	expectUnknownToken(t, c.whoami(d.access), false)
	expectUnknownToken(t, c.whoami(e.access), false)
	if got := s.Devices(alice); len(got) != 1 || got[0] != "AAA" {
		t.Fatalf("Devices = %v", got)
	}
}

func TestUIASessionExpiry(t *testing.T) {
	clk := newClock()
	s, c := newServer(t, Options{Now: clk.Now})
	alice := s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)
	sid := expectChallenge(t, c.do("POST", getTokenPath, a.access, "{}"), "m.login.password")
	clk.Advance(47 * time.Hour)
	// Still known: a wrong password keeps the session.
	if r := c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "x")); r.str("session") != sid {
		t.Fatalf("session lost early: %s", r.raw)
	}
	clk.Advance(2 * time.Hour)
	expectErr(t, c.do("POST", getTokenPath, a.access, passwordAuth(sid, alice, "pw")), 400, "M_UNKNOWN")
	// A password stage without a session starts (and here completes) one.
	if r := c.do("POST", getTokenPath, a.access, passwordAuth("", alice, "pw")); r.status != 200 {
		t.Fatalf("sessionless password stage: %s", r.raw)
	}
}
