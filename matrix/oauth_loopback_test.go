package matrix_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
)

// codeFlow is a browser sign-in in progress: the listener, the flow, and Wait
// running in the background.
type codeFlow struct {
	l        *matrix.LoopbackListener
	f        *matrix.AuthCodeFlow
	deviceID string
	done     chan struct{}
	tok      *matrix.OAuthTokenResponse
	err      error
}

func startCodeFlow(t *testing.T, ctx context.Context, o *oauthServer) *codeFlow {
	t.Helper()
	l, err := matrix.ListenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	deviceID, _ := matrix.NewDeviceID()
	f, err := matrix.NewAuthCodeFlow(o.meta, o.clientID, matrix.OAuthScope(deviceID), l.RedirectURI())
	if err != nil {
		t.Fatal(err)
	}
	cf := &codeFlow{l: l, f: f, deviceID: deviceID, done: make(chan struct{})}
	go func() {
		defer close(cf.done)
		cf.tok, cf.err = f.Wait(ctx, o.c, l)
	}()
	t.Cleanup(func() { <-cf.done })
	return cf
}

func (cf *codeFlow) wait(t *testing.T) (*matrix.OAuthTokenResponse, error) {
	t.Helper()
	select {
	case <-cf.done:
		return cf.tok, cf.err
	case <-time.After(20 * time.Second):
		t.Fatal("Wait did not return")
		return nil, nil
	}
}

func (cf *codeFlow) state(t *testing.T) string {
	u, err := url.Parse(cf.f.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("state")
}

// callback sends the browser to the listener with query q, as a redirect would.
func (cf *codeFlow) callback(t *testing.T, q url.Values) (int, string) {
	t.Helper()
	res, err := http.Get(cf.l.RedirectURI() + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// TestAuthCodeFlowEndToEnd: the authorization URL asks for what the design
// says, a forged callback (wrong state) is refused and waited past, the real
// one signs in and says to return to the terminal, a second one says done.
func TestAuthCodeFlowEndToEnd(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t, homeserver.Options{})
	cf := startCodeFlow(t, t.Context(), o)

	u, _ := url.Parse(cf.f.URL)
	q := u.Query()
	for k, want := range map[string]string{"response_type": "code", "response_mode": "query", "code_challenge_method": "S256",
		"client_id": o.clientID, "redirect_uri": cf.l.RedirectURI(), "scope": matrix.OAuthScope(cf.deviceID)} {
		if q.Get(k) != want {
			t.Errorf("authorization URL %s=%q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 20 || len(q.Get("code_challenge")) != 43 || strings.Contains(cf.f.URL, "code_verifier") ||
		!strings.HasPrefix(cf.f.URL, o.meta.AuthorizationEndpoint+"?") || cf.f.RedirectURI != cf.l.RedirectURI() {
		t.Fatalf("authorization URL %s", cf.f.URL)
	}
	if !strings.HasPrefix(cf.l.RedirectURI(), "http://127.0.0.1:") || strings.HasSuffix(cf.l.RedirectURI(), ":0/callback") {
		t.Fatalf("redirect URI %s", cf.l.RedirectURI())
	}

	status, page := cf.callback(t, url.Values{"code": {"FORGED_CODE"}, "state": {"not-the-state"}})
	if status != http.StatusBadRequest || !strings.Contains(page, "state does not match") || !strings.Contains(page, "still waiting") {
		t.Fatalf("forged callback: %d %s", status, page)
	}
	status, page = cf.callback(t, url.Values{"code": {"FORGED_CODE"}, "state": {cf.state(t)}, "iss": {"https://evil.example/"}})
	if status != http.StatusBadRequest || !strings.Contains(page, "another authorization server") {
		t.Fatalf("callback from another issuer: %d %s", status, page)
	}

	b := browsertest.New(t)
	back := b.Authorize(cf.f.URL, aliceAnswers(cf.deviceID, browsertest.Approve))
	if back.URL.Host != strings.TrimPrefix(strings.TrimSuffix(cf.l.RedirectURI(), "/callback"), "http://") || !strings.Contains(back.Body, "return to the terminal") || !strings.Contains(back.Body, "Signed in") {
		t.Fatalf("after consent the browser is at %s: %s", back.URL, back.Body)
	}
	tok, err := cf.wait(t)
	if err != nil {
		t.Fatal(err)
	}
	o.checkSignedIn(t, tok, cf.deviceID)

	// The browser comes back again (reload): already done, nothing exchanged.
	again := b.Get(back.URL.String()).Body
	if !strings.Contains(again, "already done") || !strings.Contains(again, "return to the terminal") {
		t.Fatalf("second callback: %s", again)
	}
	var exchanges int
	for _, r := range o.srv.Requests() {
		if r.Path == "/auth/oauth2/token" {
			exchanges++
		}
	}
	if exchanges != 1 {
		t.Fatalf("%d code exchanges, want 1 (forged codes must never be sent)", exchanges)
	}
	if _, err := cf.f.Wait(t.Context(), o.c, cf.l); err == nil {
		t.Fatal("a second Wait on a finished listener succeeded")
	}
}

// TestAuthCodeFlowDenied: the user refuses; the redirect carries
// error=access_denied, which ends the wait as *OAuthError.
func TestAuthCodeFlowDenied(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t, homeserver.Options{})
	cf := startCodeFlow(t, t.Context(), o)
	page := browsertest.New(t).Authorize(cf.f.URL, aliceAnswers(cf.deviceID, browsertest.Deny)).Body
	if !strings.Contains(page, "access_denied") || !strings.Contains(page, "Return to the terminal") {
		t.Fatalf("page after denying: %s", page)
	}
	tok, err := cf.wait(t)
	if tok != nil || !matrix.IsAccessDenied(err) || matrix.IsTransient(err) || err.Error() != "authorization redirect: access_denied" {
		t.Fatalf("denied: %v %v", tok, err)
	}
	status, page := cf.callback(t, url.Values{"code": {"c"}, "state": {cf.state(t)}})
	if status != http.StatusGone || !strings.Contains(page, "no longer waiting") {
		t.Fatalf("callback after the end: %d %s", status, page)
	}
}

// TestAuthCodeFlowHostileCallbacks: server text on the page is escaped and
// sanitised, a code the server will not redeem fails clearly, requests other
// than GET /callback at the listener's own address are refused.
func TestAuthCodeFlowHostileCallbacks(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t, homeserver.Options{})
	cf := startCodeFlow(t, t.Context(), o)
	status, page := cf.callback(t, url.Values{"state": {cf.state(t)}, "error": {"invalid_scope<script>"}, "error_description": {"<img src=x onerror=alert(1)>\x1b[2J bad"}})
	if status != http.StatusOK || strings.Contains(page, "<script>") || strings.Contains(page, "<img") || strings.ContainsRune(page, 0x1b) || !strings.Contains(page, "&lt;img") {
		t.Fatalf("escaped error page: %s", page)
	}
	_, err := cf.wait(t)
	if oe, ok := matrix.AsOAuthError(err); !ok || oe.Code != "invalid_scope<script>" || strings.ContainsRune(err.Error(), 0x1b) {
		t.Fatalf("error parameter: %v", err)
	}

	cf = startCodeFlow(t, t.Context(), o)
	status, page = cf.callback(t, url.Values{"state": {cf.state(t)}, "code": {"NOT_ISSUED_0123456789"}})
	if status != http.StatusOK || !strings.Contains(page, "could not complete") || strings.Contains(page, "NOT_ISSUED") {
		t.Fatalf("bad code page: %d %s", status, page)
	}
	if _, err := cf.wait(t); !matrix.IsInvalidGrant(err) || strings.Contains(err.Error(), "NOT_ISSUED") {
		t.Fatalf("unredeemable code: %v", err)
	}

	cf = startCodeFlow(t, t.Context(), o)
	if status, page = cf.callback(t, url.Values{"state": {cf.state(t)}}); status != http.StatusBadRequest || !strings.Contains(page, "no code") {
		t.Fatalf("callback without code: %d %s", status, page)
	}
	if _, err := cf.wait(t); !errors.Is(err, matrix.ErrMalformedResponse) {
		t.Fatalf("callback without code: %v", err)
	}

	base := strings.TrimSuffix(cf.l.RedirectURI(), "/callback")
	for _, tc := range []struct {
		method, path, host string
		want               int
	}{
		{"GET", "/other", "", http.StatusNotFound},
		{"POST", "/callback", "", http.StatusMethodNotAllowed},
		{"GET", "/callback", "attacker.example:80", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s %s (Host %q): %d, want %d", tc.method, tc.path, tc.host, res.StatusCode, tc.want)
		}
	}
}

// TestAuthCodeFlowEnds: cancelling ends the wait with ctx.Err() and later
// callbacks are told so; closing the listener ends it too; bad input to
// NewAuthCodeFlow is refused.
func TestAuthCodeFlowEnds(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t, homeserver.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cf := startCodeFlow(t, ctx, o)
	cancel()
	if _, err := cf.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if status, page := cf.callback(t, url.Values{"state": {cf.state(t)}, "code": {"c"}}); status != http.StatusGone || !strings.Contains(page, "no longer waiting") {
		t.Fatalf("callback after cancelling: %d %s", status, page)
	}

	cf = startCodeFlow(t, t.Context(), o)
	cf.l.Close()
	if _, err := cf.wait(t); !errors.Is(err, matrix.ErrLoopbackClosed) {
		t.Fatalf("closed listener: %v", err)
	}

	other, err := matrix.ListenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := cf.f.Wait(t.Context(), o.c, other); err == nil {
		t.Fatal("waited on another listener than the flow's")
	}
	for _, tc := range []struct{ clientID, scope, redirect string }{
		{"", "s", other.RedirectURI()},
		{o.clientID, "", other.RedirectURI()},
		{o.clientID, "s", matrix.LoopbackRedirectURI},
		{o.clientID, "s", "https://127.0.0.1:1/callback"},
		{o.clientID, "s", "http://example.org:1/callback"},
		{o.clientID, "s", "http://127.0.0.1:1/other"},
	} {
		if _, err := matrix.NewAuthCodeFlow(o.meta, tc.clientID, tc.scope, tc.redirect); err == nil {
			t.Errorf("NewAuthCodeFlow(%+v) accepted", tc)
		}
	}
	bad := *o.meta
	bad.AuthorizationEndpoint = "javascript:alert(1)"
	if _, err := matrix.NewAuthCodeFlow(&bad, o.clientID, "s", other.RedirectURI()); err == nil {
		t.Error("accepted a javascript: authorization endpoint")
	}
}

// TestLoopbackCloseKeepsLastPage: a front end closes the listener as soon as
// Wait returns; the browser must still get the whole page saying how the
// sign-in ended. Repeated, since the loss is a race.
func TestLoopbackCloseKeepsLastPage(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t, homeserver.Options{})
	for i := range 20 {
		cf := startCodeFlow(t, t.Context(), o)
		go func() {
			<-cf.done
			cf.l.Close()
		}()
		status, page := cf.callback(t, url.Values{"error": {"access_denied"}, "state": {cf.state(t)}})
		if status != http.StatusOK && status != http.StatusBadRequest || !strings.Contains(page, "Return to the terminal") || !strings.Contains(page, "</html>") {
			t.Fatalf("run %d: the page after Close was cut off: %d %q", i, status, page)
		}
		if _, err := cf.wait(t); !matrix.IsAccessDenied(err) {
			t.Fatalf("run %d: %v", i, err)
		}
	}
}
