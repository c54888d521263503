package matrix

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestLoginFlows(t *testing.T) {
	w := newWire(t)
	w.reply("GET", "/_matrix/client/v3/login", 200, `{"flows":[{"type":"m.login.password"},{"type":"m.login.token","get_login_token":true},{"type":"m.login.sso","identity_providers":[{"id":"oidc","name":"Corp"}]}]}`)
	f, err := w.client(t).LoginFlows(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Supports(LoginTypePassword) || !f.Supports(LoginTypeSSO) || f.Supports("m.login.dummy") || !f.AdvertisesGetLoginToken() || f.OAuthOnly() {
		t.Fatalf("flows = %+v", f)
	}
	if len(f.Flows[2].IdentityProviders) != 1 || f.Flows[2].IdentityProviders[0].Name != "Corp" {
		t.Fatalf("identity providers = %+v", f.Flows[2])
	}
	unstable := &LoginFlowsResponse{Flows: []LoginFlow{{Type: LoginTypeToken, UnstableGetLoginToken: true}}}
	if !unstable.AdvertisesGetLoginToken() {
		t.Fatal("unstable flag not seen")
	}
	notOnToken := &LoginFlowsResponse{Flows: []LoginFlow{{Type: LoginTypePassword, GetLoginToken: true}}}
	if notOnToken.AdvertisesGetLoginToken() {
		t.Fatal("flag outside m.login.token counted")
	}
	oauth := &LoginFlowsResponse{Flows: []LoginFlow{{Type: LoginTypeSSO, OAuthAwarePreferred: true}}}
	if !oauth.OAuthOnly() {
		t.Fatal("oauth_aware_preferred not seen")
	}
	var nilFlows *LoginFlowsResponse
	if nilFlows.Supports(LoginTypePassword) || nilFlows.AdvertisesGetLoginToken() || nilFlows.OAuthOnly() {
		t.Fatal("nil flows claim support")
	}

	// OAuth-only server: GET /login 404.
	w.reply("GET", "/_matrix/client/v3/login", 404, `{"errcode":"M_UNRECOGNIZED","error":"OAuth 2.0 authentication is in use on this homeserver."}`)
	_, err = w.client(t).LoginFlows(testCtx(t))
	if !IsUnsupported(err) || IsTransient(err) {
		t.Fatalf("OAuth-only: %v", err)
	}
	w.reply("GET", "/_matrix/client/v3/login", 200, `{}`)
	if _, err = w.client(t).LoginFlows(testCtx(t)); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("no flows: %v", err)
	}
}

func TestPasswordLoginRequestAndReply(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/_matrix/client/v3/login", 200, `{"user_id":"@alice:example.org","access_token":"syt_access","refresh_token":"syr_refresh","expires_in_ms":300000,"device_id":"DEV1","home_server":"example.org","well_known":{"m.homeserver":{"base_url":"https://matrix.example.org/"},"m.identity_server":{"base_url":"https://id.example.org"}}}`)
	at := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	c := w.client(t, WithClock(func() time.Time { return at }))
	req := PasswordLogin("@alice:example.org", "hunter2-password")
	req.DeviceID = "DEV1"
	req.InitialDeviceDisplayName = "mxauth on laptop"
	resp, err := c.Login(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	body := w.last(t).bodyMap(t)
	want := map[string]any{
		"type":                        "m.login.password",
		"identifier":                  map[string]any{"type": "m.id.user", "user": "@alice:example.org"},
		"password":                    "hunter2-password",
		"device_id":                   "DEV1",
		"initial_device_display_name": "mxauth on laptop",
		"refresh_token":               true,
	}
	if gb, wb := mustJSON(t, body), mustJSON(t, want); gb != wb {
		t.Fatalf("body = %s\nwant %s", gb, wb)
	}
	if w.last(t).Header.Get("Authorization") != "" {
		t.Fatal("login sent an Authorization header")
	}
	if resp.UserID != "@alice:example.org" || resp.DeviceID != "DEV1" || resp.AccessToken.Reveal() != "syt_access" || resp.RefreshToken.Reveal() != "syr_refresh" || resp.HomeServer != "example.org" {
		t.Fatalf("resp = %+v", resp)
	}
	if resp.WellKnown == nil || resp.WellKnown.Homeserver.BaseURL != "https://matrix.example.org/" || resp.WellKnown.IdentityServer.BaseURL != "https://id.example.org" {
		t.Fatalf("well_known = %+v", resp.WellKnown)
	}
	ts := resp.Tokens()
	if !ts.IssuedAt.Equal(at) || !ts.ExpiresAt.Equal(at.Add(5*time.Minute)) || ts.AccessToken != "syt_access" || ts.RefreshToken != "syr_refresh" {
		t.Fatalf("tokens = %+v", ts)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTokenLoginAndNoExpiry(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/_matrix/client/v3/login", 200, `{"user_id":"@a:hs","access_token":"at","device_id":"D","well_known":{"m.homeserver":"broken"},"home_server":7}`)
	resp, err := w.client(t).Login(testCtx(t), TokenLogin("login-token-xyz"))
	if err != nil {
		t.Fatalf("a malformed optional well_known must not fail the login: %v", err)
	}
	if resp.WellKnown != nil || resp.HomeServer != "" {
		t.Fatalf("malformed hints kept: %+v", resp)
	}
	body := w.last(t).bodyMap(t)
	if body["type"] != "m.login.token" || body["token"] != "login-token-xyz" || body["refresh_token"] != true || body["identifier"] != nil || body["password"] != nil {
		t.Fatalf("token login body = %v", body)
	}
	ts := resp.Tokens()
	if ts.Expires() || !ts.RefreshToken.IsZero() {
		t.Fatalf("no expires_in_ms must mean no expiry: %+v", ts)
	}
}

func TestLoginRequestChecks(t *testing.T) {
	w := newWire(t)
	c := w.client(t)
	bad := []LoginRequest{
		{},
		{Type: LoginTypePassword, Password: "x"},
		{Type: LoginTypePassword, Identifier: &UserIdentifier{Type: IdentifierUser, User: "u"}},
		{Type: LoginTypeToken},
	}
	for _, r := range bad {
		if _, err := c.Login(testCtx(t), r); err == nil {
			t.Errorf("Login(%+v) accepted", r)
		}
	}
	if n := len(w.requests()); n != 0 {
		t.Fatalf("%d invalid requests reached the server", n)
	}
}

func TestLoginErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		header []string
		check  func(error) bool
	}{
		{"wrong password", 403, `{"errcode":"M_FORBIDDEN","error":"Invalid username or password"}`, nil, IsForbidden},
		{"deactivated", 403, `{"errcode":"M_USER_DEACTIVATED","error":"This account has been deactivated"}`, nil, IsUserDeactivated},
		{"locked", 401, `{"errcode":"M_USER_LOCKED","error":"locked","soft_logout":true}`, nil, func(e error) bool { return IsUserLocked(e) && IsSoftLogout(e) && !IsUnknownToken(e) }},
		{"rate limited both", 429, `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1500}`, []string{"Retry-After", "2"}, func(e error) bool {
			d, ok := RetryAfter(e)
			return IsLimitExceeded(e) && ok && d == 2*time.Second
		}},
		{"bad type", 400, `{"errcode":"M_UNKNOWN","error":"Bad login type."}`, nil, func(e error) bool { return !IsTransient(e) && !IsForbidden(e) }},
		{"oauth only", 404, `{"errcode":"M_UNRECOGNIZED"}`, nil, IsUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(t)
			w.reply("POST", "/_matrix/client/v3/login", c.status, c.body, c.header...)
			_, err := w.client(t).Login(testCtx(t), PasswordLogin("@a:hs", "pw-123456"))
			var e *Error
			if !errors.As(err, &e) || e.Status != c.status || e.Endpoint != "POST /_matrix/client/v3/login" {
				t.Fatalf("err = %#v", err)
			}
			if !c.check(err) {
				t.Fatalf("predicate failed for %v", err)
			}
		})
	}
}

func TestFollowWellKnown(t *testing.T) {
	home := newWire(t)
	other := newWire(t)
	other.reply("GET", "/_matrix/client/versions", 200, versionsBody)
	c := home.client(t)
	ctx := testCtx(t)
	wk := func(u string) *WellKnown {
		w := &WellKnown{}
		w.Homeserver.BaseURL = u
		return w
	}
	if nc, changed, err := c.FollowWellKnown(ctx, nil); nc != c || changed || err != nil {
		t.Fatal("nil well_known changed something")
	}
	if nc, changed, err := c.FollowWellKnown(ctx, wk(home.URL+"/")); nc != c || changed || err != nil {
		t.Fatal("same base URL changed something")
	}
	nc, changed, err := c.FollowWellKnown(ctx, wk(other.URL+"/"))
	if err != nil || !changed || nc.BaseURL() != other.URL || c.BaseURL() != home.URL {
		t.Fatalf("switch: %v %v %v", nc.BaseURL(), changed, err)
	}
	// A base URL that does not answer /versions is not taken.
	if nc, changed, err := c.FollowWellKnown(ctx, wk(home.URL+"/nowhere")); nc != c || changed || discoveryOutcome(t, err) != DiscoveryFailError {
		t.Fatalf("dead base: %v %v", changed, err)
	}
	empty := newWire(t)
	empty.reply("GET", "/_matrix/client/versions", 200, `{"versions":[]}`)
	if _, changed, err := c.FollowWellKnown(ctx, wk(empty.URL)); changed || err == nil {
		t.Fatal("empty versions accepted")
	}
	if nc, changed, err := c.FollowWellKnown(ctx, wk("http://example.org")); nc != c || changed || err == nil {
		t.Fatal("insecure base accepted")
	}
}

func TestMsToDuration(t *testing.T) {
	if msToDuration(-5) != 0 || msToDuration(0) != 0 || msToDuration(1500) != 1500*time.Millisecond {
		t.Fatal("small values")
	}
	if d := msToDuration(1 << 62); d <= 0 || d < 50*365*24*time.Hour {
		t.Fatalf("huge value overflowed: %v", d)
	}
	if !deadline(time.Time{}, nil).IsZero() {
		t.Fatal("nil lifetime has a deadline")
	}
}
