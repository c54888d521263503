package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/keystore/keyringtest"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
)

// TestHostileOAuthRedirects: an authorization server that redirects a token
// or revocation request to another host gets the refresh token sent nowhere
// else: the command fails and keeps everything.
func TestHostileOAuthRedirects(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	h.delegate()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r, _, _ := c.runTimed(ctx, "", "login", "--user", h.oauthUser(), "--homeserver", h.URL); r.code != 0 {
		t.Fatalf("login: %s", r)
	}

	var mu sync.Mutex
	var stolen []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		stolen = append(stolen, r.Method+" "+r.URL.Path+" "+r.PostForm.Encode())
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(elsewhere.Close)
	// The same machine under another name: another host to the client.
	other := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)
	redirect := func(path string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other+path, http.StatusTemporaryRedirect)
		}
	}

	h.set("POST /oauth/token", redirect("/token"))
	r := c.run("", "refresh", "--account", h.oauthUser())
	t.Logf("refresh redirected to another host: %s", r)
	if r.code == 0 {
		t.Errorf("refresh through a redirect to another host succeeded: %s", r)
	}
	h.set("POST /oauth/revoke", redirect("/revoke"))
	r = c.run("", "logout", "--account", h.oauthUser())
	t.Logf("logout redirected to another host: %s", r)
	if r.code == 0 {
		t.Errorf("logout through a redirect to another host said it signed out: %s", r)
	}
	mu.Lock()
	if len(stolen) > 0 {
		t.Errorf("the other host got %q", stolen)
	}
	mu.Unlock()
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 3 {
		t.Fatalf("after the refused redirects: %+v", got)
	}
}

// TestFaultOAuthGrantAnswerLost: the authorization server grants the
// approved sign-in, but its answer is lost on the way; the next poll is
// refused (the code is spent). login ends with one line that says the sign-in
// did not finish and to start again, exit 1, and nothing stored.
func TestFaultOAuthGrantAnswerLost(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	c := newCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bg := c.start(ctx, "login", "--user", alice)
	m := bg.waitStderr(t, "the device code", deviceCodeOnStderr)
	srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/token", DropAfterHandling: true, Count: -1})
	browsertest.New(t).AnswerDevice(m[1], m[2], browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve})
	// Let the poll that redeems the approval be handled and its answer dropped.
	deadline := time.Now().Add(30 * time.Second)
	for !grantRedeemed(srv) {
		if time.Now().After(deadline) {
			t.Fatalf("no poll after the approval: %v", endpoints(srv.Requests()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.ClearFaults()
	r := bg.wait(t)
	t.Logf("figure: login whose granted answer was lost: exit %d, %s", r.code, lastLine(r.stderr))
	if r.code != exitError {
		t.Fatalf("exit %d, want %d: %s", r.code, exitError, r)
	}
	clean(t, r)
	if last := lastLine(r.stderr); !strings.Contains(last, "nothing was stored") || !strings.Contains(last, "start the sign-in again") {
		t.Errorf("the last line should say the sign-in did not finish and to start again, in words: %s", r.stderr)
	}
	nothingStored(t, c, srv, alice)
}

// grantRedeemed reports a dropped token answer after the approval: the poll
// whose grant the server issued.
func grantRedeemed(srv *homeserver.Server) bool {
	approved := false
	for _, req := range srv.Requests() {
		switch {
		case req.Path == "/auth/consent" && req.Method == "POST":
			approved = true
		case approved && req.Path == "/auth/oauth2/token" && req.Status == 200:
			return true
		}
	}
	return false
}

// TestFaultOAuthTwoSignInsOfOneUser: two mxauth processes sign the same user
// in through the device grant at once (each on a new device, since neither
// held the account when it started). The one approved second finds the
// account recorded meanwhile: it revokes its own session and keeps that one,
// so both report the same device, which stays signed in, and nothing else is
// left on the server.
func TestFaultOAuthTwoSignInsOfOneUser(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	c := newCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := c.start(ctx, "login", "--user", alice, "--json")
	second := c.start(ctx, "login", "--user", alice, "--json")
	m1 := first.waitStderr(t, "the device code", deviceCodeOnStderr)
	m2 := second.waitStderr(t, "the device code", deviceCodeOnStderr)
	browsertest.New(t).AnswerDevice(m1[1], m1[2], browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve})
	r1 := first.wait(t)
	browsertest.New(t).AnswerDevice(m2[1], m2[2], browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve})
	r2 := second.wait(t)
	if r1.code != 0 || r2.code != 0 {
		t.Fatalf("sign-ins: %s\n%s", r1, r2)
	}
	d1 := decodeJSON[oauthAccountJSON](t, r1.stdout).DeviceID
	d2 := decodeJSON[oauthAccountJSON](t, r2.stdout).DeviceID
	devs := srv.Devices(alice)
	t.Logf("figure: two sign-ins of one user at once: reported devices %s and %s, %d device(s) on the server", d1, d2, len(devs))
	if d1 != d2 {
		t.Errorf("the two sign-ins report devices %s and %s; the first one's report must stay true", d1, d2)
	}
	if len(devs) != 1 || devs[0] != d1 {
		t.Errorf("server devices %v, want only %s", devs, d1)
	}
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || list[0].DeviceID != d1 || list[0].State != "active" {
		t.Fatalf("list: %+v", list)
	}
	tok := strings.TrimSpace(c.ok("", "token").stdout)
	if who := whoami(t, srv.URL(), tok); who.DeviceID != d1 {
		t.Fatalf("token belongs to %+v", who)
	}
	if items := keyringItems(t, alice); len(items) != 1 {
		t.Errorf("keyring items %v", items)
	}
	c.ok("", "logout")
}

// TestFaultOAuthKeyringHangsAfterApproval: the keyring stops answering while
// the device grant waits; the server then grants the approved sign-in. login
// ends after one keyring deadline with exit 3 and revokes the granted
// session; a held account keeps its session, and once the keyring answers
// again nothing of the failed sign-in is left.
func TestFaultOAuthKeyringHangsAfterApproval(t *testing.T) {
	t.Parallel()
	for _, again := range []bool{false, true} {
		name := "first sign-in"
		if again {
			name = "sign-in again"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			needKeyring(t)
			k := keyringtest.StartKeyring(t, keyringtest.Options{})
			srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
			c := &cli{t: t, dir: t.TempDir(), extra: append(k.Env, "MXAUTH_KEYRING_TIMEOUT=2s")}
			var device string
			if again {
				if r := deviceSignIn(t, c, alice, "alice", pw, browsertest.Approve); r.code != 0 {
					t.Fatalf("first sign-in: %s", r)
				}
				device = whoami(t, srv.URL(), strings.TrimSpace(c.ok("", "token").stdout)).DeviceID
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			bg := c.start(ctx, "login", "--user", alice)
			m := bg.waitStderr(t, "the device code", deviceCodeOnStderr)
			resume := pauseKeyring(t, k)
			start := time.Now()
			browsertest.New(t).AnswerDevice(m[1], m[2], browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve})
			r := bg.wait(t)
			took := time.Since(start)
			t.Logf("figure: %s with the keyring stopped after the approval: exit %d after %s", name, r.code, took.Round(100*time.Millisecond))
			if r.code != exitKeyring {
				t.Fatalf("exit %d, want %d: %s", r.code, exitKeyring, r)
			}
			if last := lastLine(r.stderr); !strings.Contains(last, "revoked") {
				t.Errorf("the error should say the granted sign-in was revoked: %s", r.stderr)
			}
			resume()

			devs := srv.Devices(alice)
			list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
			if !again {
				if len(devs) != 0 || len(list) != 0 {
					t.Fatalf("after the failed first sign-in: devices %v, accounts %+v", devs, list)
				}
				if items, err := k.SearchItems(map[string]string{"service": "mxauth"}); err != nil || len(items) != 0 {
					t.Fatalf("keyring items: %v %v", items, err)
				}
				return
			}
			if len(list) != 1 || list[0].DeviceID != device || list[0].State != "active" {
				t.Fatalf("the held account after the failed sign-in again: %+v", list)
			}
			tok := strings.TrimSpace(c.ok("", "token").stdout)
			if who := whoami(t, srv.URL(), tok); who.DeviceID != device {
				t.Fatalf("token belongs to %+v", who)
			}
			c.ok("", "refresh")
			c.ok("", "logout")
			if devs := srv.Devices(alice); len(devs) != 0 {
				t.Errorf("devices after logout: %v", devs)
			}
		})
	}
}
