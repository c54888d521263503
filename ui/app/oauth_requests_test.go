package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// TestOAuthRequestsPerOperation counts the requests of each OAuth operation
// as a front end makes them (probe, then sign in), for benchmarks.md.
func TestOAuthRequestsPerOperation(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	count := func(what string, want func() []string, run func()) {
		t.Helper()
		srv.ResetLog()
		run()
		var got []string
		for _, e := range endpoints(srv.Requests()) {
			if strings.HasPrefix(e, "GET /auth/") || strings.HasPrefix(e, "POST /auth/link") || strings.HasPrefix(e, "POST /auth/login") || strings.HasPrefix(e, "POST /auth/consent") {
				continue // the person's browser, not mxauth
			}
			got = append(got, e)
		}
		t.Logf("figure: %s: %d requests: %s", what, len(got), strings.Join(got, ", "))
		if strings.Join(got, ", ") != strings.Join(want(), ", ") {
			t.Errorf("%s: requests %v, want %v", what, got, want())
		}
	}
	var polls int
	signIn := func() []string {
		want := []string{"GET /_matrix/client/v1/auth_metadata", "GET /_matrix/client/v3/login", "POST /auth/oauth2/registration", "POST /auth/oauth2/device"}
		for i := 0; i <= polls; i++ { // the pending answers, then the tokens
			want = append(want, "POST /auth/oauth2/token")
		}
		return append(want, "GET /_matrix/client/v3/account/whoami")
	}
	count("device grant sign-in (probe, start, wait)", signIn, func() {
		if _, err := svc.ProbeAuth(ctx, srv.URL(), ""); err != nil {
			t.Fatal(err)
		}
		l := startDeviceSignIn(t, ctx, svc, srv, alice)
		approve := approveDuringWait(t, l, "alice", pw, "approve")
		if _, err := l.Wait(ctx, func(p matrix.DevicePoll) { polls++; approve(p) }); err != nil {
			t.Fatal(err)
		}
	})
	count("token (valid)", func() []string { return nil }, func() {
		if _, err := svc.AccessToken(ctx, alice); err != nil {
			t.Fatal(err)
		}
	})
	count("refresh", func() []string { return []string{"POST /auth/oauth2/token"} }, func() {
		if err := svc.Refresh(ctx, alice); err != nil {
			t.Fatal(err)
		}
	})
	count("sign-out right after a refresh", func() []string { return []string{"POST /auth/oauth2/revoke"} }, func() {
		if err := svc.SignOut(ctx, alice); err != nil {
			t.Fatal(err)
		}
	})
}

// TestPasswordSignInRecordsKind: a password sign-in through an OAuth server's
// compatibility layer records the kind the probe before it found, and login
// tokens are explained as on any OAuth server.
func TestPasswordSignInRecordsKind(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{PasswordCompat: true})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := svc.ProbeAuth(ctx, srv.URL(), alice)
	if err != nil || p.Kind != matrix.AuthOAuthPasswordCompat {
		t.Fatalf("probe: %+v %v", p, err)
	}
	acct, err := svc.Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)})
	if err != nil {
		t.Fatal(err)
	}
	if acct.Kind != matrix.AuthOAuthPasswordCompat || acct.OAuth || acct.AccountURL != "" {
		t.Fatalf("account: %+v", acct)
	}
	if a := mustAccount(t, svc, alice); a.Kind != "oauth-compat" || a.OAuth != nil {
		t.Fatalf("index entry: %+v", a)
	}
	chk, err := svc.CheckLoginToken(ctx, alice)
	if err != nil || chk.Supported || !strings.Contains(chk.Reason, "delegates sign-in") {
		t.Fatalf("check login token: %+v %v", chk, err)
	}
	// Without a probe first, the kind is not recorded (an entry like the older ones).
	other := memoryService(t)
	if a, err := other.Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)}); err != nil || a.Kind != 0 {
		t.Fatalf("unprobed sign-in: %+v %v", a, err)
	}
}
