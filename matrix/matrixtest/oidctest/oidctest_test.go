package oidctest_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/oidctest"
)

// env is a homeserver that delegates to a real oidc-provider, and a client of it.
type env struct {
	as   *oidctest.Server
	hs   *homeserver.Server
	c    *matrix.Client
	meta *matrix.AuthMetadata
}

func newEnv(t *testing.T, opt oidctest.Options) *env {
	t.Helper()
	as := oidctest.New(t, opt)
	hs := homeserver.New(homeserver.Options{ExternalAuth: as.ExternalAuth()})
	t.Cleanup(hs.Close)
	as.SyncDevices(hs)
	c, err := matrix.NewClient(hs.URL())
	if err != nil {
		t.Fatal(err)
	}
	probe, err := c.ProbeServerAuth(t.Context())
	if err != nil {
		t.Fatalf("probing the homeserver: %v", err)
	}
	if probe.Kind != matrix.AuthOAuthOnly {
		t.Fatalf("kind %s, want OAuth only", probe.Kind)
	}
	if probe.Metadata.Issuer != as.Issuer || !probe.Metadata.SupportsDeviceGrant() {
		t.Fatalf("metadata %+v: want the issuer %s with the device grant", probe.Metadata, as.Issuer)
	}
	return &env{as: as, hs: hs, c: c, meta: probe.Metadata}
}

func (e *env) register(t *testing.T, grants []string, redirects []string) string {
	t.Helper()
	reg := matrix.NativeClient("mxauth test", "https://mxauth.example.org/", grants, redirects)
	resp, err := e.c.RegisterClient(t.Context(), e.meta, reg)
	if err != nil {
		t.Fatalf("registration: %v", err)
	}
	return resp.ClientID
}

// deviceSignIn runs the whole device grant for user and returns the tokens,
// the client and the device ID.
func (e *env) deviceSignIn(t *testing.T, user string) (*matrix.OAuthTokenResponse, string, string) {
	t.Helper()
	clientID := e.register(t, []string{matrix.GrantDeviceCode, matrix.GrantRefreshToken}, nil)
	deviceID, err := matrix.NewDeviceID()
	if err != nil {
		t.Fatal(err)
	}
	da, err := e.c.RequestDeviceAuthorization(t.Context(), e.meta, clientID, matrix.OAuthScope(deviceID))
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	if da.PollInterval() != time.Second {
		t.Fatalf("interval %v, want the 1 s the server names", da.PollInterval())
	}
	poll := matrix.TokenRequest{GrantType: matrix.GrantDeviceCode, ClientID: clientID, DeviceCode: da.DeviceCode}
	if _, err := e.c.RequestToken(t.Context(), e.meta, poll); !matrix.IsAuthorizationPending(err) {
		t.Fatalf("before approval: %v, want authorization_pending", err)
	}
	// Poll as a client does while the person approves.
	type result struct {
		tok *matrix.OAuthTokenResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := e.c.PollDeviceToken(t.Context(), e.meta, clientID, da, nil)
		done <- result{tok, err}
	}()
	page, err := e.as.Browser().ApproveDevice(t.Context(), da.VerificationURI, da.UserCode, user, e.as.Users[user], oidctest.Approve)
	if err != nil {
		t.Fatalf("approving: %v", err)
	}
	if !strings.Contains(page, "return to your device") {
		t.Fatalf("last page: %s", page)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("polling for the token: %v", r.err)
	}
	tok := r.tok
	if tok.RefreshToken.IsZero() || tok.ExpiresIn == nil || *tok.ExpiresIn <= 0 {
		t.Fatalf("token reply without a refresh token or lifetime: %+v", tok)
	}
	return tok, clientID, deviceID
}

func (e *env) whoami(t *testing.T, access matrix.Secret, user, deviceID string) {
	t.Helper()
	who, err := e.c.WhoAmI(t.Context(), access)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	if who.UserID != "@"+user+":"+e.hs.ServerName() || who.DeviceID != deviceID {
		t.Fatalf("whoami: %s %s, want %s on device %s", who.UserID, who.DeviceID, user, deviceID)
	}
}

func (e *env) client(clientID string) matrix.OAuthClient {
	return matrix.OAuthClientOf(e.meta, clientID)
}

// TestDeviceGrant signs in with the device grant at oidc-provider and uses the
// token at the homeserver, which validates it by introspection: the user from
// sub, the device from the device scope, appearing on first use.
func TestDeviceGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	tok, _, deviceID := e.deviceSignIn(t, "alice")
	userID := "@alice:" + e.hs.ServerName()
	if got := e.hs.Devices(userID); len(got) != 0 {
		t.Fatalf("devices before first use: %v", got)
	}
	e.whoami(t, tok.AccessToken, "alice", deviceID)
	if got := e.hs.Devices(userID); !slices.Equal(got, []string{deviceID}) {
		t.Fatalf("devices after first use: %v, want %s", got, deviceID)
	}
	active, reply, err := e.as.Introspect(t.Context(), tok.AccessToken.Reveal())
	if err != nil || !active {
		t.Fatalf("introspection: %v %v", reply, err)
	}
	if reply["sub"] != "alice" || !slices.Contains(strings.Fields(reply["scope"].(string)), matrix.ScopeDevicePrefix+deviceID) {
		t.Fatalf("introspection lacks the user or the device scope: %v", reply)
	}
	// The refusals of a delegating homeserver.
	if err := e.c.Logout(t.Context(), tok.AccessToken); err == nil {
		t.Fatal("/logout accepted an OAuth token")
	}
	if err := e.c.DeleteDevice(t.Context(), tok.AccessToken, deviceID, nil); !matrix.IsUnsupported(err) {
		t.Fatalf("device deletion: %v, want 404", err)
	}
	e.whoami(t, tok.AccessToken, "alice", deviceID) // still signed in
	// A refresh token is no bearer credential.
	if _, err := e.c.WhoAmI(t.Context(), tok.RefreshToken); !matrix.IsUnknownToken(err) {
		t.Fatalf("whoami with the refresh token: %v", err)
	}
}

// TestDeviceCodeReplay: a device code redeemed twice is refused, and
// oidc-provider then revokes what the first redemption issued (RFC 6749
// section 4.1.2 asks this of authorization codes), where MAS only refuses.
func TestDeviceCodeReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	clientID := e.register(t, []string{matrix.GrantDeviceCode, matrix.GrantRefreshToken}, nil)
	da, err := e.c.RequestDeviceAuthorization(t.Context(), e.meta, clientID, matrix.OAuthScope("REPLAY1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.as.Browser().ApproveDevice(t.Context(), da.VerificationURIComplete, da.UserCode, "bob", e.as.Users["bob"], oidctest.Approve); err != nil {
		t.Fatal(err)
	}
	poll := matrix.TokenRequest{GrantType: matrix.GrantDeviceCode, ClientID: clientID, DeviceCode: da.DeviceCode}
	tok, err := e.c.RequestToken(t.Context(), e.meta, poll)
	if err != nil {
		t.Fatal(err)
	}
	e.whoami(t, tok.AccessToken, "bob", "REPLAY1")
	if _, err := e.c.RequestToken(t.Context(), e.meta, poll); !matrix.IsInvalidGrant(err) {
		t.Fatalf("device code redeemed twice: %v, want invalid_grant", err)
	}
	if _, err := e.c.WhoAmI(t.Context(), tok.AccessToken); !matrix.IsUnknownToken(err) {
		t.Fatalf("after the replay: %v, want the tokens revoked", err)
	}
}

// TestDeviceGrantDenied: the person denies on the consent page.
func TestDeviceGrantDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	clientID := e.register(t, []string{matrix.GrantDeviceCode, matrix.GrantRefreshToken}, nil)
	da, err := e.c.RequestDeviceAuthorization(t.Context(), e.meta, clientID, matrix.OAuthScope("DENIED1"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.as.Browser().ApproveDevice(t.Context(), da.VerificationURIComplete, da.UserCode, "bob", e.as.Users["bob"], oidctest.Deny)
	if err != nil || !strings.Contains(page, "denied") {
		t.Fatalf("denying: %v %s", err, page)
	}
	_, err = e.c.RequestToken(t.Context(), e.meta, matrix.TokenRequest{GrantType: matrix.GrantDeviceCode, ClientID: clientID, DeviceCode: da.DeviceCode})
	if !matrix.IsAccessDenied(err) {
		t.Fatalf("after denial: %v, want access_denied", err)
	}
	// A wrong password is refused on the sign-in page.
	da, err = e.c.RequestDeviceAuthorization(t.Context(), e.meta, clientID, matrix.OAuthScope("WRONGPW"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.as.Browser().ApproveDevice(t.Context(), da.VerificationURI, da.UserCode, "bob", "not-the-password", oidctest.Approve); err == nil {
		t.Fatal("a wrong password signed in")
	}
}

func pkce(t *testing.T) (verifier, challenge string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCodeFlowPKCE runs the authorization code grant with PKCE and a loopback
// redirect URI registered without a port and used with one.
func TestCodeFlowPKCE(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	clientID := e.register(t, []string{matrix.GrantAuthorizationCode, matrix.GrantRefreshToken}, []string{"http://127.0.0.1/callback"})
	deviceID, _ := matrix.NewDeviceID()
	redirect := "http://127.0.0.1:43117/callback"
	verifier, challenge := pkce(t)
	authURL := func(challenge string) string {
		q := url.Values{"response_type": {"code"}, "response_mode": {"query"}, "client_id": {clientID},
			"redirect_uri": {redirect}, "scope": {matrix.OAuthScope(deviceID)}, "state": {"st-123"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		return e.meta.AuthorizationEndpoint + "?" + q.Encode()
	}
	code := func(d oidctest.Decision, challenge string) url.Values {
		t.Helper()
		loc, err := e.as.Browser().Authorize(t.Context(), authURL(challenge), "bob", e.as.Users["bob"], d)
		if err != nil {
			t.Fatalf("authorizing: %v", err)
		}
		u, err := url.Parse(loc)
		if err != nil || u.Host != "127.0.0.1:43117" || u.Path != "/callback" {
			t.Fatalf("redirected to %s, want the loopback redirect URI with its port", loc)
		}
		if u.Query().Get("state") != "st-123" {
			t.Fatalf("state not echoed: %s", loc)
		}
		return u.Query()
	}
	exchange := func(code, verifier string) (*matrix.OAuthTokenResponse, error) {
		return e.c.RequestToken(t.Context(), e.meta, matrix.TokenRequest{GrantType: matrix.GrantAuthorizationCode, ClientID: clientID,
			Code: matrix.Secret(code), RedirectURI: redirect, CodeVerifier: matrix.Secret(verifier)})
	}

	if q := code(oidctest.Deny, challenge); q.Get("error") != "access_denied" {
		t.Fatalf("denied: %v, want error=access_denied", q)
	}
	q := code(oidctest.Approve, challenge)
	other, _ := pkce(t)
	if _, err := exchange(q.Get("code"), other); !matrix.IsInvalidGrant(err) {
		t.Fatalf("wrong verifier: %v, want invalid_grant", err)
	}
	q = code(oidctest.Approve, challenge) // the failed exchange used the code up
	tok, err := exchange(q.Get("code"), verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken.IsZero() {
		t.Fatal("no refresh token")
	}
	e.whoami(t, tok.AccessToken, "bob", deviceID)
	if _, err := exchange(q.Get("code"), verifier); !matrix.IsInvalidGrant(err) {
		t.Fatalf("code redeemed twice: %v, want invalid_grant", err)
	}
	// No PKCE: refused by the server before any sign-in.
	loc, err := e.as.Browser().Authorize(t.Context(), strings.Replace(authURL(challenge), "code_challenge=", "x=", 1), "bob", e.as.Users["bob"], oidctest.Approve)
	if err != nil || !strings.Contains(loc, "error=invalid_request") {
		t.Fatalf("without PKCE: %s %v, want invalid_request", loc, err)
	}
}

// TestRefreshRotation: each refresh rotates the refresh token; the new access
// token works at the homeserver; a rotated token whose successor was used is
// refused, and (oidc-provider's replay rule) that ends the whole session.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	tok, clientID, deviceID := e.deviceSignIn(t, "alice")
	oc := e.client(clientID)
	next, err := e.c.RefreshOAuth(t.Context(), oc, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	e.whoami(t, next.AccessToken, "alice", deviceID)
	third, err := e.c.RefreshOAuth(t.Context(), oc, next.RefreshToken)
	if err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	e.whoami(t, third.AccessToken, "alice", deviceID)

	_, err = e.c.RefreshOAuth(t.Context(), oc, tok.RefreshToken)
	if !matrix.IsInvalidGrant(err) || !matrix.IsOAuthSessionEnded(err) {
		t.Fatalf("spent refresh token: %v, want invalid_grant", err)
	}
	if _, err := e.c.WhoAmI(t.Context(), third.AccessToken); !matrix.IsUnknownToken(err) {
		t.Fatalf("after a replay: %v, want the session revoked", err)
	}
	if _, err := e.c.RefreshOAuth(t.Context(), oc, third.RefreshToken); !matrix.IsOAuthSessionEnded(err) {
		t.Fatalf("refresh after a replay: %v, want the session ended", err)
	}
}

// TestLostRefreshResponse: the server rotates but its answer is lost. With the
// rule MAS follows (the server's default here), the old refresh token is
// accepted again because nothing from the lost answer was used, and the pair
// the lost answer carried is dropped.
func TestLostRefreshResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	tok, clientID, deviceID := e.deviceSignIn(t, "alice")
	oc := e.client(clientID)
	e.as.DropResponse("/token", 1)
	before := e.as.Requests("/token")
	_, err := e.c.RefreshOAuth(t.Context(), oc, tok.RefreshToken)
	if err == nil || matrix.IsOAuthSessionEnded(err) || e.as.Requests("/token") != before+1 {
		t.Fatalf("lost response: %v, want a transport error after one request", err)
	}
	var lost struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if l := e.as.LostResponses(); len(l) != 1 || json.Unmarshal([]byte(l[0]), &lost) != nil || lost.RefreshToken == "" {
		t.Fatalf("the lost response: %q", l)
	}
	next, err := e.c.RefreshOAuth(t.Context(), oc, tok.RefreshToken)
	if err != nil {
		t.Fatalf("retry with the old refresh token: %v", err)
	}
	if next.RefreshToken.Reveal() == lost.RefreshToken {
		t.Fatal("the retry got the lost pair again")
	}
	if active, _, err := e.as.Introspect(t.Context(), lost.AccessToken); err != nil || active {
		t.Fatalf("the lost access token is still active (%v): the retry should replace the unused pair", err)
	}
	if _, err := e.c.RefreshOAuth(t.Context(), oc, matrix.Secret(lost.RefreshToken)); !matrix.IsInvalidGrant(err) {
		t.Fatalf("the lost refresh token: %v, want invalid_grant", err)
	}
	e.whoami(t, next.AccessToken, "alice", deviceID)
	if _, err := e.c.RefreshOAuth(t.Context(), oc, next.RefreshToken); err != nil {
		t.Fatalf("refresh after the retry: %v", err)
	}
}

// TestLostRefreshResponseStrict keeps oidc-provider's own rule: the retry is a
// replay, the server revokes the session, and the client sees a refusal that
// ends it (IsOAuthSessionEnded), not a transient failure.
func TestLostRefreshResponseStrict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{StrictReplay: true})
	tok, clientID, _ := e.deviceSignIn(t, "bob")
	oc := e.client(clientID)
	e.as.DropResponse("/token", 1)
	if _, err := e.c.RefreshOAuth(t.Context(), oc, tok.RefreshToken); err == nil || matrix.IsOAuthSessionEnded(err) {
		t.Fatalf("lost response: %v, want a transport error", err)
	}
	_, err := e.c.RefreshOAuth(t.Context(), oc, tok.RefreshToken)
	if !matrix.IsInvalidGrant(err) || !matrix.IsOAuthSessionEnded(err) {
		t.Fatalf("retry under the strict rule: %v, want invalid_grant", err)
	}
	if _, err := e.c.WhoAmI(t.Context(), tok.AccessToken); !matrix.IsUnknownToken(err) {
		t.Fatalf("access token after the replay: %v, want revoked", err)
	}
}

// TestRevocation: revoking either token (RFC 7009) ends both.
func TestRevocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	for _, hint := range []string{matrix.TokenHintRefresh, matrix.TokenHintAccess} {
		tok, clientID, deviceID := e.deviceSignIn(t, "alice")
		e.whoami(t, tok.AccessToken, "alice", deviceID)
		oc := e.client(clientID)
		revoke := tok.RefreshToken
		if hint == matrix.TokenHintAccess {
			revoke = tok.AccessToken
		}
		if err := e.c.RevokeOAuth(t.Context(), oc, revoke, hint); err != nil {
			t.Fatalf("revoking the %s: %v", hint, err)
		}
		if active, _, err := e.as.Introspect(t.Context(), tok.AccessToken.Reveal()); err != nil || active {
			t.Fatalf("%s revoked: access token still active (%v)", hint, err)
		}
		if _, err := e.c.WhoAmI(t.Context(), tok.AccessToken); !matrix.IsUnknownToken(err) {
			t.Fatalf("%s revoked: whoami %v", hint, err)
		}
		if slices.Contains(e.hs.Devices("@alice:"+e.hs.ServerName()), deviceID) {
			t.Fatalf("%s revoked: the homeserver still lists device %s", hint, deviceID)
		}
		if _, err := e.c.RefreshOAuth(t.Context(), oc, tok.RefreshToken); !matrix.IsOAuthSessionEnded(err) {
			t.Fatalf("%s revoked: refresh %v, want the session ended", hint, err)
		}
		if err := e.c.RevokeOAuth(t.Context(), oc, revoke, hint); err != nil {
			t.Fatalf("revoking again (RFC 7009: 200): %v", err)
		}
	}
}

// TestIssuerDown: the homeserver cannot check tokens while the issuer is away,
// and says so with a 5xx, not by signing the client out.
func TestIssuerDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	tok, _, deviceID := e.deviceSignIn(t, "bob")
	e.whoami(t, tok.AccessToken, "bob", deviceID)
	e.as.Stop()
	if e.as.Running() {
		t.Fatal("still running after Stop")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := e.c.WhoAmI(ctx, tok.AccessToken)
	if err == nil || matrix.IsUnknownToken(err) || !matrix.IsTransient(err) {
		t.Fatalf("whoami with the issuer down: %v, want a transient server error", err)
	}
}

// TestCodeFlowLoopback runs the client's own browser sign-in: the loopback
// listener, the authorization URL it builds, the person signing in, the
// browser coming back to the listener, and the exchange.
func TestCodeFlowLoopback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	clientID := e.register(t, []string{matrix.GrantAuthorizationCode, matrix.GrantRefreshToken}, []string{matrix.LoopbackRedirectURI})
	deviceID, _ := matrix.NewDeviceID()
	l, err := matrix.ListenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	flow, err := matrix.NewAuthCodeFlow(e.meta, clientID, matrix.OAuthScope(deviceID), l.RedirectURI())
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		tok *matrix.OAuthTokenResponse
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := flow.Wait(t.Context(), e.c, l)
		done <- result{tok, err}
	}()
	loc, err := e.as.Browser().Authorize(t.Context(), flow.URL, "alice", e.as.Users["alice"], oidctest.Approve)
	if err != nil {
		t.Fatalf("authorizing: %v", err)
	}
	if !strings.HasPrefix(loc, l.RedirectURI()+"?") {
		t.Fatalf("sent to %s, want the listener %s", loc, l.RedirectURI())
	}
	resp, err := http.Get(loc) // the browser comes back
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("the flow: %v", r.err)
	}
	if !strings.Contains(string(body), "return to the terminal") {
		t.Fatalf("the listener's page: %s", body)
	}
	e.whoami(t, r.tok.AccessToken, "alice", deviceID)
}

// TestAccountManagement: the account page the issuer's metadata names signs
// another device out (action org.matrix.device_delete), as a client's link
// asks: that device's tokens die, the others' live on.
func TestAccountManagement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.Options{})
	if e.meta.AccountManagementURI != e.as.Issuer+"/account" || !slices.Contains(e.meta.AccountManagementActionsSupported, matrix.AccountActionDeviceDelete) {
		t.Fatalf("metadata names no account page with device_delete: %+v", e.meta)
	}
	keep, keepClient, keepDevice := e.deviceSignIn(t, "alice")
	gone, goneClient, goneDevice := e.deviceSignIn(t, "alice")
	e.whoami(t, keep.AccessToken, "alice", keepDevice)
	e.whoami(t, gone.AccessToken, "alice", goneDevice)

	link, ok := e.client(keepClient).AccountManagementURL(matrix.AccountActionDeviceDelete, goneDevice)
	if !ok {
		t.Fatal("no account-management link")
	}
	if _, err := e.as.Browser().SignOutDevice(t.Context(), link, "bob", e.as.Users["bob"]); err == nil {
		t.Fatal("bob signed out alice's device")
	}
	page, err := e.as.Browser().SignOutDevice(t.Context(), link, "alice", e.as.Users["alice"])
	if err != nil || !strings.Contains(page, goneDevice+" has been signed out") {
		t.Fatalf("signing the device out: %v %s", err, page)
	}
	if got := e.hs.Devices("@alice:" + e.hs.ServerName()); !slices.Equal(got, []string{keepDevice}) {
		t.Fatalf("the homeserver's devices after the sign-out: %v, want only %s", got, keepDevice)
	}
	if _, err := e.c.WhoAmI(t.Context(), gone.AccessToken); !matrix.IsUnknownToken(err) {
		t.Fatalf("the signed-out device's token: %v, want unknown", err)
	}
	if _, err := e.c.RefreshOAuth(t.Context(), e.client(goneClient), gone.RefreshToken); !matrix.IsOAuthSessionEnded(err) {
		t.Fatalf("the signed-out device's refresh: %v, want the session ended", err)
	}
	e.whoami(t, keep.AccessToken, "alice", keepDevice)
	if _, err := e.c.RefreshOAuth(t.Context(), e.client(keepClient), keep.RefreshToken); err != nil {
		t.Fatalf("the other device's refresh: %v", err)
	}
}
