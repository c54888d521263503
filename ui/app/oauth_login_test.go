package app

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/matrix/matrixtest/clocktest"
)

// delegated starts a delegated homeserver whose device grant polls every second.
func delegated(t *testing.T, opt homeserver.Options) (srv *homeserver.Server, alice, password string) {
	t.Helper()
	opt.Delegated = true
	if opt.DeviceInterval == 0 {
		opt.DeviceInterval = time.Second
	}
	return startHomeserver(t, opt)
}

// secretsSeen is a memory keyring that remembers every value written to it
// (to look for them in errors) and can refuse to store account tokens.
type secretsSeen struct {
	keystore.Backend
	mu        sync.Mutex
	values    []string
	refuseSet bool
}

func (b *secretsSeen) Set(service, key, value string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.values = append(b.values, value)
	if b.refuseSet && !strings.Contains(key, "keyring-probe") {
		return errors.New("the collection refused the item")
	}
	return b.Backend.Set(service, key, value)
}

// tokens are the access and refresh tokens of every token set written (or
// offered) to the keyring, to look for them in errors.
func (b *secretsSeen) tokens() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, v := range b.values {
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return strings.ContainsRune(`{}",:`, r) }) {
			if strings.HasPrefix(f, "mat_") || strings.HasPrefix(f, "mar_") {
				out = append(out, f)
			}
		}
	}
	return out
}

func serviceOver(t *testing.T, b keystore.Backend, opt Options) *Service {
	t.Helper()
	st, err := keystore.Open(keystore.Options{Backend: b, Dir: t.TempDir(), LockTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if opt.DeviceName == "" {
		opt.DeviceName = "test"
	}
	return New(st, opt)
}

// approveDuringWait answers the device grant in a browser once Wait has
// polled (Wait calls onPoll on its own goroutine, between two polls).
func approveDuringWait(t *testing.T, l *OAuthLogin, user, password string, d browsertest.Decision) func(matrix.DevicePoll) {
	var once sync.Once
	return func(matrix.DevicePoll) {
		once.Do(func() {
			browsertest.New(t).AnswerDevice(l.VerificationURI, l.UserCode, browsertest.Answer{User: user, Password: password, Decision: d})
		})
	}
}

func startDeviceSignIn(t *testing.T, ctx context.Context, svc *Service, srv *homeserver.Server, user string) *OAuthLogin {
	t.Helper()
	l, err := svc.StartOAuthLogin(ctx, OAuthLoginParams{Homeserver: srv.URL(), User: user})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(l.Close)
	return l
}

func signInWithDevice(t *testing.T, ctx context.Context, svc *Service, srv *homeserver.Server, user, password string) Account {
	t.Helper()
	l := startDeviceSignIn(t, ctx, svc, srv, user)
	acct, err := l.Wait(ctx, approveDuringWait(t, l, user, password, "approve"))
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return acct
}

func nothingStored(t *testing.T, svc *Service) {
	t.Helper()
	if err := svc.Store().Reload(); err != nil {
		t.Fatal(err)
	}
	if a := svc.Store().Accounts(); len(a) != 0 {
		t.Fatalf("accounts recorded: %+v", a)
	}
	if p := svc.Store().PendingRemovals(); len(p) != 0 {
		t.Fatalf("markers left: %+v", p)
	}
}

// TestOAuthDeviceSignIn: the whole device grant through the Service, then the
// account's life: tokens, refresh at the token endpoint, sign-out by revocation.
func TestOAuthDeviceSignIn(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	b := &secretsSeen{Backend: keystore.NewMemoryBackend()}
	svc := serviceOver(t, b, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	probe, err := svc.ProbeAuth(ctx, srv.URL(), "")
	if err != nil || probe.Kind != matrix.AuthOAuthOnly || !probe.DeviceGrant || probe.Issuer != srv.Issuer() || probe.BaseURL != srv.URL() {
		t.Fatalf("probe: %+v %v", probe, err)
	}
	l := startDeviceSignIn(t, ctx, svc, srv, alice)
	if l.UserCode == "" || !strings.HasPrefix(l.VerificationURI, srv.URL()) || l.Interval != time.Second ||
		time.Until(l.ExpiresAt) < 19*time.Minute || l.Kind != matrix.AuthOAuthOnly || l.Issuer != srv.Issuer() || l.Browser {
		t.Fatalf("started: %+v", l)
	}
	nothingStored(t, svc)
	polls := 0
	approve := approveDuringWait(t, l, "alice", pw, "approve")
	acct, err := l.Wait(ctx, func(p matrix.DevicePoll) { polls++; approve(p) })
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if polls == 0 {
		t.Error("onPoll never saw a pending answer")
	}
	if acct.UserID != alice || !acct.OAuth || acct.Kind != matrix.AuthOAuthOnly || !strings.HasPrefix(acct.AccountURL, srv.URL()) || !acct.IsDefault {
		t.Fatalf("account: %+v", acct)
	}
	stored, ok := svc.Store().Account(alice)
	if !ok || stored.OAuth == nil || stored.OAuth.TokenEndpoint == "" || stored.Kind != "oauth" || stored.DeviceID != acct.DeviceID {
		t.Fatalf("index entry: %+v", stored)
	}
	if p := svc.Store().PendingRemovals(); len(p) != 0 {
		t.Fatalf("the sign-in's marker stayed: %+v", p)
	}
	if _, err := l.Wait(ctx, nil); err == nil {
		t.Fatal("a second Wait did not fail")
	}

	// Another process (a new Service over the same files) uses the account.
	other := New(svc.Store(), Options{DeviceName: "test"})
	tok, err := other.AccessToken(ctx, alice)
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	c, _ := matrix.NewClient(srv.URL())
	if who, err := c.WhoAmI(ctx, tok); err != nil || who.DeviceID != acct.DeviceID {
		t.Fatalf("whoami with the handed-out token: %+v %v", who, err)
	}
	if err := other.Refresh(ctx, alice); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	info, err := other.ServerInfo(ctx, alice)
	if err != nil || info.Kind != matrix.AuthOAuthOnly || info.GetLoginToken || !info.RefreshTokens {
		t.Fatalf("server info: %+v %v", info, err)
	}

	srv.ResetLog()
	if err := other.SignOut(ctx, alice); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if got := endpoints(srv.Requests()); len(got) != 1 || got[0] != "POST /auth/oauth2/revoke" {
		t.Fatalf("sign-out requests: %v, want one revocation", got)
	}
	if _, err := c.WhoAmI(ctx, tok); !matrix.IsUnknownToken(err) {
		t.Fatalf("the session still works after sign-out: %v", err)
	}
	if _, ok := other.Store().Account(alice); ok {
		t.Fatal("the account stayed listed")
	}
	if devs := srv.Devices(alice); len(devs) != 0 {
		t.Fatalf("devices left on the server: %v", devs)
	}
}

// TestOAuthSignInRefusals: denied, expired, a server without the device
// grant, a legacy server; nothing is stored in any case.
func TestOAuthSignInRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("denied", func(t *testing.T) {
		srv, alice, pw := delegated(t, homeserver.Options{})
		svc := memoryService(t)
		l := startDeviceSignIn(t, ctx, svc, srv, alice)
		_, err := l.Wait(ctx, approveDuringWait(t, l, "alice", pw, "deny"))
		if !errors.Is(err, ErrSignInDenied) || errors.Is(err, ErrSignInExpired) {
			t.Fatalf("wait: %v, want ErrSignInDenied", err)
		}
		nothingStored(t, svc)
	})
	t.Run("expired", func(t *testing.T) {
		clk := clocktest.New(time.Now())
		srv, alice, _ := delegated(t, homeserver.Options{Now: clk.Now})
		svc := memoryService(t)
		l := startDeviceSignIn(t, ctx, svc, srv, alice)
		clk.Advance(21 * time.Minute) // the server's 1200 s pass
		_, err := l.Wait(ctx, nil)
		if !errors.Is(err, ErrSignInExpired) {
			t.Fatalf("wait: %v, want ErrSignInExpired", err)
		}
		nothingStored(t, svc)
	})
	t.Run("no device grant", func(t *testing.T) {
		srv, alice, _ := delegated(t, homeserver.Options{DeviceGrantDisabled: true})
		svc := memoryService(t)
		_, err := svc.StartOAuthLogin(ctx, OAuthLoginParams{Homeserver: srv.URL(), User: alice})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "--browser") {
			t.Fatalf("start: %v, want ErrUnsupported naming --browser", err)
		}
		nothingStored(t, svc)
	})
	t.Run("legacy server", func(t *testing.T) {
		srv, alice, _ := startHomeserver(t, homeserver.Options{})
		svc := memoryService(t)
		if p, err := svc.ProbeAuth(ctx, srv.URL(), ""); err != nil || p.Kind != matrix.AuthLegacy || p.DeviceGrant {
			t.Fatalf("probe: %+v %v", p, err)
		}
		if _, err := svc.StartOAuthLogin(ctx, OAuthLoginParams{Homeserver: srv.URL(), User: alice}); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("start: %v, want ErrUnsupported", err)
		}
	})
	t.Run("someone else approved", func(t *testing.T) {
		srv, _, pw := delegated(t, homeserver.Options{})
		bob := srv.AddUser("bob", "bob's password")
		svc := memoryService(t)
		l := startDeviceSignIn(t, ctx, svc, srv, bob)
		_, err := l.Wait(ctx, approveDuringWait(t, l, "alice", pw, "approve"))
		if err == nil || !strings.Contains(err.Error(), "not "+bob) {
			t.Fatalf("wait: %v, want a refusal of alice's session", err)
		}
		nothingStored(t, svc)
		if devs := srv.Devices("@alice:" + srv.ServerName()); len(devs) != 0 {
			t.Fatalf("alice's session was kept on the server: %v", devs)
		}
	})
	t.Run("closed", func(t *testing.T) {
		srv, alice, _ := delegated(t, homeserver.Options{})
		svc := memoryService(t)
		l := startDeviceSignIn(t, ctx, svc, srv, alice)
		done := make(chan error, 1)
		go func() { _, err := l.Wait(ctx, func(matrix.DevicePoll) { l.Close() }); done <- err }()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("wait after Close: %v", err)
		}
		nothingStored(t, svc)
	})
}

// TestOAuthKeyringRefusesAfterGrant: the server granted the session but the
// keyring does not take the tokens: the grant is revoked, nothing is stored,
// and no token reaches the error.
func TestOAuthKeyringRefusesAfterGrant(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	b := &secretsSeen{Backend: keystore.NewMemoryBackend()}
	svc := serviceOver(t, b, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := startDeviceSignIn(t, ctx, svc, srv, alice)
	approve := approveDuringWait(t, l, "alice", pw, "approve")
	var seen []string
	b.mu.Lock()
	b.refuseSet = true
	b.mu.Unlock()
	srv.ResetLog()
	_, err := l.Wait(ctx, func(p matrix.DevicePoll) { approve(p) })
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("wait: %v, want the grant revoked", err)
	}
	for _, r := range srv.Requests() {
		seen = append(seen, r.Method+" "+r.Path)
	}
	if countRequests(srv, "/auth/oauth2/revoke", http.StatusOK) != 1 {
		t.Fatalf("requests: %v, want one revocation", seen)
	}
	if devs := srv.Devices(alice); len(devs) != 0 {
		t.Fatalf("the granted session lives on: devices %v", devs)
	}
	nothingStored(t, svc)
	toks := b.tokens()
	if len(toks) != 2 {
		t.Fatalf("the keyring was offered %d tokens, want the granted pair", len(toks))
	}
	for _, tok := range toks {
		if strings.Contains(err.Error(), tok) {
			t.Fatal("a token reached the error")
		}
	}
}

// TestOAuthSignInAgainKeepsDevice: a second sign-in of a held OAuth account
// asks for the same device, and the session it replaces is revoked.
func TestOAuthSignInAgainKeepsDevice(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := signInWithDevice(t, ctx, svc, srv, alice, pw)
	oldTok, err := svc.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	oldClient := *mustAccount(t, svc, alice).OAuth
	second := signInWithDevice(t, ctx, svc, srv, "alice", pw)
	if second.DeviceID != first.DeviceID {
		t.Fatalf("signed in again on device %s, not the held %s", second.DeviceID, first.DeviceID)
	}
	if got := mustAccount(t, svc, alice).OAuth; got.ClientID == oldClient.ClientID {
		t.Fatal("the account kept the old sign-in's client")
	}
	c, _ := matrix.NewClient(srv.URL())
	if _, err := c.WhoAmI(ctx, oldTok); !matrix.IsUnknownToken(err) {
		t.Fatalf("the replaced session still works: %v", err)
	}
	tok, err := svc.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if who, err := c.WhoAmI(ctx, tok); err != nil || who.DeviceID != first.DeviceID {
		t.Fatalf("the new session: %+v %v", who, err)
	}
	if err := svc.Refresh(ctx, alice); err != nil {
		t.Fatalf("refresh with the new client: %v", err)
	}
}

func mustAccount(t *testing.T, svc *Service, userID string) keystore.Account {
	t.Helper()
	a, ok := svc.Store().Account(userID)
	if !ok {
		t.Fatalf("%s not listed", userID)
	}
	return a
}

// TestOAuthAccountPage: devices of an OAuth account are signed out on the
// account page, and login tokens are explained.
func TestOAuthAccountPage(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acct := signInWithDevice(t, ctx, svc, srv, alice, pw)

	err := svc.DeleteDevice(ctx, alice, "OTHERDEVICE", nil)
	var page *AccountPageError
	if !errors.As(err, &page) || !errors.Is(err, ErrUnsupported) || page.DeviceID != "OTHERDEVICE" || page.Action != matrix.AccountActionDeviceDelete {
		t.Fatalf("delete device: %v", err)
	}
	u, perr := url.Parse(page.URL)
	if perr != nil || u.Query().Get("action") != "org.matrix.device_delete" || u.Query().Get("device_id") != "OTHERDEVICE" || !strings.Contains(err.Error(), page.URL) {
		t.Fatalf("account page link: %q (%v)", page.URL, err)
	}
	if got, err := svc.AccountPageURL(alice, matrix.AccountActionDeviceDelete, "OTHERDEVICE"); err != nil || got != page.URL {
		t.Fatalf("AccountPageURL: %q %v", got, err)
	}
	if err := svc.DeleteDevices(ctx, alice, []string{"A", "B"}, nil); !errors.As(err, &page) || page.Action != matrix.AccountActionDevicesList {
		t.Fatalf("delete devices: %v", err)
	}
	chk, err := svc.CheckLoginToken(ctx, alice)
	if err != nil || chk.Supported || !strings.Contains(chk.Reason, "login tokens do not exist") || !strings.HasPrefix(chk.AccountURL, acct.AccountURL) {
		t.Fatalf("check login token: %+v %v", chk, err)
	}
	if _, err := svc.MintLoginToken(ctx, alice, nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("mint: %v", err)
	}
	// Deleting the account's own device is its sign-out: revoked.
	if err := svc.DeleteDevice(ctx, alice, acct.DeviceID, nil); err != nil {
		t.Fatalf("delete own device: %v", err)
	}
	if _, ok := svc.Store().Account(alice); ok || len(srv.Devices(alice)) != 0 {
		t.Fatalf("own device deletion left: listed=%v devices=%v", ok, srv.Devices(alice))
	}
}

// TestOAuthSignOutUnreachable: a revocation that cannot reach the server
// removes nothing.
func TestOAuthSignOutUnreachable(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	signInWithDevice(t, ctx, svc, srv, alice, pw)
	srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/revoke", Status: 503, Body: `{"error":"temporarily_unavailable"}`})
	if err := svc.SignOut(ctx, alice); err == nil || !strings.Contains(err.Error(), "nothing was removed") {
		t.Fatalf("sign out: %v", err)
	}
	if _, ok := svc.Store().Account(alice); !ok {
		t.Fatal("the account went although the server was not reached")
	}
	if _, err := svc.AccessToken(ctx, alice); err != nil {
		t.Fatalf("the session no longer works: %v", err)
	}
}

// TestOAuthSignInAgainElsewhere: another process signs a held OAuth account
// in again on its device, with a new client. The running app must take the
// new client with the new tokens: refreshing them as the old client would be
// refused and end the session.
func TestOAuthSignInAgainElsewhere(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	dir, secrets := t.TempDir(), keystore.NewMemoryBackend()
	open := func() *Service {
		st, err := keystore.Open(keystore.Options{Backend: secrets, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return New(st, Options{DeviceName: "test", IndexPoll: 50 * time.Millisecond})
	}
	other := open()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := signInWithDevice(t, ctx, other, srv, alice, pw)
	running := open()
	go running.Run(ctx)
	running.LoadAll(ctx)
	if err := running.Refresh(ctx, alice); err != nil {
		t.Fatalf("refresh in the running app: %v", err)
	}

	signInWithDevice(t, ctx, other, srv, alice, pw)
	want := mustAccount(t, other, alice).OAuth.ClientID
	deadline := time.Now().Add(3 * indexPoll)
	for {
		sess, _, err := running.Session(ctx, alice)
		if err == nil {
			if oc, ok := sess.OAuth(); ok && oc.ClientID == want {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the running app kept the old sign-in's client")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := running.Refresh(ctx, alice); err != nil {
		t.Fatalf("refresh in the running app after the sign-in elsewhere: %v", err)
	}
	tok, err := running.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := matrix.NewClient(srv.URL())
	if who, err := c.WhoAmI(ctx, tok); err != nil || who.DeviceID != first.DeviceID {
		t.Fatalf("whoami: %+v %v", who, err)
	}
}
