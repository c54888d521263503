package cli

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/ui/app"
)

// The request counts below are recorded in docs/benchmarks.md ("Requests per
// operation"); the bounds are what each operation needs, so a stray call
// (an extra /versions, a refresh nobody asked for) fails the test.

// endpoints lists the log as "METHOD /path" in order.
func endpoints(reqs []homeserver.LoggedRequest) []string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// countRequests runs one command and returns the requests the server saw.
func countRequests(t *testing.T, srv *homeserver.Server, c *cli, stdin string, args ...string) []string {
	t.Helper()
	srv.ResetLog()
	c.ok(stdin, args...)
	got := endpoints(srv.Requests())
	t.Logf("mxauth %s: %d request(s) %v", strings.Join(args, " "), len(got), got)
	return got
}

// expectRequests checks got against the expected requests, in order.
func expectRequests(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s: %d request(s) %q, want %d: %q", what, len(got), got, len(want), want)
	}
}

func TestRequestsPerOperation(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)

	got := countRequests(t, srv, c, pw+"\n", "login", "--user", alice, "--password-stdin")
	expectRequests(t, "login with discovery", got,
		"GET /.well-known/matrix/client",
		"GET /_matrix/client/versions",
		"POST /_matrix/client/v3/login")

	other := newCLI(t)
	got = countRequests(t, srv, other, pw+"\n", "login", "--user", alice, "--homeserver", srv.URL(), "--password-stdin")
	expectRequests(t, "login with --homeserver", got, "POST /_matrix/client/v3/login")

	got = countRequests(t, srv, c, "", "token")
	expectRequests(t, "token with a valid token", got)

	got = countRequests(t, srv, c, "", "list")
	expectRequests(t, "list", got)

	got = countRequests(t, srv, c, "", "refresh")
	expectRequests(t, "refresh", got, "POST /_matrix/client/v3/refresh")

	got = countRequests(t, srv, c, pw+"\n", "login-token", "--password-stdin")
	expectRequests(t, "login-token with password UIA", got,
		"GET /_matrix/client/v3/capabilities",
		"POST /_matrix/client/v1/login/get_token",
		"POST /_matrix/client/v1/login/get_token")

	// Without the stable get_token, the advertised unstable path is looked up
	// once the stable one is found missing.
	old, bob, bobPW := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour, GetTokenUnstableOnly: true})
	oc := newCLI(t)
	oc.login(old, bob, bobPW)
	got = countRequests(t, old, oc, bobPW+"\n", "login-token", "--password-stdin")
	expectRequests(t, "login-token on a server with only the unstable path", got,
		"GET /_matrix/client/v3/capabilities",
		"POST /_matrix/client/v1/login/get_token",
		"GET /_matrix/client/versions",
		"GET /_matrix/client/v3/login",
		"POST /_matrix/client/unstable/org.matrix.msc3882/login/get_token",
		"POST /_matrix/client/unstable/org.matrix.msc3882/login/get_token")

	// The token just refreshed is valid: still nothing to ask the server.
	got = countRequests(t, srv, c, "", "token")
	expectRequests(t, "token after refresh", got)
}

// TestRequestsIdle runs the engine the full-screen app runs, with valid
// tokens, for MXAUTH_IDLE_SECONDS (default 5): it must not send anything.
func TestRequestsIdle(t *testing.T) {
	t.Parallel()
	idle := 5 * time.Second
	if s := os.Getenv("MXAUTH_IDLE_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("MXAUTH_IDLE_SECONDS=%q: want a positive number", s)
		}
		idle = time.Duration(n) * time.Second
	}
	srv := homeserver.New(homeserver.Options{AccessTokenLifetime: time.Hour})
	t.Cleanup(srv.Close)
	forgetKeyringItems(t, srv.ServerName())
	users := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		users[srv.AddUser(name, "pw-"+name)] = "pw-" + name
	}
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewMemoryBackend(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(st, app.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), idle+30*time.Second)
	defer cancel()
	for user, pw := range users {
		if _, err := svc.Login(ctx, app.LoginParams{Homeserver: srv.URL(), User: user, Password: matrix.Secret(pw)}); err != nil {
			t.Fatal(err)
		}
	}
	// And one account signed in through OAuth 2.0 on a delegated homeserver.
	dsrv, oauthUser, oauthPW := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	grant, err := svc.StartOAuthLogin(ctx, app.OAuthLoginParams{Homeserver: dsrv.URL(), User: oauthUser})
	if err != nil {
		t.Fatal(err)
	}
	browsertest.New(t).AnswerDevice(grant.VerificationURI, grant.UserCode, browsertest.Answer{User: "alice", Password: oauthPW, Decision: browsertest.Approve})
	if _, err := grant.Wait(ctx, nil); err != nil {
		t.Fatal(err)
	}
	users[oauthUser] = oauthPW
	// A fresh service, as at start-up: sessions load from the store.
	svc = newService(st, app.Options{})
	svc.LoadAll(ctx)
	srv.ResetLog()
	dsrv.ResetLog()
	runCtx, stop := context.WithTimeout(ctx, idle)
	defer stop()
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	for _, v := range svc.Accounts() {
		if v.Status.State.String() != "active" {
			t.Errorf("%s: %s (%s)", v.UserID, v.Status.State, v.Status.Problem)
		}
		if _, err := svc.AccessToken(ctx, v.UserID); err != nil {
			t.Errorf("%s: %v", v.UserID, err)
		}
	}
	<-done
	got := append(endpoints(srv.Requests()), endpoints(dsrv.Requests())...)
	t.Logf("engine idle %s with %d accounts (one of them OAuth 2.0): %d request(s) %v", idle, len(users), len(got), got)
	expectRequests(t, "idle engine", got)
}

// oauthRequests is the log as "METHOD /path" without the browser's visits to
// the authorization server's pages (the person approving, not mxauth).
func oauthRequests(srv *homeserver.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		switch r.Path {
		case "/auth/link", "/auth/login", "/auth/consent", "/auth/authorize", "/auth/account":
			continue
		}
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// TestRequestsPerOperationOAuth: what a device-grant sign-in, a refresh, a
// token and a sign-out of an OAuth 2.0 account ask of the servers.
func TestRequestsPerOperationOAuth(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	c := newCLI(t)
	srv.ResetLog()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bg := c.start(ctx, "login", "--user", alice, "--homeserver", srv.URL())
	m := bg.waitStderr(t, "the device code", deviceCodeOnStderr)
	// Approve after the first poll, so that exactly one poll is still pending.
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(oauthRequests(srv), "POST /auth/oauth2/token") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	browsertest.New(t).AnswerDevice(m[1], m[2], browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve})
	if r := bg.wait(t); r.code != 0 {
		t.Fatalf("login: %s", r)
	}
	got := oauthRequests(srv)
	polls := 0
	for _, r := range got {
		if r == "POST /auth/oauth2/token" {
			polls++
		}
	}
	t.Logf("mxauth login (device grant): %d request(s), %d to the token endpoint: %v", len(got), polls, got)
	want := []string{
		"GET /_matrix/client/v1/auth_metadata",
		"GET /_matrix/client/v3/login",
		"POST /auth/oauth2/registration",
		"POST /auth/oauth2/device",
	}
	for range max(polls, 2) {
		want = append(want, "POST /auth/oauth2/token")
	}
	want = append(want, "GET /_matrix/client/v3/account/whoami")
	expectRequests(t, "login with the device grant", got, want...)

	srv.ResetLog()
	c.ok("", "token")
	expectRequests(t, "token with a valid token", oauthRequests(srv))

	// Sign-out refreshes first (a pair whose refresh answer was lost would
	// otherwise be revoked in vain), then revokes.
	srv.ResetLog()
	c.ok("", "logout")
	expectRequests(t, "logout", oauthRequests(srv), "POST /auth/oauth2/token", "POST /auth/oauth2/revoke")

	if r := deviceSignIn(t, c, alice, "alice", pw, browsertest.Approve); r.code != 0 {
		t.Fatalf("sign-in again: %s", r)
	}
	srv.ResetLog()
	c.ok("", "refresh")
	expectRequests(t, "refresh", oauthRequests(srv), "POST /auth/oauth2/token")

	// Right after a refresh the sign-out takes its pair as it is (a forced
	// refresh within 5 s of another takes the stored pair): the revocation alone.
	srv.ResetLog()
	c.ok("", "logout")
	expectRequests(t, "logout right after a refresh", oauthRequests(srv), "POST /auth/oauth2/revoke")
}
