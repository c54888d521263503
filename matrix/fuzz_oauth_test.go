package matrix

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func FuzzAuthMetadata(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://account.example.com/","authorization_endpoint":"https://account.example.com/oauth2/auth","token_endpoint":"https://account.example.com/oauth2/token","registration_endpoint":"https://account.example.com/oauth2/clients/register","device_authorization_endpoint":"https://account.example.com/oauth2/device","revocation_endpoint":"https://account.example.com/oauth2/revoke","response_types_supported":["code"],"grant_types_supported":["authorization_code","refresh_token","urn:ietf:params:oauth:grant-type:device_code"],"response_modes_supported":["query","fragment"],"code_challenge_methods_supported":["S256"]}`), false)
	f.Add([]byte(`{"issuer":"http://127.0.0.1:8080/","token_endpoint":"https://evil.example/t"}`), true)
	f.Add([]byte(`{"issuer":"https://u:p@x/?q#f"}`), false)
	f.Add([]byte(`{"issuer":"https://a/","authorization_endpoint":"https://A/x","token_endpoint":"https://a:1/t","revocation_endpoint":"http://a/r","registration_endpoint":"https://a/g","response_types_supported":[],"grant_types_supported":null}`), false)
	f.Fuzz(func(t *testing.T, body []byte, insecure bool) {
		var m AuthMetadata
		if decodeJSON(body, &m) != nil {
			return
		}
		err := m.Validate(insecure)
		if err != nil {
			var me *AuthMetadataError
			if !errors.As(err, &me) || strings.ContainsAny(err.Error(), "\x1b\n\r") {
				t.Fatalf("error %q", err)
			}
			return
		}
		issuer, perr := url.Parse(m.Issuer)
		if perr != nil || issuer.Host == "" || issuer.User != nil || issuer.RawQuery != "" || issuer.Fragment != "" {
			t.Fatalf("accepted issuer %q", m.Issuer)
		}
		for _, raw := range []string{m.AuthorizationEndpoint, m.TokenEndpoint, m.RevocationEndpoint, m.RegistrationEndpoint} {
			u, perr := url.Parse(raw)
			if perr != nil || u.User != nil || !strings.EqualFold(u.Hostname(), issuer.Hostname()) {
				t.Fatalf("accepted endpoint %q for issuer %q", raw, m.Issuer)
			}
			if !insecure && !strings.EqualFold(u.Scheme, "https") && !IsLoopbackHost(u.Hostname()) {
				t.Fatalf("accepted insecure endpoint %q", raw)
			}
		}
	})
}

func FuzzOAuthTokenResponse(f *testing.F) {
	f.Add([]byte(`{"access_token":"mat_A","token_type":"Bearer","expires_in":300,"refresh_token":"mar_R","scope":"urn:matrix:client:api:*"}`), 200)
	f.Add([]byte(`{"access_token":"a","token_type":"bearer","expires_in":9223372036854775807,"refresh_token":"r"}`), 200)
	f.Add([]byte(`{"error":"authorization_pending","error_description":"mat_A \u001b[2J"}`), 400)
	f.Add([]byte(`<html><title>x</title>`), 502)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		if status < 200 || status > 299 {
			secret := Secret("mat_SECRET_0123456789")
			err := parseOAuthError(status, nil, append(body, []byte(secret.Reveal())...), "POST token_endpoint", fuzzNow, []Secret{secret})
			oe, ok := AsOAuthError(err)
			if !ok || oe.Status != status || strings.Contains(err.Error(), secret.Reveal()) || strings.ContainsAny(err.Error(), "\x1b\n") {
				t.Fatalf("error %q", err)
			}
			return
		}
		var r OAuthTokenResponse
		if decodeJSON(body, &r) != nil || r.validate() != nil {
			return
		}
		if r.AccessToken.IsZero() || r.RefreshToken.IsZero() || !strings.EqualFold(r.TokenType, "bearer") {
			t.Fatal("validate let a required field through")
		}
		r.ReceivedAt = fuzzNow
		ts := r.Tokens()
		if ts.AccessToken != r.AccessToken || ts.RefreshToken != r.RefreshToken || ts.Lifetime() < 0 || ts.Expires() != (r.ExpiresIn != nil) {
			t.Fatalf("tokens %+v", ts)
		}
		if ts.Expires() && ts.ExpiresAt.Before(fuzzNow) {
			t.Fatal("deadline before receipt")
		}
	})
}

func FuzzDeviceAuthorization(f *testing.F) {
	f.Add([]byte(`{"device_code":"DC_0123456789","user_code":"ABC123","verification_uri":"https://auth.example.com/link","verification_uri_complete":"https://auth.example.com/link?code=ABC123","expires_in":1200,"interval":5}`), false)
	f.Add([]byte(`{"device_code":"D","user_code":"A\u001b[2J","verification_uri":"http://127.0.0.1:8080/link","expires_in":5}`), false)
	f.Add([]byte(`{"device_code":"D","user_code":"A","verification_uri":"javascript:alert(1)","verification_uri_complete":"https://a/\u202e","expires_in":9223372036854775807,"interval":-1}`), true)
	f.Fuzz(func(t *testing.T, body []byte, insecure bool) {
		var r DeviceAuthorization
		if decodeJSON(body, &r) != nil {
			return
		}
		err := r.validate()
		if err == nil {
			err = r.checkURIs(insecure)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedResponse) || strings.ContainsAny(err.Error(), "\x1b\n\r\u202e") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if r.UserCode == "" || Sanitize(r.UserCode) != r.UserCode || r.DeviceCode.IsZero() || r.ExpiresIn <= 0 {
			t.Fatalf("accepted %+v", r)
		}
		for _, raw := range []string{r.VerificationURI, r.VerificationURIComplete} {
			if raw == "" {
				continue
			}
			u, perr := url.Parse(raw)
			if perr != nil || u.Host == "" || Sanitize(raw) != raw || (!insecure && !strings.EqualFold(u.Scheme, "https") && !IsLoopbackHost(u.Hostname())) {
				t.Fatalf("accepted URI %q", raw)
			}
		}
		r.ReceivedAt = fuzzNow
		if r.PollInterval() <= 0 || !r.ExpiresAt().After(fuzzNow) {
			t.Fatalf("interval %v, expiry %v", r.PollInterval(), r.ExpiresAt())
		}
	})
}

// FuzzLoopbackCallback feeds the browser's return to the judgement of a
// flow: only the right state (and issuer) lets a code through, and the page
// shown holds no markup or escape sequence from the query.
func FuzzLoopbackCallback(f *testing.F) {
	f.Add("code=abc&state=STATE_0123456789")
	f.Add("code=abc&state=other")
	f.Add("state=STATE_0123456789&error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E%1B%5B2J")
	f.Add("state=STATE_0123456789&iss=https%3A%2F%2Fevil.example%2F&code=x")
	f.Add("state=STATE_0123456789&state=x&code=&error")
	flow := &AuthCodeFlow{state: "STATE_0123456789", meta: &AuthMetadata{Issuer: "https://auth.example.com/"}}
	tags := strings.Count(renderLoopbackPage(loopbackPage{http.StatusOK, "t", "x"}), "<")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		code, page, done, err := flow.judge(q)
		stateOK := q.Get("state") == flow.state && (!q.Has("iss") || q.Get("iss") == flow.meta.Issuer)
		switch {
		case !stateOK && (done || !code.IsZero() || err != nil):
			t.Fatalf("a callback with the wrong state or issuer was taken: %v %v", done, err)
		case !code.IsZero() && (q.Has("error") || code.Reveal() != q.Get("code") || !done):
			t.Fatal("code taken from a refusal")
		case stateOK && q.Has("error") && !IsAccessDenied(err) && q.Get("error") == OAuthAccessDenied:
			t.Fatalf("access_denied read as %v", err)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\x1b\n\r") {
			t.Fatalf("error %q", err)
		}
		if code.IsZero() {
			out := renderLoopbackPage(page)
			if strings.Count(out, "<") != tags || strings.ContainsRune(out, 0x1b) {
				t.Fatalf("page carries markup or escapes from the query:\n%s", out)
			}
		}
	})
}

func renderLoopbackPage(p loopbackPage) string {
	rec := httptest.NewRecorder()
	writeLoopbackPage(rec, p)
	return rec.Body.String()
}

// FuzzOAuthExchangeReply runs a refresh through x/oauth2 against any reply:
// the outcome is a checked token reply or one clean line that never holds
// the refresh token sent.
func FuzzOAuthExchangeReply(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"access_token":"mat_A","token_type":"Bearer","expires_in":300,"refresh_token":"mar_R"}`))
	f.Add(200, "application/json", []byte(`{"access_token":"mat_A","token_type":"Bearer"}`))
	f.Add(400, "application/json", []byte(`{"error":"invalid_grant","error_description":"mar_SECRET_0123456789 \u001b[2J"}`))
	f.Add(400, "application/x-www-form-urlencoded", []byte(`error=invalid_grant&error_description=mar_SECRET_0123456789%0A`))
	f.Add(200, "text/plain", []byte(`access_token=a&refresh_token=mar_SECRET_0123456789`))
	f.Add(200, "application/json", []byte(`{"error":"slow_down","access_token":"mar_SECRET_0123456789"`))
	f.Add(502, "text/html", []byte(`<html><title>mar_SECRET_0123456789</title>`))
	secret := Secret("mar_SECRET_0123456789")
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		if status < 100 || status > 599 || (status >= 300 && status < 400) {
			return
		}
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			h.Set("Content-Type", contentType)
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})}
		c, err := NewClient("http://127.0.0.1:1", WithHTTPClient(hc))
		if err != nil {
			t.Fatal(err)
		}
		oc := OAuthClient{ClientID: "c", TokenEndpoint: "http://127.0.0.1:1/token"}
		tok, err := c.RefreshOAuth(context.Background(), oc, secret)
		if err == nil {
			if tok.validate() != nil || status < 200 || status > 299 {
				t.Fatalf("accepted %d %+v", status, tok)
			}
			return
		}
		if tok != nil || strings.Contains(err.Error(), secret.Reveal()) || strings.ContainsAny(err.Error(), "\x1b\n\r") {
			t.Fatalf("error %q", err)
		}
		if oe, ok := AsOAuthError(err); ok && oe.Status != status {
			t.Fatalf("status %d read as %d", status, oe.Status)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
