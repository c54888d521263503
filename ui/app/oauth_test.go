package app

import (
	"context"
	"net/http"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/matrix/session"
)

const tokenPath = "/auth/oauth2/token"

// protocolSignIn signs user in on a delegated server through the device grant
// with the protocol layer only, approved in a browser.
func protocolSignIn(t *testing.T, srv *homeserver.Server, user, password string) (matrix.OAuthClient, session.AccountKey, matrix.TokenSet) {
	t.Helper()
	ctx := context.Background()
	c, err := matrix.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	meta, err := c.AuthMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.RegisterClient(ctx, meta, matrix.NativeClient("test", "https://mxauth.example.org/", []string{matrix.GrantDeviceCode, matrix.GrantRefreshToken}, nil))
	if err != nil {
		t.Fatal(err)
	}
	deviceID, _ := matrix.NewDeviceID()
	da, err := c.RequestDeviceAuthorization(ctx, meta, reg.ClientID, matrix.OAuthScope(deviceID))
	if err != nil {
		t.Fatal(err)
	}
	browsertest.New(t).AnswerDevice(da.VerificationURI, da.UserCode, browsertest.Answer{User: user, Password: password, Decision: browsertest.Approve})
	resp, err := c.RequestToken(ctx, meta, matrix.TokenRequest{GrantType: matrix.GrantDeviceCode, ClientID: reg.ClientID, DeviceCode: da.DeviceCode})
	if err != nil {
		t.Fatal(err)
	}
	who, err := c.WhoAmI(ctx, resp.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return matrix.OAuthClientOf(meta, reg.ClientID), session.AccountKey{UserID: who.UserID, DeviceID: who.DeviceID}, resp.Tokens()
}

func countRequests(srv *homeserver.Server, path string, status int) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Path == path && (status == 0 || r.Status == status) {
			n++
		}
	}
	return n
}

// TestOAuthAccountFromIndex: an account the index records as an OAuth session
// refreshes at the token endpoint (another process signed it in), hands out
// working tokens, and is never sent to /refresh.
func TestOAuthAccountFromIndex(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{Delegated: true})
	oc, key, tokens := protocolSignIn(t, srv, "alice", pw)
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := svc.Store().SaveTokens(ctx, key, tokens); err != nil {
		t.Fatal(err)
	}
	if err := svc.Store().PutAccount(keystore.Account{UserID: key.UserID, DeviceID: key.DeviceID, Homeserver: srv.URL(), Kind: matrix.AuthOAuthOnly.Name(), OAuth: &oc}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Refresh(ctx, alice); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	tok, err := svc.AccessToken(ctx, alice)
	if err != nil || tok == tokens.AccessToken {
		t.Fatalf("token after the refresh: same=%v %v", tok == tokens.AccessToken, err)
	}
	c, _ := matrix.NewClient(srv.URL())
	if _, err := c.WhoAmI(ctx, tok); err != nil {
		t.Fatalf("the handed-out token does not work: %v", err)
	}
	if n := countRequests(srv, tokenPath, http.StatusOK); n != 2 {
		t.Fatalf("token endpoint answered 200 %d times, want 2", n)
	}
	if n := countRequests(srv, "/_matrix/client/v3/refresh", 0); n != 0 {
		t.Fatalf("/refresh called %d times for an OAuth session", n)
	}
}

// TestSignOutLeftoverRevokes: repair ends a leftover OAuth session (an
// interrupted sign-in's) by revocation, never /logout.
func TestSignOutLeftoverRevokes(t *testing.T) {
	srv, _, pw := startHomeserver(t, homeserver.Options{Delegated: true})
	oc, key, tokens := protocolSignIn(t, srv, "alice", pw)
	svc := memoryService(t)
	ctx := context.Background()
	p := keystore.PendingRemoval{UserID: key.UserID, DeviceID: key.DeviceID, Login: true, Homeserver: srv.URL(), OAuth: &oc}
	if err := svc.SignOutLeftover(ctx, p, tokens); err != nil {
		t.Fatalf("sign out the leftover: %v", err)
	}
	c, _ := matrix.NewClient(srv.URL())
	if _, err := c.WhoAmI(ctx, tokens.AccessToken); !matrix.IsUnknownToken(err) {
		t.Fatalf("the leftover session still works: %v", err)
	}
	if n := countRequests(srv, "/_matrix/client/v3/logout", 0); n != 0 {
		t.Fatalf("/logout called %d times", n)
	}
	if n := countRequests(srv, "/auth/oauth2/revoke", http.StatusOK); n != 1 {
		t.Fatalf("revocations: %d, want 1", n)
	}
	if err := svc.SignOutLeftover(ctx, p, tokens); err != nil {
		t.Fatalf("a session already ended counts as done: %v", err)
	}
}
