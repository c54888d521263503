package matrix_test

import (
	"context"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// TestLoginTokenHandoff runs the whole handoff against the test homeserver:
// password login with refresh tokens, get_token through UIA with a wrong
// password first, then m.login.token as a new device of the same user; the
// used token is refused afterwards.
func TestLoginTokenHandoff(t *testing.T) {
	srv := homeserver.New(homeserver.Options{AccessTokenLifetime: time.Minute})
	t.Cleanup(srv.Close)
	userID := srv.AddUser("alice", "correct horse")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := matrix.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	login, err := c.Login(ctx, matrix.PasswordLogin(userID, "correct horse"))
	if err != nil {
		t.Fatalf("password login: %v", err)
	}
	if login.UserID != userID || login.RefreshToken.IsZero() || !login.Tokens().Expires() {
		t.Fatalf("login reply: user %q, refresh token %v, expires %v", login.UserID, !login.RefreshToken.IsZero(), login.Tokens().Expires())
	}

	versions, err := c.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	flows, err := c.LoginFlows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capabilities(ctx, login.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	path, ok := matrix.LoginTokenPath(versions, flows)
	if !ok || !caps.GetLoginTokenEnabled() {
		t.Fatalf("get_token not offered: path %q ok %v, capability %v", path, ok, caps.GetLoginTokenEnabled())
	}

	// The first call carries no auth and is answered with the UIA challenge.
	_, err = c.GetLoginToken(ctx, login.AccessToken, path, matrix.GetLoginTokenRequest{})
	ch, isUIA := matrix.AsUIA(err)
	if !isUIA || !ch.CanUsePassword() || ch.Session == "" {
		t.Fatalf("want a password UIA challenge with a session, got %v", err)
	}
	if matrix.IsUnknownToken(err) {
		t.Fatal("a UIA challenge must not read as a token error")
	}

	// A wrong password: the same session comes back with the failed stage marked.
	_, err = c.GetLoginToken(ctx, login.AccessToken, path, matrix.GetLoginTokenRequest{Auth: matrix.PasswordAuth(ch.Session, userID, "wrong")})
	retry, isUIA := matrix.AsUIA(err)
	if !isUIA || !retry.StageFailed() || retry.Session != ch.Session {
		t.Fatalf("wrong password: want the same session with a failed stage, got %v", err)
	}

	minted, err := c.GetLoginToken(ctx, login.AccessToken, path, matrix.GetLoginTokenRequest{Auth: matrix.PasswordAuth(ch.Session, userID, "correct horse")})
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	if minted.LoginToken.IsZero() || minted.ExpiresInMS <= 0 || !minted.ExpiresAt().After(time.Now()) {
		t.Fatalf("minted token: empty %v, expires_in_ms %d", minted.LoginToken.IsZero(), minted.ExpiresInMS)
	}

	// The new device: an unauthenticated client with only the login token.
	fresh, err := matrix.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	second, err := fresh.Login(ctx, matrix.TokenLogin(minted.LoginToken))
	if err != nil {
		t.Fatalf("login with the minted token: %v", err)
	}
	first, err := c.WhoAmI(ctx, login.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	other, err := fresh.WhoAmI(ctx, second.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if first.UserID != userID || other.UserID != userID {
		t.Fatalf("whoami: %q and %q, want %q for both", first.UserID, other.UserID, userID)
	}
	if first.DeviceID == other.DeviceID || other.DeviceID != second.DeviceID {
		t.Fatalf("devices: first %q, second %q (login said %q): want two different devices", first.DeviceID, other.DeviceID, second.DeviceID)
	}

	// Single use: the same token a second time is refused.
	if _, err := fresh.Login(ctx, matrix.TokenLogin(minted.LoginToken)); !matrix.IsForbidden(err) {
		t.Fatalf("reusing the login token: want M_FORBIDDEN, got %v", err)
	}
}

// TestRefreshLostResponseRetry: the server rotates the tokens but the reply
// never arrives; the retry with the old refresh token succeeds and the new
// pair works.
func TestRefreshLostResponseRetry(t *testing.T) {
	srv := homeserver.New(homeserver.Options{AccessTokenLifetime: time.Minute})
	t.Cleanup(srv.Close)
	userID := srv.AddUser("bob", "pw")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := matrix.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	login, err := c.Login(ctx, matrix.PasswordLogin(userID, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/v3/refresh", DropAfterHandling: true})
	if _, err := c.Refresh(ctx, login.RefreshToken); err == nil || !matrix.IsTransient(err) {
		t.Fatalf("lost response: want a transient error, got %v", err)
	}
	if srv.RefreshCount() != 1 {
		t.Fatalf("the server should have rotated once, counted %d", srv.RefreshCount())
	}
	again, err := c.Refresh(ctx, login.RefreshToken)
	if err != nil {
		t.Fatalf("retry with the old refresh token: %v", err)
	}
	next := again.Apply(login.Tokens())
	who, err := c.WhoAmI(ctx, next.AccessToken)
	if err != nil || who.UserID != userID {
		t.Fatalf("whoami with the new token: %v %v", who, err)
	}
	if srv.ExpiredTokenUses() != 0 {
		t.Fatalf("the server saw %d expired tokens", srv.ExpiredTokenUses())
	}
}
