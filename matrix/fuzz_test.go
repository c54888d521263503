package matrix

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

var fuzzNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "plain", "a\x1b[31mb", "\x1b]0;t\x07x", "\u202eabc", "\xff\xfe", strings.Repeat("ab ", 400), "\x1bP\x1b\\", "\u009b1m", "x\x1b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		checkSanitized(t, out)
		if again := Sanitize(out); again != out {
			t.Fatalf("not idempotent: %q -> %q", out, again)
		}
	})
}

func FuzzParseError(f *testing.F) {
	f.Add(429, "3", []byte(`{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":2000}`))
	f.Add(429, "Wed, 21 Oct 2026 07:28:00 GMT", []byte(`{"errcode":"M_LIMIT_EXCEEDED"}`))
	f.Add(401, "", []byte(`{"errcode":"M_UNKNOWN_TOKEN","soft_logout":true}`))
	f.Add(401, "", []byte(`{"flows":[{"stages":["m.login.password"]}],"session":"x"}`))
	f.Add(502, "", []byte("<html><title>Bad \x1b[2J Gateway</title></html>"))
	f.Add(500, "-1", []byte(`{"error":"\u202e\u0000x","retry_after_ms":-3}`))
	f.Add(403, "1e9", []byte(`{"errcode":5,"error":[1],"soft_logout":"yes","retry_after_ms":"x"}`))
	f.Add(0, "", []byte(nil))
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		err := ParseError(status, h, body, "POST /x", fuzzNow)
		if err == nil || err.Error() == "" {
			t.Fatal("no error value")
		}
		if c, ok := AsUIA(err); ok {
			if status != http.StatusUnauthorized || c.Flows == nil {
				t.Fatalf("UIA from status %d", status)
			}
			checkSanitized(t, c.Message)
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("unexpected type %T", err)
		}
		if e.Status != status || e.Endpoint != "POST /x" {
			t.Fatal("status or endpoint lost")
		}
		if e.RetryAfter < 0 || e.RetryAfter > maxRetryAfter {
			t.Fatalf("RetryAfter %v out of range", e.RetryAfter)
		}
		checkSanitized(t, e.Message)
		for _, r := range e.ErrCode {
			if r < 0x20 || r == 0x7f || isBidiOrInvisible(r) {
				t.Fatalf("unsafe errcode %q", e.ErrCode)
			}
		}
		if IsTransient(err) != (status >= 500 || status == 429 || e.ErrCode == ErrCodeLimitExceeded) {
			t.Fatal("IsTransient inconsistent")
		}
	})
}

func FuzzParseUIAChallenge(f *testing.F) {
	f.Add([]byte(`{"flows":[{"stages":["m.login.password"]}],"params":{},"session":"s"}`))
	f.Add([]byte(`{"flows":[{"stages":["a","b"]},{"stages":["a","c"]}],"completed":["a"],"session":"s","errcode":"M_FORBIDDEN","error":"no"}`))
	f.Add([]byte(`{"flows":[],"params":"x","completed":[1]}`))
	f.Add([]byte(`{"flows":[{"stages":null}]}`))
	f.Add([]byte(`{"flows":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		err := ParseError(401, http.Header{}, body, "", fuzzNow)
		c, ok := AsUIA(err)
		if !ok {
			if IsTransient(err) {
				t.Fatal("a 401 is never transient")
			}
			return
		}
		if IsUnknownToken(err) || IsMissingToken(err) || IsForbidden(err) {
			t.Fatal("UIA classified as token error")
		}
		stages := map[string]bool{}
		for _, fl := range c.Flows {
			for _, s := range fl.Stages {
				stages[s] = true
			}
		}
		done := map[string]bool{}
		for _, s := range c.Completed {
			done[s] = true
		}
		usesPassword := false
		for _, s := range c.NextStages() {
			if !stages[s] || done[s] {
				t.Fatalf("next stage %q not pending", s)
			}
			usesPassword = usesPassword || s == StagePassword
		}
		if c.CanUsePassword() != usesPassword {
			t.Fatal("CanUsePassword inconsistent")
		}
		if c.StageFailed() != (c.ErrCode != "") {
			t.Fatal("StageFailed inconsistent")
		}
		_ = c.Error()
	})
}

func FuzzServerNameFromUserID(f *testing.F) {
	for _, s := range []string{"@a:example.org", "@a:example.org:8448", "@a:[::1]:80", "@a:[::1", "@:x", "a:b", "@a:b:c", "@a:1.2.3.4", "@a:\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		name, err := ServerNameFromUserID(id)
		if err != nil {
			return
		}
		if !strings.HasPrefix(id, "@") || id[strings.IndexByte(id, ':')+1:] != name {
			t.Fatalf("%q -> %q: not the part after the first ':'", id, name)
		}
		host := WellKnownHost(name)
		if host == "" || !strings.HasPrefix(name, host) {
			t.Fatalf("WellKnownHost(%q) = %q", name, host)
		}
		u, perr := url.Parse(wellKnownURL(name, DiscoverOptions{}))
		if perr != nil || u.Path != "/.well-known/matrix/client" {
			t.Fatalf("well-known URL for %q unusable: %v", name, perr)
		}
		if !IsLoopbackHost(u.Hostname()) && (u.Scheme != "https" || u.Port() != "") {
			t.Fatalf("non-loopback well-known URL %s must be https without port", u)
		}
	})
}

func FuzzWellKnown(f *testing.F) {
	f.Add([]byte(`{"m.homeserver":{"base_url":"https://matrix.example.com"},"m.identity_server":{"base_url":"https://identity.example.com"},"org.example.custom.property":{"app_url":"https://custom.app.example.org"}}`))
	f.Add([]byte(`{"m.homeserver":{"base_url":"not a url"}}`))
	f.Add([]byte(`{"m.homeserver":{}}`))
	f.Add([]byte(`{"m.homeserver":{"base_url":"https://x"},"m.identity_server":{}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		wk, err := ParseWellKnown(body)
		if err != nil {
			var de *DiscoveryError
			if !errors.As(err, &de) || (de.Outcome != DiscoveryFailPrompt && de.Outcome != DiscoveryFailError) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		u, perr := url.Parse(wk.Homeserver.BaseURL)
		if perr != nil || u.Host == "" {
			t.Fatalf("accepted base_url %q", wk.Homeserver.BaseURL)
		}
		if base, err := NormaliseBaseURL(wk.Homeserver.BaseURL, true); err == nil && (strings.HasSuffix(base, "/") || strings.Contains(base+"/_matrix", "//_matrix")) {
			t.Fatalf("normalised %q keeps a trailing slash", base)
		}
	})
}

func FuzzLoginResponse(f *testing.F) {
	f.Add([]byte(`{"user_id":"@cheeky_monkey:matrix.org","access_token":"abc123","refresh_token":"def456","expires_in_ms":60000,"device_id":"GHTYAJCE","well_known":{"m.homeserver":{"base_url":"https://example.org"}}}`), int64(0))
	f.Add([]byte(`{"user_id":"@a:b","access_token":"x","device_id":"D","expires_in_ms":-5,"well_known":5}`), int64(1e18))
	f.Add([]byte(`{"user_id":"@a:b","access_token":"x","device_id":"D","expires_in_ms":9223372036854775807}`), int64(-1))
	f.Add([]byte(`{"access_token":1}`), int64(0))
	f.Fuzz(func(t *testing.T, body []byte, recvNanos int64) {
		var r LoginResponse
		if decodeJSON(body, &r) != nil || r.validate() != nil {
			return
		}
		if r.UserID == "" || r.AccessToken.IsZero() || r.DeviceID == "" {
			t.Fatal("validate let a required field through empty")
		}
		r.ReceivedAt = time.Unix(0, recvNanos)
		ts := r.Tokens()
		if ts.AccessToken != r.AccessToken || ts.RefreshToken != r.RefreshToken {
			t.Fatal("tokens lost")
		}
		if ts.Expires() != (r.ExpiresInMS != nil) || ts.Lifetime() < 0 {
			t.Fatalf("bad expiry %+v", ts)
		}
	})
}

func FuzzRefreshResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"a_new_token","expires_in_ms":60000,"refresh_token":"another_new_token"}`), "old")
	f.Add([]byte(`{"access_token":"a"}`), "old")
	f.Add([]byte(`{"access_token":"a","refresh_token":""}`), "")
	f.Add([]byte(`{"access_token":"a","expires_in_ms":"1"}`), "old")
	f.Fuzz(func(t *testing.T, body []byte, oldRefresh string) {
		var r RefreshResponse
		if decodeJSON(body, &r) != nil || r.validate() != nil {
			return
		}
		r.ReceivedAt = fuzzNow
		ts := r.Apply(TokenSet{AccessToken: "old-access", RefreshToken: Secret(oldRefresh)})
		if ts.AccessToken != r.AccessToken || ts.AccessToken.IsZero() {
			t.Fatal("access token not taken")
		}
		if ts.RefreshToken.IsZero() && oldRefresh != "" {
			t.Fatal("refresh token overwritten with empty")
		}
		if !r.RefreshToken.IsZero() && ts.RefreshToken != r.RefreshToken {
			t.Fatal("new refresh token ignored")
		}
		if ts.Lifetime() < 0 || (ts.Expires() && ts.ExpiresAt.Before(fuzzNow)) {
			t.Fatal("deadline before receipt")
		}
	})
}

func FuzzGetLoginTokenResponse(f *testing.F) {
	f.Add([]byte(`{"login_token":"<opaque string>","expires_in_ms":120000}`))
	f.Add([]byte(`{"login_token":"t","expires_in":300}`))
	f.Add([]byte(`{"login_token":"t","expires_in":-300}`))
	f.Add([]byte(`{"login_token":"t","expires_in_ms":-1}`))
	f.Add([]byte(`{"login_token":"t","expires_in":9223372036854775807}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r GetLoginTokenResponse
		if decodeJSON(body, &r) != nil || r.validate() != nil {
			return
		}
		if r.LoginToken.IsZero() || r.ExpiresInMS < 0 {
			t.Fatalf("validate let %+v through", r)
		}
		r.ReceivedAt = fuzzNow
		if r.ExpiresAt().Before(fuzzNow) {
			t.Fatal("expiry before receipt")
		}
	})
}

func FuzzVersions(f *testing.F) {
	f.Add([]byte(`{"versions":["r0.0.1","v1.1"],"unstable_features":{"org.example.my_feature":true}}`), "v1.1")
	f.Add([]byte(`{"versions":["v1.12"],"unstable_features":{"x":"y"}}`), "v1.7")
	f.Add([]byte(`{"versions":["v01.0010","r9.9.9"]}`), "r0.6.1")
	f.Add([]byte(`{"versions":[]}`), "")
	f.Fuzz(func(t *testing.T, body []byte, want string) {
		var v VersionsResponse
		if decodeJSON(body, &v) != nil || v.validate() != nil {
			return
		}
		if v.AtLeast(want) {
			if _, ok := parseVersion(want); !ok {
				t.Fatalf("AtLeast(%q) true for an unparseable version", want)
			}
			if !v.AtLeast("r0.0.0") {
				t.Fatal("AtLeast not monotonic")
			}
		}
		if v.AtLeast("v1.7") && !v.AtLeast("v1.3") {
			t.Fatal("v1.7 without v1.3")
		}
		_, _ = LoginTokenPath(&v, nil)
	})
}
