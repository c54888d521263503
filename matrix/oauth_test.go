package matrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// metadataJSON is valid metadata for an issuer at base, with edits applied
// (a nil value deletes the field).
func metadataJSON(t *testing.T, base string, edits map[string]any) string {
	t.Helper()
	m := map[string]any{
		"issuer":                           base + "/",
		"authorization_endpoint":           base + "/oauth2/auth",
		"token_endpoint":                   base + "/oauth2/token",
		"registration_endpoint":            base + "/oauth2/register",
		"revocation_endpoint":              base + "/oauth2/revoke",
		"device_authorization_endpoint":    base + "/oauth2/device",
		"response_types_supported":         []string{"code"},
		"grant_types_supported":            []string{GrantAuthorizationCode, GrantRefreshToken, GrantDeviceCode},
		"response_modes_supported":         []string{"query", "fragment"},
		"code_challenge_methods_supported": []string{"S256"},
	}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAuthMetadataStable(t *testing.T) {
	w := newWire(t)
	w.reply("GET", "/_matrix/client/v1/auth_metadata", 200, metadataJSON(t, w.URL, nil))
	m, err := w.client(t).AuthMetadata(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if m.TokenEndpoint != w.URL+"/oauth2/token" || !m.SupportsDeviceGrant() {
		t.Fatalf("metadata = %+v", m)
	}
	if n := len(w.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestAuthMetadataFallbackChain(t *testing.T) {
	// Unstable auth_metadata after a 404 M_UNRECOGNIZED on the stable path.
	w := newWire(t)
	w.reply("GET", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata", 200, metadataJSON(t, w.URL, map[string]any{"device_authorization_endpoint": nil}))
	m, err := w.client(t).AuthMetadata(testCtx(t))
	if err != nil || m.SupportsDeviceGrant() {
		t.Fatalf("unstable: %+v %v", m, err)
	}

	// Then auth_issuer and the issuer's OpenID Connect discovery document.
	w = newWire(t)
	w.reply("GET", "/_matrix/client/unstable/org.matrix.msc2965/auth_issuer", 200, `{"issuer":"`+w.URL+`/"}`)
	w.reply("GET", "/.well-known/openid-configuration", 200, metadataJSON(t, w.URL, nil))
	if _, err := w.client(t).AuthMetadata(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, r := range w.requests() {
		paths = append(paths, r.Path)
	}
	want := "/_matrix/client/v1/auth_metadata /_matrix/client/unstable/org.matrix.msc2965/auth_metadata /_matrix/client/unstable/org.matrix.msc2965/auth_issuer /.well-known/openid-configuration"
	if strings.Join(paths, " ") != want {
		t.Fatalf("paths %v", paths)
	}

	// The document must name the issuer the homeserver named.
	w.reply("GET", "/.well-known/openid-configuration", 200, metadataJSON(t, w.URL, map[string]any{"issuer": w.URL + "/other"}))
	if _, err := w.client(t).AuthMetadata(testCtx(t)); err == nil || !strings.Contains(err.Error(), "differs from the issuer") {
		t.Fatalf("issuer mismatch: %v", err)
	}

	// Nothing at all: unsupported, typed both ways.
	w = newWire(t)
	_, err = w.client(t).AuthMetadata(testCtx(t))
	if !errors.Is(err, ErrOAuthUnsupported) || !IsUnsupported(err) {
		t.Fatalf("legacy server: %v", err)
	}

	// An error from the unstable path names that path.
	w = newWire(t)
	w.reply("GET", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata", 200, metadataJSON(t, w.URL, map[string]any{"foo": 1, "issuer": 5}))
	if _, err = w.client(t).AuthMetadata(testCtx(t)); !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), "GET /_matrix/client/unstable/org.matrix.msc2965/auth_metadata: ") {
		t.Fatalf("unstable path error: %v", err)
	}

	// A failure that is not "unsupported" stops the chain: it is no proof of a legacy server.
	w = newWire(t)
	w.reply("GET", "/_matrix/client/v1/auth_metadata", 502, `bad gateway`)
	_, err = w.client(t).AuthMetadata(testCtx(t))
	if err == nil || errors.Is(err, ErrOAuthUnsupported) || !IsTransient(err) || len(w.requests()) != 1 {
		t.Fatalf("502: %v after %d requests", err, len(w.requests()))
	}
}

func TestAuthMetadataValidation(t *testing.T) {
	cases := []struct {
		name  string
		edits func(base string) map[string]any
		want  string
	}{
		{"no issuer", func(string) map[string]any { return map[string]any{"issuer": nil} }, "issuer is missing"},
		{"no token endpoint", func(string) map[string]any { return map[string]any{"token_endpoint": nil} }, "token_endpoint is missing"},
		{"no registration endpoint", func(string) map[string]any { return map[string]any{"registration_endpoint": nil} }, "registration_endpoint is missing"},
		{"no revocation endpoint", func(string) map[string]any { return map[string]any{"revocation_endpoint": nil} }, "revocation_endpoint is missing"},
		{"no authorization endpoint", func(string) map[string]any { return map[string]any{"authorization_endpoint": nil} }, "authorization_endpoint is missing"},
		{"no response types", func(string) map[string]any { return map[string]any{"response_types_supported": nil} }, "response_types_supported is missing"},
		{"no grant types", func(string) map[string]any { return map[string]any{"grant_types_supported": nil} }, "grant_types_supported is missing"},
		{"no response modes", func(string) map[string]any { return map[string]any{"response_modes_supported": nil} }, "response_modes_supported is missing"},
		{"no PKCE methods", func(string) map[string]any { return map[string]any{"code_challenge_methods_supported": nil} }, "code_challenge_methods_supported is missing"},
		{"no S256", func(string) map[string]any {
			return map[string]any{"code_challenge_methods_supported": []string{"plain"}}
		}, `code_challenge_methods_supported lacks "S256"`},
		{"no refresh grant", func(string) map[string]any {
			return map[string]any{"grant_types_supported": []string{GrantAuthorizationCode}}
		}, `grant_types_supported lacks "refresh_token"`},
		{"no code response", func(string) map[string]any { return map[string]any{"response_types_supported": []string{"token"}} }, `response_types_supported lacks "code"`},
		{"no fragment mode", func(string) map[string]any { return map[string]any{"response_modes_supported": []string{"query"}} }, `response_modes_supported lacks "fragment"`},
		{"foreign host", func(string) map[string]any {
			return map[string]any{"token_endpoint": "https://evil.example.net/token"}
		}, `token_endpoint is on host "evil.example.net", not on the issuer's host "127.0.0.1"`},
		{"foreign device endpoint", func(base string) map[string]any {
			return map[string]any{"device_authorization_endpoint": strings.Replace(base, "127.0.0.1", "localhost", 1) + "/device"}
		}, `device_authorization_endpoint is on host "localhost"`},
		{"plain http off loopback", func(string) map[string]any {
			return map[string]any{"issuer": "http://auth.example.com/", "token_endpoint": "https://auth.example.com/t"}
		}, `issuer "http://auth.example.com/" must use https`},
		{"not a URL", func(string) map[string]any { return map[string]any{"revocation_endpoint": "/relative"} }, `revocation_endpoint "/relative" is not an absolute URL`},
		{"user info", func(base string) map[string]any {
			return map[string]any{"registration_endpoint": strings.Replace(base, "http://", "http://u:pw@", 1) + "/r"}
		}, "registration_endpoint must not contain a user name or password"},
		{"issuer query", func(base string) map[string]any { return map[string]any{"issuer": base + "/?x=1"} }, "issuer must not have a query or fragment"},
		{"ftp scheme", func(string) map[string]any { return map[string]any{"account_management_uri": "ftp://x/"} }, `account_management_uri "ftp://x/" must use https`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t)
			w.reply("GET", "/_matrix/client/v1/auth_metadata", 200, metadataJSON(t, w.URL, tc.edits(w.URL)))
			_, err := w.client(t).AuthMetadata(testCtx(t))
			var me *AuthMetadataError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Fatalf("user info in error: %v", err)
			}
		})
	}

	// The insecure opt-in allows plain http to other hosts, as for the homeserver.
	m := AuthMetadata{}
	if err := json.Unmarshal([]byte(metadataJSON(t, "http://auth.example.com", nil)), &m); err != nil {
		t.Fatal(err)
	}
	if m.Validate(false) == nil || m.Validate(true) != nil {
		t.Fatal("insecure opt-in not applied")
	}
}

func TestClassifyServer(t *testing.T) {
	compat := `{"flows":[{"type":"m.login.password"},{"type":"m.login.sso","oauth_aware_preferred":true}]}`
	unstableCompat := `{"flows":[{"type":"m.login.password"},{"type":"m.login.sso","org.matrix.msc3824.delegated_oidc_compatibility":true}]}`
	ssoOnly := `{"flows":[{"type":"m.login.sso","oauth_aware_preferred":true}]}`
	cases := []struct {
		name     string
		metadata bool
		login    string // "" = 404
		want     ServerAuthKind
	}{
		{"legacy", false, `{"flows":[{"type":"m.login.password"}]}`, AuthLegacy},
		{"oauth only", true, "", AuthOAuthOnly},
		{"oauth, sso compat without password", true, ssoOnly, AuthOAuthOnly},
		{"oauth with password compat", true, compat, AuthOAuthPasswordCompat},
		{"oauth with unstable compat", true, unstableCompat, AuthOAuthPasswordCompat},
		{"oauth with unmarked password", true, `{"flows":[{"type":"m.login.password"}]}`, AuthOAuthOnly},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWire(t)
			if tc.metadata {
				w.reply("GET", "/_matrix/client/v1/auth_metadata", 200, metadataJSON(t, w.URL, nil))
			}
			if tc.login != "" {
				w.reply("GET", "/_matrix/client/v3/login", 200, tc.login)
			}
			got, err := w.client(t).ProbeServerAuth(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != tc.want || (got.Metadata == nil) == tc.metadata || (got.Flows == nil) != (tc.login == "") {
				t.Fatalf("got %s %+v, want %s", got.Kind, got, tc.want)
			}
		})
	}
	for k, s := range map[ServerAuthKind]string{AuthLegacy: "legacy authentication", AuthOAuthOnly: "OAuth 2.0", AuthOAuthPasswordCompat: "OAuth 2.0 with password compatibility", 0: "unknown"} {
		if k.String() != s {
			t.Errorf("%d: %q", k, k.String())
		}
	}

	// Neither metadata nor /login: not a server we can sign in to.
	w := newWire(t)
	if _, err := w.client(t).ProbeServerAuth(testCtx(t)); !IsUnsupported(err) {
		t.Fatalf("nothing: %v", err)
	}
	// Invalid metadata is an error, not "legacy".
	w.reply("GET", "/_matrix/client/v1/auth_metadata", 200, metadataJSON(t, w.URL, map[string]any{"issuer": nil}))
	w.reply("GET", "/_matrix/client/v3/login", 200, compat)
	if _, err := w.client(t).ProbeServerAuth(testCtx(t)); err == nil {
		t.Fatal("invalid metadata classified")
	}
	// /login failing for another reason than absence is an error too.
	w.reply("GET", "/_matrix/client/v1/auth_metadata", 200, metadataJSON(t, w.URL, nil))
	w.reply("GET", "/_matrix/client/v3/login", 500, `{"errcode":"M_UNKNOWN"}`)
	if _, err := w.client(t).ProbeServerAuth(testCtx(t)); !IsTransient(err) {
		t.Fatalf("/login 500: %v", err)
	}
}

func testMetadata(base string) *AuthMetadata {
	return &AuthMetadata{
		Issuer: base + "/", AuthorizationEndpoint: base + "/oauth2/auth", TokenEndpoint: base + "/oauth2/token",
		RegistrationEndpoint: base + "/oauth2/register", RevocationEndpoint: base + "/oauth2/revoke",
	}
}

func TestRegisterClient(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/oauth2/register", 201, `{"client_id":"01JCLIENT","grant_types":["refresh_token","urn:ietf:params:oauth:grant-type:device_code"],"token_endpoint_auth_method":"none"}`)
	c := w.client(t)
	reg := NativeClient("mxauth", "https://mxauth.example.org/", []string{GrantRefreshToken, GrantDeviceCode}, nil)
	out, err := c.RegisterClient(testCtx(t), testMetadata(w.URL), reg)
	if err != nil || out.ClientID != "01JCLIENT" {
		t.Fatalf("%+v %v", out, err)
	}
	body := w.last(t).bodyMap(t)
	if body["application_type"] != "native" || body["token_endpoint_auth_method"] != "none" || body["client_uri"] != "https://mxauth.example.org/" || body["client_name"] != "mxauth" {
		t.Fatalf("body %v", body)
	}
	if _, ok := body["redirect_uris"]; ok {
		t.Fatalf("device-only client sent redirect_uris: %v", body)
	}
	if _, ok := body["response_types"]; ok {
		t.Fatalf("device-only client sent response_types: %v", body)
	}
	if ct := w.last(t).Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}

	// The server silently dropped the device grant.
	w.reply("POST", "/oauth2/register", 201, `{"client_id":"01JCLIENT","grant_types":["refresh_token"]}`)
	_, err = c.RegisterClient(testCtx(t), testMetadata(w.URL), reg)
	var gd *GrantDroppedError
	if !errors.As(err, &gd) || len(gd.Dropped) != 1 || gd.Dropped[0] != GrantDeviceCode || !strings.Contains(err.Error(), "without the grant type(s) "+GrantDeviceCode) {
		t.Fatalf("dropped grant: %v", err)
	}
	// A reply without grant_types means the RFC 7591 default, authorization_code only.
	w.reply("POST", "/oauth2/register", 201, `{"client_id":"01JCLIENT"}`)
	code := NativeClient("mxauth", "https://mxauth.example.org/", []string{GrantAuthorizationCode, GrantRefreshToken}, []string{"http://127.0.0.1/callback", "http://[::1]/callback", "org.example.mxauth:/callback", "https://app.mxauth.example.org/cb"})
	if _, err = c.RegisterClient(testCtx(t), testMetadata(w.URL), code); !errors.As(err, &gd) || gd.Dropped[0] != GrantRefreshToken {
		t.Fatalf("default grants: %v", err)
	}
	if b := w.last(t).bodyMap(t); b["response_types"] == nil || b["redirect_uris"] == nil {
		t.Fatalf("code client body %v", b)
	}

	// Refusals and bad replies.
	w.reply("POST", "/oauth2/register", 400, `{"error":"invalid_client_metadata","error_description":"client_uri must not be localhost\u001b[31m"}`)
	_, err = c.RegisterClient(testCtx(t), testMetadata(w.URL), reg)
	if oe, ok := AsOAuthError(err); !ok || oe.Code != "invalid_client_metadata" || strings.ContainsRune(err.Error(), 0x1b) || !strings.Contains(err.Error(), "client_uri must not be localhost") {
		t.Fatalf("refusal: %v", err)
	}
	w.reply("POST", "/oauth2/register", 201, `{"grant_types":["refresh_token"]}`)
	if _, err = c.RegisterClient(testCtx(t), testMetadata(w.URL), reg); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("no client_id: %v", err)
	}
	n := len(w.requests())
	for _, bad := range []ClientRegistration{
		NativeClient("x", "http://mxauth.example.org/", []string{GrantRefreshToken}, nil),
		NativeClient("x", "https://u:p@mxauth.example.org/", []string{GrantRefreshToken}, nil),
		NativeClient("x", "https://mxauth.example.org/", nil, nil),
		NativeClient("x", "https://mxauth.example.org/", []string{GrantAuthorizationCode}, []string{"http://127.0.0.1:8080/callback"}),
		NativeClient("x", "https://mxauth.example.org/", []string{GrantAuthorizationCode}, []string{"http://mxauth.example.org/callback"}),
		NativeClient("x", "https://mxauth.example.org/", []string{GrantAuthorizationCode}, []string{"https://u:p@mxauth.example.org/callback"}),
		NativeClient("x", "https://mxauth.example.org/", []string{GrantAuthorizationCode}, []string{"https://mxauth.example.org/callback#f"}),
		NativeClient("x", "https://mxauth.example.org/", []string{GrantAuthorizationCode}, []string{"/callback"}),
	} {
		_, err := c.RegisterClient(testCtx(t), testMetadata(w.URL), bad)
		t.Logf("refused: %v", err)
		if err == nil || strings.Contains(err.Error(), "u:p") {
			t.Fatalf("bad registration %+v: %v", bad, err)
		}
	}
	insecure := testMetadata("http://auth.example.com")
	if _, err := c.RegisterClient(testCtx(t), insecure, reg); err == nil {
		t.Fatal("registration over plain http to a remote host")
	}
	if len(w.requests()) != n {
		t.Fatal("invalid registrations reached the server")
	}
}

func TestRevokeToken(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/oauth2/revoke", 200, ``)
	c := w.client(t)
	if err := c.RevokeToken(testCtx(t), testMetadata(w.URL), "01JCLIENT", "mat_ACCESS_12345678", TokenHintAccess); err != nil {
		t.Fatal(err)
	}
	r := w.last(t)
	form, err := url.ParseQuery(string(r.Body))
	if err != nil || form.Get("token") != "mat_ACCESS_12345678" || form.Get("token_type_hint") != "access_token" || form.Get("client_id") != "01JCLIENT" {
		t.Fatalf("form %v %v", form, err)
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Authorization") != "" {
		t.Fatalf("headers %v", r.Header)
	}
	w.reply("POST", "/oauth2/revoke", 400, `{"error":"invalid_client","error_description":"unknown client"}`)
	err = c.RevokeToken(testCtx(t), testMetadata(w.URL), "01JCLIENT", "mat_ACCESS_12345678", "")
	if oe, ok := AsOAuthError(err); !ok || oe.Code != OAuthInvalidClient || oe.Status != 400 || IsTransient(err) {
		t.Fatalf("refusal: %v", err)
	}
	w.reply("POST", "/oauth2/revoke", 503, `<html><title>down</title></html>`, "Retry-After", "7")
	err = c.RevokeToken(testCtx(t), testMetadata(w.URL), "01JCLIENT", "mat_ACCESS_12345678", "")
	if d, ok := RetryAfter(err); !ok || d != 7*time.Second {
		t.Fatalf("503 Retry-After: %v %v", d, ok)
	}
	if oe, ok := AsOAuthError(err); !ok || !IsTransient(err) || oe.RetryAfter != 7*time.Second || !strings.Contains(err.Error(), "down (not an OAuth 2.0 response)") {
		t.Fatalf("503: %v", err)
	}
	if err := c.RevokeToken(testCtx(t), testMetadata(w.URL), "c", "", ""); err == nil {
		t.Fatal("revoked an empty token")
	}
}

func TestRequestTokenReplies(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	w := newWire(t)
	c := w.client(t, WithClock(func() time.Time { return at }))
	meta := testMetadata(w.URL)
	req := TokenRequest{GrantType: GrantDeviceCode, ClientID: "01JCLIENT", DeviceCode: "DEVICECODE_12345678"}

	w.reply("POST", "/oauth2/token", 200, `{"access_token":"mat_A","token_type":"bearer","expires_in":300,"refresh_token":"mar_R","scope":"urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJKL"}`)
	tok, err := c.RequestToken(testCtx(t), meta, req)
	if err != nil {
		t.Fatal(err)
	}
	ts := tok.Tokens()
	if ts.AccessToken != "mat_A" || ts.RefreshToken != "mar_R" || !ts.ExpiresAt.Equal(at.Add(5*time.Minute)) || !strings.Contains(tok.Scope, "device:ABCDEFGHIJKL") {
		t.Fatalf("tokens %+v", tok)
	}
	form, _ := url.ParseQuery(string(w.last(t).Body))
	if form.Get("grant_type") != GrantDeviceCode || form.Get("device_code") != "DEVICECODE_12345678" || form.Get("client_id") != "01JCLIENT" || form.Has("refresh_token") || form.Has("code") {
		t.Fatalf("form %v", form)
	}

	bad := map[string]string{
		`{"token_type":"Bearer","refresh_token":"r"}`:                                        "lacks access_token",
		`{"access_token":"a","token_type":"Bearer"}`:                                         "lacks refresh_token",
		`{"access_token":"a","token_type":"mac","refresh_token":"r"}`:                        `token_type other than Bearer`,
		`{"access_token":"a","token_type":"Bearer","refresh_token":"r","expires_in":-1}`:     "negative expires_in",
		`{"access_token":"a","token_type":"Bearer","refresh_token":"r","expires_in":0}`:      "expires_in of 0",
		`{"access_token":"a\u001b[2J","token_type":"Bearer","refresh_token":"r"}`:            "characters a token cannot hold",
		`{"access_token":"a","token_type":"Bearer","refresh_token":"r","expires_in":"soon"}`: "field expires_in has the wrong type",
	}
	for body, want := range bad {
		w.reply("POST", "/oauth2/token", 200, body)
		if _, err := c.RequestToken(testCtx(t), meta, req); !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}

	codes := []struct {
		code string
		is   func(error) bool
	}{
		{OAuthAuthorizationPending, IsAuthorizationPending},
		{OAuthSlowDown, IsSlowDown},
		{OAuthAccessDenied, IsAccessDenied},
		{OAuthExpiredToken, IsExpiredToken},
		{OAuthInvalidGrant, IsInvalidGrant},
	}
	for _, cc := range codes {
		w.reply("POST", "/oauth2/token", 400, `{"error":"`+cc.code+`","error_description":"see \u202ehere"}`)
		_, err := c.RequestToken(testCtx(t), meta, req)
		if !cc.is(err) || IsTransient(err) || !strings.Contains(err.Error(), "POST token_endpoint: 400 "+cc.code+": see here") {
			t.Errorf("%s: %v", cc.code, err)
		}
		for _, other := range codes {
			if other.code != cc.code && other.is(err) {
				t.Errorf("%s also reads as %s", cc.code, other.code)
			}
		}
	}
	if _, err := c.RequestToken(testCtx(t), meta, TokenRequest{GrantType: GrantRefreshToken}); err == nil {
		t.Fatal("token request without client ID sent")
	}
}

func TestOAuthScopeAndDeviceID(t *testing.T) {
	if s := OAuthScope("ABCDEFGHIJKL"); s != "urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJKL" {
		t.Fatal(s)
	}
	re := regexp.MustCompile(`^[A-Z0-9]{12}$`)
	seen := map[string]bool{}
	for range 200 {
		id, err := NewDeviceID()
		if err != nil || !re.MatchString(id) || seen[id] {
			t.Fatalf("device ID %q %v", id, err)
		}
		seen[id] = true
	}
}

// TestOAuthSecretsNeverInErrors echoes every token an OAuth call sends back in
// the error reply, in every place it can carry text.
func TestOAuthSecretsNeverInErrors(t *testing.T) {
	secrets := []Secret{"mat_ACCESS_0123456789abcdef", "mar_REFRESH_0123456789abcdef", "DEVICECODE_0123456789abcdef", "AUTHCODE_0123456789abcdef", "VERIFIER_0123456789abcdef"}
	w := newWire(t)
	echo := func(path string) {
		w.on("POST", path, func(rw http.ResponseWriter, _ *http.Request) {
			// The wire recorded (and so consumed) the body: echo the recorded one.
			rs := w.requests()
			form, _ := url.ParseQuery(string(rs[len(rs)-1].Body))
			var all []string
			for _, v := range form {
				all = append(all, v...)
			}
			text, _ := json.Marshal(strings.Join(all, " "))
			rw.WriteHeader(400)
			rw.Write([]byte(`{"error":` + string(text) + `,"error_description":` + string(text) + `}`))
		})
	}
	echo("/oauth2/token")
	echo("/oauth2/revoke")
	var logs strings.Builder
	c := w.client(t, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	meta := testMetadata(w.URL)
	var errs []error
	for _, req := range []TokenRequest{
		{GrantType: GrantRefreshToken, ClientID: "c", RefreshToken: secrets[1]},
		{GrantType: GrantDeviceCode, ClientID: "c", DeviceCode: secrets[2]},
		{GrantType: GrantAuthorizationCode, ClientID: "c", Code: secrets[3], CodeVerifier: secrets[4], RedirectURI: "http://127.0.0.1:1/callback"},
	} {
		_, err := c.RequestToken(testCtx(t), meta, req)
		errs = append(errs, err)
	}
	errs = append(errs, c.RevokeToken(testCtx(t), meta, "c", secrets[0], TokenHintAccess))
	var out strings.Builder
	for _, err := range errs {
		if err != nil {
			out.WriteString(err.Error() + "\n")
		}
	}
	if !strings.Contains(logs.String(), "token_endpoint") {
		t.Fatal("no request logs captured")
	}
	out.WriteString(logs.String())
	tok := &OAuthTokenResponse{AccessToken: secrets[0], RefreshToken: secrets[1]}
	for _, v := range []any{tok, *tok, TokenRequest{Code: secrets[3], CodeVerifier: secrets[4], DeviceCode: secrets[2], RefreshToken: secrets[1]}} {
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			out.WriteString(fmt.Sprintf(verb, v))
		}
	}
	for _, s := range secrets {
		if strings.Contains(out.String(), s.Reveal()) {
			t.Errorf("%s leaked: %s", s.Reveal()[:8], out.String())
		}
	}
	// Each error carries the echo twice (error and error_description).
	if strings.Count(out.String(), "[redacted]") < 2*len(errs) {
		t.Errorf("the echo did not reach every error; the test proves nothing:\n%s", out.String())
	}
}

func TestRequestDeviceAuthorization(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	w := newWire(t)
	c := w.client(t, WithClock(func() time.Time { return at }))
	meta := testMetadata(w.URL)
	if _, err := c.RequestDeviceAuthorization(testCtx(t), meta, "c", OAuthScope("D")); !errors.Is(err, ErrNoDeviceGrant) {
		t.Fatalf("no endpoint: %v", err)
	}
	meta.DeviceAuthorizationEndpoint = w.URL + "/oauth2/device"
	w.reply("POST", "/oauth2/device", 200, `{"device_code":"DC_0123456789","user_code":"ABC123","verification_uri":"https://auth.example.com/link","expires_in":1200}`)
	da, err := c.RequestDeviceAuthorization(testCtx(t), meta, "01JCLIENT", OAuthScope("ABCDEFGHIJKL"))
	if err != nil {
		t.Fatal(err)
	}
	if da.UserCode != "ABC123" || da.PollInterval() != 5*time.Second || !da.ExpiresAt().Equal(at.Add(20*time.Minute)) || da.DeviceCode != "DC_0123456789" {
		t.Fatalf("reply %+v", da)
	}
	form, _ := url.ParseQuery(string(w.last(t).Body))
	if form.Get("client_id") != "01JCLIENT" || form.Get("scope") != "urn:matrix:client:api:* urn:matrix:client:device:ABCDEFGHIJKL" {
		t.Fatalf("form %v", form)
	}
	w.reply("POST", "/oauth2/device", 200, `{"device_code":"DC","user_code":"ABC123","verification_uri":"https://a/link","verification_uri_complete":"https://a/link?code=ABC123","expires_in":600,"interval":10}`)
	if da, err = c.RequestDeviceAuthorization(testCtx(t), meta, "c", "s"); err != nil || da.PollInterval() != 10*time.Second || da.VerificationURIComplete == "" {
		t.Fatalf("%+v %v", da, err)
	}

	bad := map[string]string{
		`{"user_code":"A","verification_uri":"https://a/","expires_in":5}`:                                                              "lacks a usable device_code",
		`{"device_code":"D","user_code":"A\u001b[2J","verification_uri":"https://a/","expires_in":5}`:                                   "lacks a displayable user_code",
		`{"device_code":"D","user_code":"A","expires_in":5}`:                                                                            "lacks verification_uri",
		`{"device_code":"D","user_code":"A","verification_uri":"https://a/"}`:                                                           "lacks a positive expires_in",
		`{"device_code":"D","user_code":"A","verification_uri":"https://a/","expires_in":5,"interval":-1}`:                              "negative interval",
		`{"device_code":"D","user_code":"A","verification_uri":"http://evil.example/","expires_in":5}`:                                  `verification_uri "http://evil.example/" must use https`,
		`{"device_code":"D","user_code":"A","verification_uri":"https://a/\u202e","expires_in":5}`:                                      "verification_uri holds characters that cannot be shown",
		`{"device_code":"D","user_code":"A","verification_uri":"https://a/","verification_uri_complete":"javascript:x","expires_in":5}`: "verification_uri_complete",
	}
	for body, want := range bad {
		w.reply("POST", "/oauth2/device", 200, body)
		if _, err := c.RequestDeviceAuthorization(testCtx(t), meta, "c", "s"); !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), want) || strings.ContainsAny(err.Error(), "\x1b\u202e") {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
	w.reply("POST", "/oauth2/device", 400, `{"error":"invalid_scope"}`)
	if _, err := c.RequestDeviceAuthorization(testCtx(t), meta, "c", "s"); !hasOAuthCode(err, "invalid_scope") {
		t.Fatalf("refusal: %v", err)
	}
}

func TestServerAuthKindNames(t *testing.T) {
	for _, k := range []ServerAuthKind{AuthLegacy, AuthOAuthOnly, AuthOAuthPasswordCompat} {
		if k.Name() == "" || ParseServerAuthKind(k.Name()) != k {
			t.Errorf("%v: name %q does not read back", k, k.Name())
		}
	}
	if ParseServerAuthKind("") != 0 || ParseServerAuthKind("sso") != 0 || ServerAuthKind(0).Name() != "" {
		t.Error("an unknown kind must read as 0 and name as \"\"")
	}
}

func TestOAuthClientIssuedTo(t *testing.T) {
	oc := OAuthClient{ClientID: "index", TokenEndpoint: "https://auth.example.org/token"}
	if got := oc.IssuedTo(TokenSet{}); got.ClientID != "index" || got.TokenEndpoint != oc.TokenEndpoint {
		t.Fatalf("a pair without a client: %+v", got)
	}
	if got := oc.IssuedTo(TokenSet{ClientID: "tokens"}); got.ClientID != "tokens" || got.TokenEndpoint != oc.TokenEndpoint {
		t.Fatalf("a pair with its client: %+v", got)
	}
}
