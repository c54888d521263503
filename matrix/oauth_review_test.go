package matrix

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRedirectKeepsBodiesOnTheHost: a 307 or 308 would resend a request's
// body (a refresh token, a password) to wherever it points; a redirect to
// another host is refused before anything reaches it. A redirect on the
// same host still works.
func TestRedirectKeepsBodiesOnTheHost(t *testing.T) {
	var reached atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(other.Close)
	elsewhere := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/away/oauth2/token", "/away/oauth2/revoke":
			http.Redirect(w, r, elsewhere+"/steal", http.StatusTemporaryRedirect)
		case "/moved/oauth2/token":
			http.Redirect(w, r, "/oauth2/token", http.StatusPermanentRedirect)
		case "/oauth2/token":
			if !strings.Contains(string(body), "refresh_token=mar_OLD_REFRESH_123") {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"mat_NEW_ACCESS_456","refresh_token":"mar_NEW_REFRESH_789","token_type":"Bearer","expires_in":300}`)
		}
	}))
	t.Cleanup(as.Close)
	c, err := NewClient(as.URL)
	if err != nil {
		t.Fatal(err)
	}
	oc := OAuthClient{Issuer: as.URL + "/", ClientID: "01JCLIENT"}

	oc.TokenEndpoint, oc.RevocationEndpoint = as.URL+"/away/oauth2/token", as.URL+"/away/oauth2/revoke"
	if _, err := c.RefreshOAuth(testCtx(t), oc, "mar_OLD_REFRESH_123"); !errors.Is(err, ErrCrossHostRedirect) || !IsTransient(err) {
		t.Errorf("refresh redirected to another host: %v", err)
	}
	if err := c.RevokeOAuth(testCtx(t), oc, "mar_OLD_REFRESH_123", TokenHintRefresh); !errors.Is(err, ErrCrossHostRedirect) {
		t.Errorf("revocation redirected to another host: %v", err)
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the other host got %d request(s)", n)
	}

	oc.TokenEndpoint = as.URL + "/moved/oauth2/token"
	resp, err := c.RefreshOAuth(testCtx(t), oc, "mar_OLD_REFRESH_123")
	if err != nil {
		t.Fatalf("refresh through a redirect on the same host: %v", err)
	}
	if resp.AccessToken != "mat_NEW_ACCESS_456" || resp.RefreshToken != "mar_NEW_REFRESH_789" {
		t.Fatalf("tokens %q %q", resp.AccessToken, resp.RefreshToken)
	}
}

// TestTokenTypeNotQuoted: a token reply whose token_type is not Bearer is
// refused without quoting it: a hostile server may echo a token there.
func TestTokenTypeNotQuoted(t *testing.T) {
	w := newWire(t)
	c := w.client(t)
	w.reply("POST", "/oauth2/token", 200, `{"access_token":"a","refresh_token":"r","token_type":"mar_OLD_0123456789","expires_in":300}`)
	_, err := c.RefreshOAuth(testCtx(t), OAuthClientOf(testMetadata(w.URL), "c"), "mar_OLD_0123456789")
	if !errors.Is(err, ErrMalformedResponse) || !strings.Contains(err.Error(), "token_type") || strings.Contains(err.Error(), "mar_OLD") {
		t.Fatalf("a token_type echoing the refresh token: %v", err)
	}
}
