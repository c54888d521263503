package homeserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/matrix/matrixtest/clocktest"
)

const testScopeDevice = "urn:matrix:client:device:OAUTHDEV0001"
const testScope = scopeAPI + " " + testScopeDevice

// form posts an application/x-www-form-urlencoded body to path.
func (c *tclient) form(path string, v url.Values) resp {
	c.t.Helper()
	res, err := c.hc.PostForm(c.s.URL()+path, v)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func delegatedServer(t *testing.T, opt Options) (*Server, *tclient, *clocktest.Clock) {
	clk := newClock()
	opt.Delegated, opt.Now = true, clk.Now
	s, c := newServer(t, opt)
	s.AddUser("alice", "wonderland")
	return s, c, clk
}

// register registers a native public client like the spec's example.
func register(c *tclient, grants ...string) resp {
	c.t.Helper()
	return c.do("POST", "/auth/oauth2/registration", "", map[string]any{
		"client_name": "test", "client_uri": "https://client.example.org/", "application_type": "native",
		"token_endpoint_auth_method": "none", "grant_types": grants,
		"redirect_uris": []string{"http://127.0.0.1/callback"}, "response_types": []string{"code"},
	})
}

func expectOAuthErr(t *testing.T, r resp, code string) {
	t.Helper()
	if r.str("error") != code {
		t.Fatalf("got %d %s, want error %s", r.status, r.raw, code)
	}
}

// aliceAnswers is alice's answer on the pages: she signs in if asked and
// decides d on a consent page that must name the test device.
func aliceAnswers(d browsertest.Decision) browsertest.Answer {
	return browsertest.Answer{User: "alice", Password: "wonderland", Decision: d, Device: "OAUTHDEV0001"}
}

func TestDelegatedDeviceGrant(t *testing.T) {
	s, c, clk := delegatedServer(t, Options{})
	meta := c.do("GET", "/_matrix/client/v1/auth_metadata", "", nil)
	if meta.status != 200 || meta.str("issuer") != s.Issuer() || meta.str("account_management_uri") == "" {
		t.Fatalf("auth_metadata: %d %s", meta.status, meta.raw)
	}
	oidc := c.do("GET", "/auth/.well-known/openid-configuration", "", nil)
	if oidc.str("device_authorization_endpoint") != s.URL()+"/auth/oauth2/device" || oidc.str("issuer") != s.Issuer() {
		t.Fatalf("openid-configuration: %s", oidc.raw)
	}
	if r := c.do("GET", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata", "", nil); r.str("issuer") != s.Issuer() {
		t.Fatalf("unstable auth_metadata: %s", r.raw)
	}
	reg := register(c, grantDeviceCode, grantRefresh)
	if reg.status != 201 || reg.str("client_id") == "" {
		t.Fatalf("registration: %d %s", reg.status, reg.raw)
	}
	client := reg.str("client_id")
	if r := c.form("/auth/oauth2/device", url.Values{"client_id": {client}, "scope": {scopeAPI + " openid"}}); r.str("error") != "invalid_scope" {
		t.Fatalf("bad scope accepted: %s", r.raw)
	}
	da := c.form("/auth/oauth2/device", url.Values{"client_id": {client}, "scope": {testScope}})
	code := da.str("user_code")
	if da.status != 200 || !regexp.MustCompile(`^[A-Z0-9]{6}$`).MatchString(code) || da.num("expires_in") != 1200 ||
		da.num("interval") != 5 || da.str("verification_uri") != s.URL()+"/auth/link" || da.body["verification_uri_complete"] != nil {
		t.Fatalf("device authorization: %s", da.raw)
	}
	poll := url.Values{"grant_type": {grantDeviceCode}, "device_code": {da.str("device_code")}, "client_id": {client}}
	expectOAuthErr(t, c.form("/auth/oauth2/token", poll), "authorization_pending")
	expectOAuthErr(t, c.form("/auth/oauth2/token", poll), "slow_down")
	clk.Advance(11 * time.Second)
	expectOAuthErr(t, c.form("/auth/oauth2/token", poll), "authorization_pending")

	browsertest.New(t).AnswerDevice(da.str("verification_uri"), strings.ToLower(code), aliceAnswers(browsertest.Approve))
	clk.Advance(20 * time.Second)
	tok := c.form("/auth/oauth2/token", poll)
	if tok.status != 200 || tok.str("access_token") == "" || tok.str("refresh_token") == "" || tok.num("expires_in") != 300 {
		t.Fatalf("token: %d %s", tok.status, tok.raw)
	}
	who := c.whoami(tok.str("access_token"))
	if who.str("user_id") != "@alice:"+s.ServerName() || who.str("device_id") != "OAUTHDEV0001" {
		t.Fatalf("whoami: %s", who.raw)
	}
	if got := s.Devices("@alice:" + s.ServerName()); len(got) != 1 || got[0] != "OAUTHDEV0001" {
		t.Fatalf("devices = %v", got)
	}
	expectOAuthErr(t, c.form("/auth/oauth2/token", poll), "invalid_grant") // a device code is single-use
	expectOAuthErr(t, c.form("/auth/oauth2/token", url.Values{"grant_type": {"password"}, "client_id": {client}}), "unsupported_grant_type")

	// Introspection needs the homeserver's credential and reports the device scope.
	if r := c.form("/auth/oauth2/introspect", url.Values{"token": {tok.str("access_token")}}); r.status != 401 {
		t.Fatalf("introspection without credential: %d %s", r.status, r.raw)
	}
	req, _ := http.NewRequest("POST", s.URL()+"/auth/oauth2/introspect", strings.NewReader(url.Values{"token": {tok.str("access_token")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+s.IntrospectionCredential())
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var intro map[string]any
	_ = json.NewDecoder(res.Body).Decode(&intro)
	res.Body.Close()
	if intro["active"] != true || intro["sub"] != "@alice:"+s.ServerName() || intro["username"] != "alice" || intro["scope"] != testScope {
		t.Fatalf("introspection: %v", intro)
	}
	// Expired access tokens are inactive.
	clk.Advance(301 * time.Second)
	expectUnknownToken(t, c.whoami(tok.str("access_token")), false)

	// Faults and the request log see the authorization server's endpoints too.
	s.InjectFault(Fault{PathPrefix: "/auth/oauth2/token", Status: 503, Body: `{"error":"temporarily_unavailable"}`})
	if r := c.form("/auth/oauth2/token", poll); r.status != 503 {
		t.Fatalf("fault not applied: %d %s", r.status, r.raw)
	}
	var sawFault bool
	for _, e := range s.Requests() {
		sawFault = sawFault || (e.Path == "/auth/oauth2/token" && e.Fault == "status" && e.Status == 503)
	}
	if !sawFault {
		t.Fatal("the faulted token request is missing from the request log")
	}
}

func TestDelegatedDeviceGrantDeniedAndExpired(t *testing.T) {
	_, c, clk := delegatedServer(t, Options{VerificationURIComplete: true, DeviceInterval: time.Second})
	client := register(c, grantDeviceCode).str("client_id")
	da := c.form("/auth/oauth2/device", url.Values{"client_id": {client}, "scope": {testScope}})
	if da.num("interval") != 1 || !strings.HasSuffix(da.str("verification_uri_complete"), "?code="+da.str("user_code")) {
		t.Fatalf("device authorization: %s", da.raw)
	}
	browsertest.New(t).AnswerDevice(da.str("verification_uri"), da.str("user_code"), aliceAnswers(browsertest.Deny))
	poll := url.Values{"grant_type": {grantDeviceCode}, "device_code": {da.str("device_code")}, "client_id": {client}}
	expectOAuthErr(t, c.form("/auth/oauth2/token", poll), "access_denied")

	da = c.form("/auth/oauth2/device", url.Values{"client_id": {client}, "scope": {testScope}})
	clk.Advance(1201 * time.Second)
	poll.Set("device_code", da.str("device_code"))
	expectOAuthErr(t, c.form("/auth/oauth2/token", poll), "expired_token")
}

func TestDelegatedDeviceGrantDisabled(t *testing.T) {
	_, c, _ := delegatedServer(t, Options{DeviceGrantDisabled: true})
	reg := register(c, grantAuthCode, grantRefresh, grantDeviceCode)
	if reg.status != 201 {
		t.Fatalf("registration: %d %s", reg.status, reg.raw)
	}
	for _, g := range reg.body["grant_types"].([]any) {
		if g == grantDeviceCode {
			t.Fatalf("device grant still granted: %s", reg.raw)
		}
	}
	r := c.form("/auth/oauth2/device", url.Values{"client_id": {reg.str("client_id")}, "scope": {testScope}})
	expectOAuthErr(t, r, "unauthorized_client")
	// MAS refuses a localhost client_uri.
	bad := c.do("POST", "/auth/oauth2/registration", "", map[string]any{"client_uri": "https://localhost/", "grant_types": []string{grantDeviceCode}})
	expectOAuthErr(t, bad, "invalid_client_metadata")
}

// callback is the client's loopback redirect listener.
func callback(t *testing.T) (string, chan url.Values) {
	got := make(chan url.Values, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		_, _ = io.WriteString(w, "done")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/callback", got
}

func TestDelegatedCodeFlowPKCE(t *testing.T) {
	s, c, _ := delegatedServer(t, Options{})
	client := register(c, grantAuthCode, grantRefresh).str("client_id")
	redirect, got := callback(t)
	verifier := randomString(64, alnum)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "response_mode": {"query"}, "client_id": {client},
		"redirect_uri": {redirect}, "scope": {testScope}, "state": {"st<ate>&1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	b := browsertest.New(t)
	b.Authorize(s.URL()+"/auth/authorize?"+q.Encode(), aliceAnswers(browsertest.Approve))
	cb := <-got
	if cb.Get("state") != "st<ate>&1" || cb.Get("code") == "" {
		t.Fatalf("callback: %v", cb)
	}
	exchange := url.Values{"grant_type": {grantAuthCode}, "code": {cb.Get("code")}, "redirect_uri": {redirect},
		"client_id": {client}, "code_verifier": {"wrong" + verifier}}
	expectOAuthErr(t, c.form("/auth/oauth2/token", exchange), "invalid_grant")

	// A fresh consent (the browser is already signed in: no user to sign in
	// as); the right verifier works once.
	signedIn := browsertest.Answer{Decision: browsertest.Approve, Device: "OAUTHDEV0001"}
	b.Authorize(s.URL()+"/auth/authorize?"+q.Encode(), signedIn)
	cb = <-got
	exchange.Set("code", cb.Get("code"))
	exchange.Set("code_verifier", verifier)
	tok := c.form("/auth/oauth2/token", exchange)
	if tok.status != 200 || c.whoami(tok.str("access_token")).str("device_id") != "OAUTHDEV0001" {
		t.Fatalf("token: %d %s", tok.status, tok.raw)
	}
	expectOAuthErr(t, c.form("/auth/oauth2/token", exchange), "invalid_grant")

	// Denial is reported to the redirect URI with the state.
	signedIn.Decision = browsertest.Deny
	b.Authorize(s.URL()+"/auth/authorize?"+q.Encode(), signedIn)
	if cb = <-got; cb.Get("error") != "access_denied" || cb.Get("state") != "st<ate>&1" {
		t.Fatalf("denied callback: %v", cb)
	}
	// A wrong scope goes back as invalid_scope.
	q.Set("scope", scopeAPI)
	b.Get(s.URL() + "/auth/authorize?" + q.Encode())
	if cb = <-got; cb.Get("error") != "invalid_scope" {
		t.Fatalf("scope callback: %v", cb)
	}
}

// deviceTokens signs in with the device grant and returns the token reply.
func deviceTokens(t *testing.T, c *tclient, client string) resp {
	da := c.form("/auth/oauth2/device", url.Values{"client_id": {client}, "scope": {testScope}})
	browsertest.New(t).AnswerDevice(da.str("verification_uri"), da.str("user_code"), aliceAnswers(browsertest.Approve))
	return c.form("/auth/oauth2/token", url.Values{"grant_type": {grantDeviceCode}, "device_code": {da.str("device_code")}, "client_id": {client}})
}

func TestDelegatedRefreshRotationAndReplay(t *testing.T) {
	_, c, _ := delegatedServer(t, Options{OAuthAccessLifetime: 2 * time.Minute})
	client := register(c, grantDeviceCode, grantRefresh).str("client_id")
	first := deviceTokens(t, c, client)
	refresh := func(rt string) resp {
		return c.form("/auth/oauth2/token", url.Values{"grant_type": {grantRefresh}, "refresh_token": {rt}, "client_id": {client}})
	}
	second := refresh(first.str("refresh_token"))
	if second.status != 200 || second.str("refresh_token") == first.str("refresh_token") || second.num("expires_in") != 120 {
		t.Fatalf("refresh: %s", second.raw)
	}
	// As MAS does, the refresh ended the access token of the pair it replaced.
	expectUnknownToken(t, c.whoami(first.str("access_token")), false)
	// The response was lost: the old refresh token works again while the
	// access token it produced is unused, and the lost pair dies.
	third := refresh(first.str("refresh_token"))
	if third.status != 200 {
		t.Fatalf("replay before use: %s", third.raw)
	}
	expectUnknownToken(t, c.whoami(second.str("access_token")), false)
	expectOAuthErr(t, refresh(second.str("refresh_token")), "invalid_grant")
	if c.whoami(third.str("access_token")).status != 200 {
		t.Fatal("rotated access token refused")
	}
	expectOAuthErr(t, refresh(first.str("refresh_token")), "invalid_grant")
	if r := refresh(third.str("refresh_token")); r.status != 200 {
		t.Fatalf("next rotation: %s", r.raw)
	}
}

func TestDelegatedRevocationEndsBothTokens(t *testing.T) {
	for _, which := range []string{"access_token", "refresh_token"} {
		t.Run(which, func(t *testing.T) {
			s, c, _ := delegatedServer(t, Options{})
			client := register(c, grantDeviceCode, grantRefresh).str("client_id")
			tok := deviceTokens(t, c, client)
			if c.whoami(tok.str("access_token")).status != 200 {
				t.Fatal("token refused before revocation")
			}
			if r := c.form("/auth/oauth2/revoke", url.Values{"token": {tok.str(which)}, "client_id": {client}}); r.status != 200 {
				t.Fatalf("revoke: %d %s", r.status, r.raw)
			}
			expectUnknownToken(t, c.whoami(tok.str("access_token")), false)
			r := c.form("/auth/oauth2/token", url.Values{"grant_type": {grantRefresh}, "refresh_token": {tok.str("refresh_token")}, "client_id": {client}})
			expectOAuthErr(t, r, "invalid_grant")
			if d := s.Devices("@alice:" + s.ServerName()); len(d) != 0 {
				t.Fatalf("device survived revocation: %v", d)
			}
		})
	}
}

func TestDelegatedRefusals(t *testing.T) {
	_, c, _ := delegatedServer(t, Options{})
	client := register(c, grantDeviceCode, grantRefresh).str("client_id")
	at := deviceTokens(t, c, client).str("access_token")
	expectErr(t, c.do("POST", "/_matrix/client/v1/login/get_token", at, map[string]any{}), 404, "M_UNRECOGNIZED")
	caps := c.do("GET", "/_matrix/client/v3/capabilities", at, nil)
	if glt, _ := caps.body["capabilities"].(map[string]any)["m.get_login_token"].(map[string]any); glt["enabled"] != false {
		t.Fatalf("capabilities: %s", caps.raw)
	}
	expectErr(t, c.do("DELETE", "/_matrix/client/v3/devices/OAUTHDEV0001", at, map[string]any{}), 404, "M_UNRECOGNIZED")
	expectErr(t, c.do("POST", "/_matrix/client/v3/delete_devices", at, map[string]any{"devices": []string{"OAUTHDEV0001"}}), 404, "M_UNRECOGNIZED")
	expectErr(t, c.do("POST", "/_matrix/client/v3/logout", at, map[string]any{}), 400, "M_UNRECOGNIZED")
	if c.whoami(at).status != 200 {
		t.Fatal("refused logout ended the session")
	}
	flows := c.do("GET", "/_matrix/client/v3/login", "", nil)
	if !strings.Contains(string(flows.raw), `"oauth_aware_preferred":true`) || strings.Contains(string(flows.raw), "m.login.password") {
		t.Fatalf("login flows: %s", flows.raw)
	}
	expectErr(t, c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "user": "alice", "password": "wonderland"}), 400, "M_UNKNOWN")
}

func TestDelegatedPasswordCompat(t *testing.T) {
	_, c, _ := delegatedServer(t, Options{PasswordCompat: true})
	flows := c.do("GET", "/_matrix/client/v3/login", "", nil)
	if !strings.Contains(string(flows.raw), "m.login.password") || !strings.Contains(string(flows.raw), "m.login.sso") {
		t.Fatalf("login flows: %s", flows.raw)
	}
	sess := c.login("alice", "wonderland", nil)
	if c.whoami(sess.access).status != 200 {
		t.Fatal("compat login token refused")
	}
}

func TestDelegatedPagesEscapeInput(t *testing.T) {
	s, _, _ := delegatedServer(t, Options{})
	page := browsertest.New(t).Get(s.URL() + "/auth/login?next=" + url.QueryEscape(`/auth/"><script>x</script>`)).Body
	if strings.Contains(page, "<script>") {
		t.Fatalf("unescaped input in page: %s", page)
	}
}

func TestDelegatedAccountManagementSignsOutDevice(t *testing.T) {
	s, c, _ := delegatedServer(t, Options{})
	client := register(c, grantDeviceCode, grantRefresh).str("client_id")
	tok := deviceTokens(t, c, client)
	if c.whoami(tok.str("access_token")).status != 200 {
		t.Fatal("token refused")
	}
	meta := c.do("GET", "/_matrix/client/v1/auth_metadata", "", nil)
	b := browsertest.New(t)
	confirm := b.Account(meta.str("account_management_uri")+"?action=org.matrix.device_delete&device_id=OAUTHDEV0001", "alice", "wonderland")
	if !strings.Contains(confirm.Body, "Sign out device OAUTHDEV0001?") {
		t.Fatalf("confirmation page: %s", confirm.Body)
	}
	if c.whoami(tok.str("access_token")).status != 200 {
		t.Fatal("the confirmation page alone signed the device out")
	}
	if page := b.Submit(confirm, nil).Body; !strings.Contains(page, "has been signed out") {
		t.Fatalf("result page: %s", page)
	}
	expectUnknownToken(t, c.whoami(tok.str("access_token")), false)
	r := c.form("/auth/oauth2/token", url.Values{"grant_type": {grantRefresh}, "refresh_token": {tok.str("refresh_token")}, "client_id": {client}})
	expectOAuthErr(t, r, "invalid_grant")
	if d := s.Devices("@alice:" + s.ServerName()); len(d) != 0 {
		t.Fatalf("device survived: %v", d)
	}
}

// TestDelegatedRevokingReplacedTokens: as MAS does, revoking a token a
// refresh already replaced (the refresh token redeemed, its access token
// ended) is answered 200 and ends nothing: the session goes on with the pair
// the refresh issued.
func TestDelegatedRevokingReplacedTokens(t *testing.T) {
	s, c, _ := delegatedServer(t, Options{OAuthAccessLifetime: 2 * time.Minute})
	client := register(c, grantDeviceCode, grantRefresh).str("client_id")
	first := deviceTokens(t, c, client)
	second := c.form("/auth/oauth2/token", url.Values{"grant_type": {grantRefresh}, "refresh_token": {first.str("refresh_token")}, "client_id": {client}})
	if second.status != 200 {
		t.Fatalf("refresh: %s", second.raw)
	}
	for _, which := range []string{"access_token", "refresh_token"} {
		if r := c.form("/auth/oauth2/revoke", url.Values{"token": {first.str(which)}, "client_id": {client}}); r.status != 200 {
			t.Fatalf("revoke the replaced %s: %d %s", which, r.status, r.raw)
		}
	}
	if c.whoami(second.str("access_token")).status != 200 || len(s.Devices("@alice:"+s.ServerName())) != 1 {
		t.Fatal("revoking replaced tokens ended the session")
	}
}
