package matrix

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestTokenExchangeForms checks what the refresh and code grants send through
// x/oauth2: the client ID in the form (a public client, no Authorization
// header), our User-Agent, and each grant's fields.
func TestTokenExchangeForms(t *testing.T) {
	w := newWire(t)
	c := w.client(t)
	meta := testMetadata(w.URL)
	ok := `{"access_token":"mat_A","token_type":"Bearer","expires_in":300,"refresh_token":"mar_R2"}`
	w.reply("POST", "/oauth2/token", 200, ok)

	oc := OAuthClientOf(meta, "01JCLIENT")
	tok, err := c.RefreshOAuth(testCtx(t), oc, "mar_R1")
	if err != nil || tok.RefreshToken != "mar_R2" || tok.ReceivedAt.IsZero() {
		t.Fatalf("refresh: %+v %v", tok, err)
	}
	r := w.last(t)
	form, _ := url.ParseQuery(string(r.Body))
	want := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"mar_R1"}, "client_id": {"01JCLIENT"}}
	if form.Encode() != want.Encode() || r.Header.Get("Authorization") != "" || !strings.HasPrefix(r.Header.Get("User-Agent"), "mxauth/") ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.Header.Get("Accept") != "application/json" {
		t.Fatalf("refresh request: form %v headers %v", form, r.Header)
	}

	_, err = c.RequestToken(testCtx(t), meta, TokenRequest{GrantType: GrantAuthorizationCode, ClientID: "01JCLIENT", Code: "CODE_123", CodeVerifier: "VERIFIER_123", RedirectURI: "http://127.0.0.1:4711/callback"})
	if err != nil {
		t.Fatal(err)
	}
	form, _ = url.ParseQuery(string(w.last(t).Body))
	want = url.Values{"grant_type": {"authorization_code"}, "code": {"CODE_123"}, "code_verifier": {"VERIFIER_123"},
		"redirect_uri": {"http://127.0.0.1:4711/callback"}, "client_id": {"01JCLIENT"}}
	if form.Encode() != want.Encode() {
		t.Fatalf("code exchange form %v", form)
	}
}

// TestRefreshReplies: what x/oauth2 would accept or hide is still refused
// here. It keeps the old refresh token when a reply has none; that must
// not pass for a rotated pair.
func TestRefreshReplies(t *testing.T) {
	w := newWire(t)
	c := w.client(t)
	oc := OAuthClientOf(testMetadata(w.URL), "c")
	bad := map[string]string{
		`{"access_token":"mat_A","token_type":"Bearer","expires_in":300}`:                        "lacks refresh_token",
		`{"token_type":"Bearer","refresh_token":"r"}`:                                            "lacks access_token",
		`{"error":"invalid_grant","access_token":"a","token_type":"Bearer","refresh_token":"r"}`: "",
		`{"access_token":"a","token_type":"Bearer","refresh_token":"r","expires_in":"soon"}`:     "field expires_in has the wrong type",
		`{"access_token":"a","token_type":"Bearer","refresh_token":"r","expires_in":1.5}`:        "expires_in",
		`[1,2]`: "not a JSON object",
		`access_token=a&refresh_token=r&token_type=Bearer`: "not a JSON object",
	}
	for body, want := range bad {
		w.reply("POST", "/oauth2/token", 200, body)
		_, err := c.RefreshOAuth(testCtx(t), oc, "mar_OLD_0123456789")
		if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), want) || IsOAuthSessionEnded(err) || strings.Contains(err.Error(), "mar_OLD") {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}

	// A form-encoded refusal (some servers answer so): the code x/oauth2 read is kept.
	w.reply("POST", "/oauth2/token", 400, `error=invalid_grant&error_description=gone+mar_OLD_0123456789`, "Content-Type", "application/x-www-form-urlencoded")
	_, err := c.RefreshOAuth(testCtx(t), oc, "mar_OLD_0123456789")
	if !IsInvalidGrant(err) || !IsOAuthSessionEnded(err) || strings.Contains(err.Error(), "mar_OLD") || !strings.Contains(err.Error(), "gone [redacted]") {
		t.Fatalf("form-encoded refusal: %v", err)
	}

	// A reply over 1 MiB is refused, not cut and misread.
	w.reply("POST", "/oauth2/token", 200, `{"access_token":"a","token_type":"Bearer","refresh_token":"r","pad":"`+strings.Repeat("x", MaxResponseBytes)+`"}`)
	if _, err := c.RefreshOAuth(testCtx(t), oc, "mar_OLD_0123456789"); !errors.Is(err, ErrResponseTooLarge) || !IsTransient(err) || !strings.HasPrefix(err.Error(), "POST token_endpoint: ") {
		t.Fatalf("oversized reply: %v", err)
	}
}

// TestOAuthExchangeTransport: x/oauth2's requests keep our redirect rule
// (no downgrade to plain http), per-call timeout and network errors.
func TestOAuthExchangeTransport(t *testing.T) {
	w := newWire(t)
	meta := testMetadata(w.URL)
	meta.DeviceAuthorizationEndpoint = w.URL + "/oauth2/device"
	w.reply("POST", "/oauth2/token", 307, ``, "Location", "http://auth.example.com/oauth2/token")
	c := w.client(t)
	if _, err := c.RefreshOAuth(testCtx(t), OAuthClientOf(meta, "c"), "mar_R"); !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("redirect to plain http: %v", err)
	}

	// The device authorization request, which x/oauth2 builds without a
	// context, still ends at our per-call timeout.
	release := make(chan struct{})
	defer close(release)
	w.on("POST", "/oauth2/device", func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c = w.client(t, WithTimeout(100*time.Millisecond))
	start := time.Now()
	_, err := c.RequestDeviceAuthorization(testCtx(t), meta, "c", "s")
	if !IsTransient(err) || !strings.Contains(err.Error(), "did not answer in time") || time.Since(start) > 5*time.Second {
		t.Fatalf("hung device endpoint: %v after %v", err, time.Since(start))
	}

	meta = testMetadata("http://127.0.0.1:1")
	if _, err := c.RefreshOAuth(testCtx(t), OAuthClientOf(meta, "c"), "mar_R"); !IsTransient(err) || IsOAuthSessionEnded(err) || !strings.HasPrefix(err.Error(), "POST token_endpoint: ") {
		t.Fatalf("refused connection: %v", err)
	}
}
