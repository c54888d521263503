package matrix

import (
	"errors"
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
