package cli

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// TestFaultSessionEndedByServer: once a refresh learned that the server ended
// the session, later commands (new processes) must not hand out its dead
// token: token and exec exit 4 with the reason, list shows the real state,
// and signing in again brings the account back.
func TestFaultSessionEndedByServer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		end       func(srv *homeserver.Server, user, device string)
		state     string // list --json
		shown     string // list
		reason    string // in token's error
		sameAgain bool   // the next sign-in keeps the device
	}{
		{"soft logout", (*homeserver.Server).SoftLogoutDevice, "sign-in-needed", "sign in again", "no longer accepts", true},
		{"device deleted", (*homeserver.Server).HardLogoutDevice, "signed-out", "signed out", "sign in again", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
			c := newCLI(t)
			c.login(srv, alice, pw)
			device := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)[0].DeviceID

			tc.end(srv, alice, device)
			oneLineStderr(t, c.expect(exitSignIn, "", "refresh"))

			r := c.expect(exitSignIn, "", "token")
			oneLineStderr(t, r)
			if r.stdout != "" || !strings.Contains(r.stderr, tc.reason) || !strings.Contains(r.stderr, "mxauth login") {
				t.Fatalf("token after the server ended the session: %s", r)
			}
			r = c.expect(exitSignIn, "", "exec", "--", "sh", "-c", "echo child ran")
			if strings.Contains(r.stdout, "child ran") {
				t.Fatalf("exec ran its command with a dead token: %s", r)
			}
			oneLineStderr(t, r)

			list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
			if len(list) != 1 || list[0].State != tc.state || list[0].Problem == "" {
				t.Fatalf("list --json: %+v, want state %q with a reason", list, tc.state)
			}
			if r := c.ok("", "list"); !strings.Contains(r.stdout, tc.shown) || strings.Contains(r.stdout, "active") {
				t.Fatalf("list shows: %s", r)
			}

			// Signing in again clears it.
			c.login(srv, alice, pw)
			tok := strings.TrimSpace(c.ok("", "token").stdout)
			who := whoami(t, srv.URL(), tok)
			if who.UserID != alice || (tc.sameAgain && who.DeviceID != device) {
				t.Fatalf("after signing in again: %+v (device before: %s)", who, device)
			}
			if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); got[0].State != "active" {
				t.Fatalf("list after signing in again: %+v", got)
			}
		})
	}
}

// raceFigures counts what the loops of TestFaultTokenRefreshRace saw.
type raceFigures struct {
	mu                sync.Mutex
	printed, rejected int
	laterRejected     int // rejected when used again heldFor after printing
	tokenFailed       int
	refreshes         int
	refreshFailed     int
	firstProblem      string
}

func (f *raceFigures) problem(format string, args ...any) {
	if f.firstProblem == "" {
		f.firstProblem = fmt.Sprintf(format, args...)
	}
}

// TestFaultTokenRefreshRace: several processes loop `mxauth token` (each
// printed token is used at once, as a script would) while others loop
// `mxauth refresh` back to back. No printed token may be one the server has
// already retired.
//
// At full length it runs alone: it keeps both cores busy on purpose, and its
// figures should describe the race, not other tests' load.
func TestFaultTokenRefreshRace(t *testing.T) {
	if !faultLength(true, false) {
		t.Parallel()
	}
	const (
		tokenLoops   = 6
		refreshLoops = 2
		// heldFor is how long after printing a token is used a second time,
		// like a script that makes a few calls with it.
		heldFor = 2 * time.Second
	)
	runFor := faultLength(15*time.Second, 3*time.Second)
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: 5 * time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)
	client, err := matrix.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}

	var f raceFigures
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	var wg, later sync.WaitGroup
	use := func(tok string) error {
		wctx, cancelWho := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancelWho()
		_, err := client.WhoAmI(wctx, matrix.Secret(tok))
		return err
	}
	loop := func(step func()) {
		defer wg.Done()
		for ctx.Err() == nil {
			step()
		}
	}
	runCmd := func(args ...string) (result, bool) {
		r, err := c.tryRun("", args...)
		return r, err == nil && r.code == 0
	}
	for range tokenLoops {
		wg.Add(1)
		go loop(func() {
			r, ok := runCmd("token")
			tok := strings.TrimSpace(r.stdout)
			if !ok || tok == "" {
				f.mu.Lock()
				f.tokenFailed++
				f.problem("token: %s", r)
				f.mu.Unlock()
				return
			}
			err := use(tok)
			f.mu.Lock()
			f.printed++
			if err != nil {
				f.rejected++
				f.problem("whoami with a printed token: %v", err)
			}
			f.mu.Unlock()
			later.Add(1)
			time.AfterFunc(heldFor, func() {
				defer later.Done()
				if err := use(tok); err != nil {
					f.mu.Lock()
					f.laterRejected++
					f.problem("whoami %s after printing: %v", heldFor, err)
					f.mu.Unlock()
				}
			})
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
	later.Wait()

	percent := func(n int) float64 {
		if f.printed == 0 {
			return 0
		}
		return 100 * float64(n) / float64(f.printed)
	}
	t.Logf("figure: %d token loops, %d refresh loops back to back, %s: %d tokens printed, %d rejected at once (%.1f%%), %d rejected %s later (%.1f%%), %d token runs failed; %d refresh runs (%d failed), %d refreshes reached the server",
		tokenLoops, refreshLoops, runFor, f.printed, f.rejected, percent(f.rejected), f.laterRejected, heldFor, percent(f.laterRejected),
		f.tokenFailed, f.refreshes, f.refreshFailed, srv.RefreshCount())
	if f.printed == 0 || f.refreshes == 0 {
		t.Fatalf("the loops did not run: %+v", f.firstProblem)
	}
	if f.rejected > 0 || f.laterRejected > 0 || f.tokenFailed > 0 || f.refreshFailed > 0 {
		t.Fatalf("first problem: %s", f.firstProblem)
	}
	// What is stored at the end still works.
	if who := whoami(t, srv.URL(), strings.TrimSpace(c.ok("", "token").stdout)); who.UserID != alice {
		t.Fatalf("whoami: %s", who.UserID)
	}
}

// TestFaultRefreshTwiceKeepsPrintedToken: a token printed just before two
// more refreshes still works after them. They come right after the first
// refresh, so they take its tokens instead of redeeming again: on a server
// like Synapse the second redemption after a token was issued ends it.
func TestFaultRefreshTwiceKeepsPrintedToken(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: 5 * time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)
	c.ok("", "refresh")
	printed := strings.TrimSpace(c.ok("", "token").stdout)
	c.ok("", "refresh")
	c.ok("", "refresh")
	if who := whoami(t, srv.URL(), printed); who.UserID != alice {
		t.Fatalf("whoami: %s", who.UserID)
	}
	if n := srv.RefreshCount(); n != 1 {
		t.Fatalf("%d refreshes reached the server, want 1 (the later refreshes adopt the first)", n)
	}
}
