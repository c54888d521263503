package session_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/matrix/session"
)

const tokenPath = "/auth/oauth2/token"

// oauthSignIn signs alice in through the device grant, approved in a browser,
// and returns the session's client record and first tokens.
func oauthSignIn(t *testing.T, srv *homeserver.Server, c *matrix.Client) (matrix.OAuthClient, session.AccountKey, matrix.TokenSet) {
	t.Helper()
	ctx := context.Background()
	meta, err := c.AuthMetadata(ctx)
	if err != nil {
		t.Fatalf("auth metadata: %v", err)
	}
	reg, err := c.RegisterClient(ctx, meta, matrix.NativeClient("mxauth test", "https://mxauth.example.org/", []string{matrix.GrantDeviceCode, matrix.GrantRefreshToken}, nil))
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	deviceID, err := matrix.NewDeviceID()
	if err != nil {
		t.Fatal(err)
	}
	da, err := c.RequestDeviceAuthorization(ctx, meta, reg.ClientID, matrix.OAuthScope(deviceID))
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	browsertest.New(t).AnswerDevice(da.VerificationURI, da.UserCode, browsertest.Answer{User: "alice", Password: "correct horse", Decision: browsertest.Approve})
	resp, err := c.RequestToken(ctx, meta, matrix.TokenRequest{GrantType: matrix.GrantDeviceCode, ClientID: reg.ClientID, DeviceCode: da.DeviceCode})
	if err != nil {
		t.Fatalf("device token: %v", err)
	}
	who, err := c.WhoAmI(ctx, resp.AccessToken)
	if err != nil || who.DeviceID != deviceID {
		t.Fatalf("whoami after sign-in: %+v %v", who, err)
	}
	return matrix.OAuthClientOf(meta, reg.ClientID), session.AccountKey{UserID: who.UserID, DeviceID: who.DeviceID}, resp.Tokens()
}

// newOAuthEnv is newEnv with a delegated homeserver and an OAuth session.
func newOAuthEnv(t *testing.T, o envOptions) (*env, matrix.OAuthClient) {
	t.Helper()
	o.server.Delegated = true
	if o.server.OAuthAccessLifetime == 0 {
		o.server.OAuthAccessLifetime = 10 * time.Minute
	}
	srv := homeserver.New(o.server)
	t.Cleanup(srv.Close)
	srv.AddUser("alice", "correct horse")
	client, err := matrix.NewClient(srv.URL(), o.client...)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, store: newMemStore(), client: client}
	e.m = session.NewManager(e.store, o.manager)
	oc, acct, tokens := oauthSignIn(t, srv, client)
	e.acct = acct
	if e.s, err = e.m.AddWithTokens(context.Background(), acct, client, tokens, session.WithOAuth(oc)); err != nil {
		t.Fatalf("add: %v", err)
	}
	return e, oc
}

// requests counts the server's log entries for path with the given status (0: any).
func (e *env) requests(path string, status int) int {
	n := 0
	for _, r := range e.srv.Requests() {
		if r.Path == path && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

func TestOAuthRefreshAtTokenEndpoint(t *testing.T) {
	e, oc := newOAuthEnv(t, envOptions{})
	if got, ok := e.s.OAuth(); !ok || got.ClientID != oc.ClientID {
		t.Fatalf("session's OAuth client: %+v %v", got, ok)
	}
	old := e.s.Tokens()
	if err := e.s.RefreshNow(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	got := e.s.Tokens()
	if got.AccessToken == old.AccessToken || got.RefreshToken == old.RefreshToken {
		t.Fatal("the refresh did not rotate the pair")
	}
	if stored, _ := e.store.stored(e.acct); stored.RefreshToken != got.RefreshToken {
		t.Fatal("the new pair was not stored")
	}
	if n := e.requests(tokenPath, http.StatusOK); n != 2 { // the sign-in and the refresh
		t.Fatalf("token endpoint answered 200 %d times, want 2", n)
	}
	if n := e.requests(refreshPath, 0); n != 0 {
		t.Fatalf("an OAuth session called /refresh %d times", n)
	}
	e.checkWorking(e.s)
	if st := e.s.Status(); st.State != session.StateActive || st.LastRefresh.IsZero() {
		t.Fatalf("status: %+v", st)
	}
}

// TestOAuthRefreshWhenDue: a token inside its refresh window is refreshed
// before it is handed out, on the engine's clock.
func TestOAuthRefreshWhenDue(t *testing.T) {
	clk := &fakeClock{}
	e, _ := newOAuthEnv(t, envOptions{
		server:  homeserver.Options{OAuthAccessLifetime: 5 * time.Minute, Now: clk.Now},
		manager: session.ManagerOptions{Now: clk.Now},
		client:  []matrix.Option{matrix.WithClock(clk.Now)},
	})
	old := e.s.Tokens()
	if st := e.s.Status(); st.NextRefresh.IsZero() || !st.NextRefresh.Before(old.ExpiresAt) {
		t.Fatalf("no refresh planned before expiry: %+v", st)
	}
	clk.Advance(4*time.Minute + 30*time.Second)
	tok, err := e.s.AccessToken(context.Background())
	if err != nil {
		t.Fatalf("access token: %v", err)
	}
	if tok == old.AccessToken {
		t.Fatal("a token inside its refresh window was handed out unrefreshed")
	}
	if n := e.requests(tokenPath, http.StatusOK); n != 2 {
		t.Fatalf("token endpoint answered 200 %d times, want 2", n)
	}
	e.checkWorking(e.s)
}

// TestOAuthRefreshResponseLost: the server rotates, the reply never arrives.
// The old refresh token is tried again and, under MAS's replay rule (the lost
// pair was never used), the server accepts it.
func TestOAuthRefreshResponseLost(t *testing.T) {
	e, _ := newOAuthEnv(t, envOptions{client: []matrix.Option{matrix.WithTimeout(2 * time.Second)}})
	old := e.s.Tokens()
	e.srv.InjectFault(homeserver.Fault{PathPrefix: tokenPath, DropAfterHandling: true})
	ctx := context.Background()
	err := e.s.RefreshNow(ctx)
	if !errors.Is(err, session.ErrServerUnreachable) {
		t.Fatalf("refresh with the reply lost: %v, want a transient failure", err)
	}
	if got := e.s.Tokens(); got.AccessToken != old.AccessToken || got.RefreshToken != old.RefreshToken {
		t.Fatal("tokens changed after a lost reply")
	}
	if stored, ok := e.store.stored(e.acct); !ok || stored.RefreshToken != old.RefreshToken {
		t.Fatal("the stored pair changed after a lost reply")
	}
	st := e.s.Status()
	if st.State != session.StateRetrying || st.RetryAt.IsZero() {
		t.Fatalf("status after the lost reply: %+v", st)
	}
	if strings.Contains(st.Problem, old.RefreshToken.Reveal()) || strings.Contains(err.Error(), old.RefreshToken.Reveal()) {
		t.Fatal("a token leaked into the problem text")
	}
	if err := e.s.RefreshNow(ctx); err != nil {
		t.Fatalf("retry with the old refresh token: %v", err)
	}
	got := e.s.Tokens()
	if got.RefreshToken == old.RefreshToken {
		t.Fatal("the retry did not rotate")
	}
	if n := e.requests(tokenPath, http.StatusBadRequest); n != 0 {
		t.Fatalf("the token endpoint refused %d refreshes", n)
	}
	e.checkWorking(e.s)
	// The rotation goes on from the retry's pair.
	if err := e.s.RefreshNow(ctx); err != nil {
		t.Fatalf("next refresh: %v", err)
	}
	e.checkWorking(e.s)
}

// TestOAuthRefreshTransient: 5xx, a rate limit and a gateway's HTML page keep
// the session and its tokens; the next attempt works.
func TestOAuthRefreshTransient(t *testing.T) {
	cases := []struct {
		name  string
		fault homeserver.Fault
		want  string
	}{
		{"500", homeserver.Fault{Status: 500, Body: `{"error":"server_error","error_description":"boom"}`}, "the authorization server had an error"},
		{"503 html", homeserver.Fault{Status: 503, Body: "<html>down</html>", Header: http.Header{"Content-Type": {"text/html"}}}, "the authorization server had an error"},
		{"429", homeserver.Fault{Status: 429, Body: `{"error":"too_many_requests"}`, Header: http.Header{"Retry-After": {"1"}}}, "rate limited by the authorization server"},
		{"answer lost", homeserver.Fault{DropAfterHandling: true}, "authorization server unreachable"},
		{"answer cut", homeserver.Fault{Truncate: true}, "authorization server unreachable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &fakeClock{}
			e, _ := newOAuthEnv(t, envOptions{
				server:  homeserver.Options{Now: clk.Now},
				manager: session.ManagerOptions{Now: clk.Now},
				client:  []matrix.Option{matrix.WithClock(clk.Now)},
			})
			old := e.s.Tokens()
			c.fault.PathPrefix = tokenPath
			e.srv.InjectFault(c.fault)
			err := e.s.RefreshNow(context.Background())
			if !errors.Is(err, session.ErrServerUnreachable) {
				t.Fatalf("refresh: %v, want a transient failure", err)
			}
			st := e.s.Status()
			if st.State != session.StateRetrying || !strings.Contains(st.Problem, c.want) {
				t.Fatalf("status: %v %q, want retrying with %q", st.State, st.Problem, c.want)
			}
			if stored, ok := e.store.stored(e.acct); !ok || stored.RefreshToken != old.RefreshToken {
				t.Fatal("the stored pair changed after a transient failure")
			}
			clk.Advance(time.Until(st.RetryAt) + time.Second)
			if err := e.s.RefreshNow(context.Background()); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if e.s.Status().State != session.StateActive || e.s.Tokens().RefreshToken == old.RefreshToken {
				t.Fatalf("after the retry: %+v", e.s.Status())
			}
			e.checkWorking(e.s)
		})
	}
}

// TestOAuthSessionEnded: a refusal at the token endpoint (invalid_grant after
// the session was revoked elsewhere, or any other 4xx but 429) ends the
// session: secrets deleted, signed out with a reason.
func TestOAuthSessionEnded(t *testing.T) {
	cases := []struct {
		name string
		end  func(e *env, oc matrix.OAuthClient)
	}{
		{"revoked elsewhere", func(e *env, oc matrix.OAuthClient) {
			if err := e.client.RevokeOAuth(context.Background(), oc, e.s.Tokens().RefreshToken, matrix.TokenHintRefresh); err != nil {
				e.t.Fatalf("revoke: %v", err)
			}
		}},
		{"401 invalid_client", func(e *env, _ matrix.OAuthClient) {
			e.srv.InjectFault(homeserver.Fault{PathPrefix: tokenPath, Status: 401, Body: `{"error":"invalid_client"}`})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, oc := newOAuthEnv(t, envOptions{})
			secret := e.s.Tokens().RefreshToken
			c.end(e, oc)
			err := e.s.RefreshNow(context.Background())
			if !errors.Is(err, session.ErrSignedOut) {
				t.Fatalf("refresh: %v, want signed out", err)
			}
			st := e.s.Status()
			if st.State != session.StateSignedOut || !strings.Contains(st.Problem, "authorization server ended this session") {
				t.Fatalf("status: %v %q", st.State, st.Problem)
			}
			if strings.Contains(err.Error(), secret.Reveal()) || strings.Contains(st.Problem, secret.Reveal()) {
				t.Fatal("the refresh token leaked into the error")
			}
			if _, ok := e.store.stored(e.acct); ok {
				t.Fatal("the dead tokens were kept")
			}
			if _, err := e.s.AccessToken(context.Background()); !errors.Is(err, session.ErrSignedOut) {
				t.Fatalf("a token was handed out after the end: %v", err)
			}
		})
	}
}

// TestOAuthRejectedTokenRefreshes: the homeserver refuses an access token the
// authorization server expired early; Do refreshes at the token endpoint and
// replays the call.
func TestOAuthRejectedTokenRefreshes(t *testing.T) {
	e, _ := newOAuthEnv(t, envOptions{})
	old := e.s.Tokens()
	e.srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/v3/account/whoami", Status: 401,
		Body: `{"errcode":"M_UNKNOWN_TOKEN","error":"expired","soft_logout":true}`})
	if err := e.s.Do(context.Background(), whoami(e.client)); err != nil {
		t.Fatalf("call after a rejected token: %v", err)
	}
	if e.s.Tokens().AccessToken == old.AccessToken {
		t.Fatal("the rejected token was not replaced")
	}
	if n := e.requests(tokenPath, http.StatusOK); n != 2 {
		t.Fatalf("token endpoint answered 200 %d times, want 2", n)
	}
}

// TestOAuthTwoManagers: two engines (two processes) share the account. The
// one that did not refresh takes the stored pair under the account lock
// instead of redeeming its superseded refresh token, which the server would
// refuse (its successor's access token was used), ending the session.
func TestOAuthTwoManagers(t *testing.T) {
	e, oc := newOAuthEnv(t, envOptions{manager: session.ManagerOptions{AdoptRecent: -1}})
	other := session.NewManager(e.store, session.ManagerOptions{AdoptRecent: -1})
	s2, err := other.Add(context.Background(), e.acct, e.client, session.WithOAuth(oc))
	if err != nil {
		t.Fatalf("second engine: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := e.s.RefreshNow(context.Background()); err != nil {
			t.Fatalf("refresh in the first engine: %v", err)
		}
		e.checkWorking(e.s) // the new access token is used: the old refresh token is dead now
		tok, err := s2.HandOutToken(context.Background())
		if err != nil {
			t.Fatalf("second engine after the first refreshed: %v", err)
		}
		if tok != e.s.Tokens().AccessToken {
			t.Fatal("the second engine handed out a superseded token")
		}
		if err := s2.RefreshNow(context.Background()); err != nil {
			t.Fatalf("refresh in the second engine: %v", err)
		}
		e.checkWorking(s2)
		if _, err := e.s.HandOutToken(context.Background()); err != nil {
			t.Fatalf("first engine after the second refreshed: %v", err)
		}
	}
	if n := e.requests(tokenPath, http.StatusBadRequest); n != 0 {
		t.Fatalf("the token endpoint refused %d refreshes", n)
	}
}

// TestOAuthAdoptsSignInElsewhere: another process signed the account in again
// on this device, with a new client, and stored the new pair. A forced refresh
// here, before this process learns of the new client, takes the pair instead
// of redeeming it as the old client, which the server would refuse, ending the
// new session and deleting its tokens.
func TestOAuthAdoptsSignInElsewhere(t *testing.T) {
	e, _ := newOAuthEnv(t, envOptions{})
	oc2, _, tokens2 := oauthSignIn(t, e.srv, e.client)
	// The same device again: the test's sign-in picks a fresh device ID, so
	// register the new pair under this account as the other process would.
	other := session.NewManager(e.store, session.ManagerOptions{})
	if _, err := other.AddWithTokens(context.Background(), e.acct, e.client, tokens2, session.WithOAuth(oc2)); err != nil {
		t.Fatal(err)
	}
	if err := e.s.RefreshNow(context.Background()); err != nil {
		t.Fatalf("forced refresh after a sign-in elsewhere: %v", err)
	}
	if got := e.s.Tokens(); got.AccessToken != tokens2.AccessToken {
		t.Fatal("the pair stored by the sign-in elsewhere was not taken")
	}
	if stored, ok := e.store.stored(e.acct); !ok || stored.RefreshToken != tokens2.RefreshToken {
		t.Fatal("the new session's tokens were lost")
	}
	if n := e.requests(tokenPath, http.StatusBadRequest); n != 0 {
		t.Fatalf("the token endpoint refused %d refreshes", n)
	}
}

// TestOAuthRefreshAsTheTokensClient: the stored pair names the client it was
// issued to, and that client refreshes it even when the session was added
// with another (an account list written before the keyring, or left behind
// by a sign-in again that stopped between the two); the new pair keeps it.
func TestOAuthRefreshAsTheTokensClient(t *testing.T) {
	e, oc := newOAuthEnv(t, envOptions{})
	tokens := e.s.Tokens()
	tokens.ClientID = oc.ClientID
	stale := oc
	stale.ClientID = "client-of-an-earlier-sign-in"
	s, err := e.m.AddWithTokens(context.Background(), e.acct, e.client, tokens, session.WithOAuth(stale))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RefreshNow(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got := s.Tokens(); got.ClientID != oc.ClientID || got.AccessToken == tokens.AccessToken {
		t.Fatalf("after the refresh the pair names client %q (want %q), rotated %v", got.ClientID, oc.ClientID, got.AccessToken != tokens.AccessToken)
	}
	if stored, _ := e.store.stored(e.acct); stored.ClientID != oc.ClientID {
		t.Fatalf("stored pair names client %q", stored.ClientID)
	}
}
