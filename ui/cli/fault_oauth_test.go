package cli

import (
	"strings"
	"testing"
	"time"

	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/ui/app"
)

// TestFaultOAuthCrashAfterSaveBeforeIndex: an OAuth 2.0 sign-in killed
// between the keyring save and the index write leaves a granted session no
// account lists. The next command (any command), or doctor, revokes it at
// the authorization server (never /logout, which an OAuth server refuses)
// and deletes the item.
func TestFaultOAuthCrashAfterSaveBeforeIndex(t *testing.T) {
	t.Parallel()
	for _, next := range [][]string{{"list"}, {"token"}, {"doctor"}} {
		t.Run(next[0], func(t *testing.T) {
			t.Parallel()
			srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
			c := newCLI(t)
			crash := &cli{t: t, dir: c.dir, extra: []string{crashEnv(app.StepLoginSaved)}}
			r := deviceSignIn(t, crash, alice, "alice", pw, "approve")
			if r.code != -1 {
				t.Fatalf("the sign-in was not killed: %s", r)
			}
			items, devs := keyringItems(t, alice), srv.Devices(alice)
			t.Logf("figure: OAuth sign-in killed after the save: %d keyring item(s), %d server device(s)", len(items), len(devs))
			if len(items) != 1 || len(devs) != 1 {
				t.Fatalf("the crash did not come after the save: items %v, devices %v", items, devs)
			}

			srv.ResetLog()
			r = c.run("", next...)
			items, devs = keyringItems(t, alice), srv.Devices(alice)
			var revocations, logouts int
			for _, req := range srv.Requests() {
				switch {
				case req.Path == "/auth/oauth2/revoke":
					revocations++
				case strings.HasSuffix(req.Path, "/logout"):
					logouts++
				}
			}
			t.Logf("figure: after %s: %d keyring item(s), %d server device(s), %d revocation(s), %d /logout call(s)", next[0], len(items), len(devs), revocations, logouts)
			if len(items) != 0 || len(devs) != 0 || revocations == 0 || logouts != 0 {
				t.Fatalf("%s left items %v, devices %v (revocations %d, /logout %d): %s", next[0], items, devs, revocations, logouts, r)
			}
			if !strings.Contains(r.stderr+r.stdout, "interrupted sign-in") {
				t.Errorf("%s should say what it cleaned up: %s", next[0], r)
			}
			if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
				t.Fatalf("accounts: %+v", got)
			}
			// Nothing is left to repair, and the next sign-in is clean.
			if r := deviceSignIn(t, c, alice, "alice", pw, "approve"); r.code != 0 {
				t.Fatalf("signing in after the repair: %s", r)
			}
			if r := c.ok("", "list"); strings.Contains(r.stderr, "interrupted") {
				t.Fatalf("repaired twice: %s", r)
			}
			if items, devs := keyringItems(t, alice), srv.Devices(alice); len(items) != 1 || len(devs) != 1 {
				t.Fatalf("after signing in: items %v, devices %v", items, devs)
			}
		})
	}
}

// TestFaultOAuthCrashSignInAgain: signing in again on the held OAuth device,
// killed between the keyring save and the index write: the account keeps a
// session that refreshes (the tokens in the keyring and the client in the
// account list belong together), on the same device.
func TestFaultOAuthCrashSignInAgain(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	c := newCLI(t)
	if r := deviceSignIn(t, c, alice, "alice", pw, "approve"); r.code != 0 {
		t.Fatalf("sign-in: %s", r)
	}
	device := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)[0].DeviceID
	crash := &cli{t: t, dir: c.dir, extra: []string{crashEnv(app.StepLoginSaved)}}
	if r := deviceSignIn(t, crash, alice, "alice", pw, "approve"); r.code != -1 {
		t.Fatalf("the sign-in again was not killed: %s", r)
	}
	r := c.run("", "refresh")
	t.Logf("figure: refresh after a sign-in again killed after the save: exit %d", r.code)
	if r.code != 0 {
		t.Fatalf("the account lost its session: %s", r)
	}
	tok := strings.TrimSpace(c.ok("", "token").stdout)
	if who := whoami(t, srv.URL(), tok); who.UserID != alice || who.DeviceID != device {
		t.Fatalf("token belongs to %+v, want device %s", who, device)
	}
	if devs := srv.Devices(alice); len(devs) != 1 {
		t.Fatalf("devices %v", devs)
	}
	c.ok("", "logout")
}

// TestFaultOAuthSignOutAfterLostRefresh: a refresh whose answer was lost
// leaves the keyring with the pair the server already replaced (and MAS has
// ended its access token and answers a revocation of its refresh token with
// 200 and nothing done). Sign-out must still end the session on the server.
func TestFaultOAuthSignOutAfterLostRefresh(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	c := newCLI(t)
	if r := deviceSignIn(t, c, alice, "alice", pw, browsertest.Approve); r.code != 0 {
		t.Fatalf("sign-in: %s", r)
	}
	srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/token", DropAfterHandling: true})
	if r := c.run("", "refresh"); r.code == 0 {
		t.Fatalf("refresh with its answer lost succeeded: %s", r)
	}
	c.ok("", "logout")
	devs := srv.Devices(alice)
	t.Logf("figure: sign-out after a lost refresh answer: %d device(s) left on the server", len(devs))
	if len(devs) != 0 {
		t.Fatalf("the session outlived the sign-out: devices %v", devs)
	}
	if items := keyringItems(t, alice); len(items) != 0 {
		t.Fatalf("keyring items after sign-out: %v", items)
	}
}
