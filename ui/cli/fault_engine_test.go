package cli

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/ui/app"
)

// oauthSignIn signs user in to a delegated homeserver through the device
// grant, with the Service the binary runs, over this cli's account list and
// the shared private keyring, approving in a cookie-jar browser.
func (c *cli) oauthSignIn(srv *homeserver.Server, user, localpart, password string) app.Account {
	c.t.Helper()
	st, err := keystore.Open(keystore.Options{Dir: c.dir})
	if err != nil {
		c.t.Fatal(err)
	}
	svc := app.New(st, app.Options{DeviceName: "test"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := svc.StartOAuthLogin(ctx, app.OAuthLoginParams{Homeserver: srv.URL(), User: user})
	if err != nil {
		c.t.Fatalf("start the OAuth sign-in: %v", err)
	}
	defer l.Close()
	var once sync.Once
	acct, err := l.Wait(ctx, func(matrix.DevicePoll) {
		once.Do(func() {
			browsertest.New(c.t).AnswerDevice(l.VerificationURI, l.UserCode, browsertest.Answer{User: localpart, Password: password, Decision: browsertest.Approve})
		})
	})
	if err != nil {
		c.t.Fatalf("OAuth sign-in: %v", err)
	}
	return acct
}

// TestFaultOAuthRefreshRace: processes printing tokens and forcing refreshes
// of one OAuth account back to back. Every refresh goes to the token endpoint
// under the account's lock, so the authorization server never sees a refresh
// token whose successor was used (it would refuse it and end the session).
// Like MAS, the test server ends an access token when its pair is refreshed,
// so a printed token may stop working once a refresh that began after it was
// printed went through; any other rejection means a dead token was handed out.
func TestFaultOAuthRefreshRace(t *testing.T) {
	t.Parallel()
	const tokenLoops, refreshLoops = 4, 2
	runFor := faultLength(15*time.Second, 3*time.Second)
	srv, alice, pw := startHomeserver(t, homeserver.Options{Delegated: true, OAuthAccessLifetime: 5 * time.Minute, DeviceInterval: time.Second})
	c := newCLI(t)
	acct := c.oauthSignIn(srv, alice, "alice", pw)
	if list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(list) != 1 || list[0].DeviceID != acct.DeviceID || list[0].State != "active" {
		t.Fatalf("list after the OAuth sign-in: %+v", list)
	}
	client, err := matrix.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetLog() // count the race only, not the sign-in's polls

	var f raceFigures
	replaced := 0 // rejected after a refresh replaced them, as MAS does (guarded by f.mu)
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	var wg sync.WaitGroup
	runCmd := func(args ...string) (result, bool) {
		r, err := c.tryRun("", args...)
		return r, err == nil && r.code == 0
	}
	loop := func(step func()) {
		defer wg.Done()
		for ctx.Err() == nil {
			step()
		}
	}
	for range tokenLoops {
		wg.Add(1)
		go loop(func() {
			asked := time.Now()
			r, ok := runCmd("token")
			tok := strings.TrimSpace(r.stdout)
			var err error
			if ok && tok != "" {
				wctx, cancelWho := context.WithTimeout(context.Background(), 10*time.Second)
				_, err = client.WhoAmI(wctx, matrix.Secret(tok))
				cancelWho()
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			switch {
			case !ok || tok == "":
				f.tokenFailed++
				f.problem("token: %s", r)
			case err != nil && refreshedSince(srv, asked):
				f.printed++
				replaced++
			case err != nil:
				f.printed++
				f.rejected++
				f.problem("whoami with a printed token, no refresh since it was asked for: %v", err)
			default:
				f.printed++
			}
		})
	}
	for range refreshLoops {
		wg.Add(1)
		go loop(func() {
			r, ok := runCmd("refresh")
			f.mu.Lock()
			f.refreshes++
			if !ok {
				f.refreshFailed++
				f.problem("refresh: %s", r)
			}
			f.mu.Unlock()
		})
	}
	wg.Wait()

	redeemed, refused := 0, 0
	for _, r := range srv.Requests() {
		if r.Path == "/auth/oauth2/token" {
			if r.Status == http.StatusOK {
				redeemed++
			} else {
				refused++
			}
		}
		if r.Path == "/_matrix/client/v3/refresh" {
			t.Errorf("an OAuth session was sent to /refresh")
		}
	}
	t.Logf("figure: OAuth account, %d token loops, %d refresh loops back to back, %s: %d tokens printed, %d rejected with no refresh since they were asked for, %d ended by a later refresh (as MAS ends them), %d token runs failed; %d refresh runs (%d failed); token endpoint: %d refreshes, %d refused",
		tokenLoops, refreshLoops, runFor, f.printed, f.rejected, replaced, f.tokenFailed, f.refreshes, f.refreshFailed, redeemed, refused)
	if f.printed == 0 || f.refreshes == 0 {
		t.Fatalf("the loops did not run: %s", f.firstProblem)
	}
	if f.rejected > 0 || f.tokenFailed > 0 || f.refreshFailed > 0 || refused > 0 {
		t.Fatalf("first problem: %s (refused at the token endpoint: %d)", f.firstProblem, refused)
	}

	// Sign-out revokes at the authorization server, never /logout.
	last := strings.TrimSpace(c.ok("", "token").stdout)
	srv.ResetLog()
	c.ok("", "logout")
	for _, r := range srv.Requests() {
		if r.Path == "/_matrix/client/v3/logout" {
			t.Error("an OAuth session was sent to /logout")
		}
	}
	if _, err := client.WhoAmI(context.Background(), matrix.Secret(last)); !matrix.IsUnknownToken(err) {
		t.Fatalf("the session works after logout: %v", err)
	}
	if items := keyringItems(t, alice); len(items) != 0 {
		t.Fatalf("keyring items after logout: %v", items)
	}
}

// refreshedSince reports a refresh the token endpoint granted at or after t.
func refreshedSince(srv *homeserver.Server, t time.Time) bool {
	for _, r := range srv.Requests() {
		if r.Path == "/auth/oauth2/token" && r.Status == http.StatusOK && !r.Time.Before(t) {
			return true
		}
	}
	return false
}
