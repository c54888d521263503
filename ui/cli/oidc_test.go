package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/oidctest"
)

// The binary signing in through a real OAuth 2.0 authorization server,
// oidc-provider (matrix/matrixtest/oidctest), behind the test homeserver in
// external mode, which validates every token by introspection at it.

// startRealOAuth starts oidc-provider and a homeserver delegating to it.
func startRealOAuth(t *testing.T, opt oidctest.Options) (*oidctest.Server, *homeserver.Server) {
	t.Helper()
	as := oidctest.New(t, opt)
	hs := homeserver.New(homeserver.Options{ExternalAuth: as.ExternalAuth()})
	t.Cleanup(hs.Close)
	forgetKeyringItems(t, hs.ServerName())
	as.SyncDevices(hs) // a session's end deletes its device there, as with MAS and Synapse
	return as, hs
}

// oidcProc is mxauth running in the background, its output collected as it comes.
type oidcProc struct {
	cmd            *exec.Cmd
	mu             sync.Mutex
	stdout, stderr bytes.Buffer
	done           chan struct{}
	err            error
}

type oidcWriter struct {
	p   *oidcProc
	buf *bytes.Buffer
}

func (w oidcWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.buf.Write(b)
}

func (c *cli) startOIDC(ctx context.Context, args ...string) *oidcProc {
	c.t.Helper()
	p := &oidcProc{cmd: c.command(ctx, "", args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = oidcWriter{p, &p.stdout}, oidcWriter{p, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	c.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *oidcProc) output() (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String(), p.stderr.String()
}

// waitStderr polls stderr until re matches (or the process ends) and returns
// the submatches.
func (p *oidcProc) waitStderr(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		_, stderr := p.output()
		if m := re.FindStringSubmatch(stderr); m != nil {
			return m
		}
		select {
		case <-p.done:
			out, stderr := p.output()
			t.Fatalf("mxauth ended before printing %s: %v\nstdout: %s\nstderr: %s", re, p.err, out, stderr)
		case <-deadline:
			t.Fatalf("mxauth did not print %s within 60 s; stderr: %s", re, stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *oidcProc) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		t.Fatal("mxauth did not end within 90 s")
	}
	out, stderr := p.output()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(p.err, &ee):
		code = ee.ExitCode()
	case p.err != nil:
		t.Fatalf("mxauth: %v", p.err)
	}
	return result{out, stderr, code}
}

var (
	// the device grant's page and code, as login prints them
	oidcDeviceStep = regexp.MustCompile(`open this page[^\n]*\n\s+(\S+)\nand enter the code:\n\s+(\S+)\n`)
	// the authorization page login prints when no browser can be opened
	oidcBrowserStep = regexp.MustCompile(`(?m)^\s+(http://\S+/auth\?\S+)$`)
)

// introspectionActive asks the authorization server whether token is live.
func introspectionActive(t *testing.T, as *oidctest.Server, token string) bool {
	t.Helper()
	active, _, err := as.Introspect(t.Context(), token)
	if err != nil {
		t.Fatalf("introspection: %v", err)
	}
	return active
}

// oidcDeviceLogin runs login with the device grant and approves it as user.
func oidcDeviceLogin(t *testing.T, c *cli, as *oidctest.Server, hs *homeserver.Server, user string) (userID string, r result) {
	t.Helper()
	userID = "@" + user + ":" + hs.ServerName()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	p := c.startOIDC(ctx, "login", "--user", userID, "--json")
	m := p.waitStderr(t, oidcDeviceStep)
	if _, err := as.Browser().ApproveDevice(ctx, m[1], m[2], user, as.Users[user], oidctest.Approve); err != nil {
		t.Fatalf("approving at the authorization server: %v", err)
	}
	return userID, p.wait(t)
}

// refreshAtServer runs refresh until one reaches the token endpoint: right
// after a refresh, mxauth hands out the fresh token instead of redeeming
// again (for a few seconds).
func refreshAtServer(t *testing.T, c *cli, as *oidctest.Server, account string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n := as.Requests("/token"); ; {
		c.ok("", "refresh", "--account", account)
		if as.Requests("/token") > n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no refresh reached the token endpoint within 30 s")
		}
		<-time.After(500 * time.Millisecond)
	}
}

// oidcAccount is what login --json reports.
type oidcAccount struct {
	Status   string `json:"status"`
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	Kind     string `json:"kind"`
	OAuth    bool   `json:"oauth"`
}

// TestRealOAuthDeviceLogin: mxauth login signs in with the device grant at
// oidc-provider (the page and code on stderr, approved by a person's browser),
// the token works at the homeserver, refresh rotates, and logout revokes: the
// token then fails introspection.
func TestRealOAuthDeviceLogin(t *testing.T) {
	t.Parallel()
	as, hs := startRealOAuth(t, oidctest.Options{})
	c := newCLI(t)
	alice, r := oidcDeviceLogin(t, c, as, hs, "alice")
	if r.code != 0 {
		t.Fatalf("login: %s", r)
	}
	var got oidcAccount
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Status != "signed-in" || got.UserID != alice || got.Kind != "oauth" || !got.OAuth || got.DeviceID == "" {
		t.Fatalf("login --json: %v %s", err, r.stdout)
	}
	tok := strings.TrimSpace(c.ok("", "token", "--account", alice).stdout)
	if who := whoami(t, hs.URL(), tok); who.UserID != alice || who.DeviceID != got.DeviceID {
		t.Fatalf("the token belongs to %+v, want %s on %s", who, alice, got.DeviceID)
	}

	before := as.Requests("/token")
	c.ok("", "refresh", "--account", alice)
	if as.Requests("/token") != before+1 {
		t.Fatalf("refresh made %d token requests, want 1", as.Requests("/token")-before)
	}
	fresh := strings.TrimSpace(c.ok("", "token", "--account", alice).stdout)
	if fresh == tok {
		t.Fatal("refresh kept the access token")
	}
	if who := whoami(t, hs.URL(), fresh); who.DeviceID != got.DeviceID {
		t.Fatalf("the refreshed token belongs to %+v", who)
	}
	// The rotated refresh token was stored: the next refresh at the server
	// redeems it. (Redeeming the old one would be a replay now that the new
	// access token was used, and would end the session.)
	refreshAtServer(t, c, as, alice)
	if who := whoami(t, hs.URL(), strings.TrimSpace(c.ok("", "token", "--account", alice).stdout)); who.DeviceID != got.DeviceID {
		t.Fatalf("the token after a second rotation belongs to %+v", who)
	}

	last := strings.TrimSpace(c.ok("", "token", "--account", alice).stdout)
	c.ok("", "logout", "--account", alice)
	if introspectionActive(t, as, last) {
		t.Fatal("the access token is still active after logout")
	}
	if devs := hs.Devices(alice); len(devs) != 0 {
		t.Fatalf("the homeserver still lists %v after logout", devs)
	}
	cl, _ := matrix.NewClient(hs.URL())
	if _, err := cl.WhoAmI(t.Context(), matrix.Secret(last)); !matrix.IsUnknownToken(err) {
		t.Fatalf("whoami after logout: %v, want the token unknown", err)
	}
	c.expect(exitSignIn, "", "token", "--account", alice)
}

// TestRealOAuthBrowserLogin: login --browser on a machine where no browser
// can be opened prints the authorization URL; the person's browser follows it,
// signs in at oidc-provider and comes back to mxauth's loopback listener.
func TestRealOAuthBrowserLogin(t *testing.T) {
	t.Parallel()
	as, hs := startRealOAuth(t, oidctest.Options{})
	c := newCLI(t)
	c.extra = []string{"DISPLAY=", "WAYLAND_DISPLAY=", "BROWSER="}
	bob := "@bob:" + hs.ServerName()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	p := c.startOIDC(ctx, "login", "--user", bob, "--browser")
	m := p.waitStderr(t, oidcBrowserStep)
	back, err := as.Browser().Authorize(ctx, m[1], "bob", as.Users["bob"], oidctest.Approve)
	if err != nil {
		t.Fatalf("signing in at the authorization server: %v", err)
	}
	if !strings.HasPrefix(back, "http://127.0.0.1:") {
		t.Fatalf("the server sent the browser to %s, not to mxauth's loopback listener", back)
	}
	resp, err := http.Get(back)
	if err != nil {
		t.Fatalf("returning to mxauth: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := p.wait(t)
	if r.code != 0 {
		t.Fatalf("login --browser: %s", r)
	}
	if !strings.Contains(string(page), "terminal") {
		t.Fatalf("the page mxauth showed the browser: %s", page)
	}
	tok := strings.TrimSpace(c.ok("", "token", "--account", bob).stdout)
	if who := whoami(t, hs.URL(), tok); who.UserID != bob {
		t.Fatalf("the token belongs to %+v", who)
	}
	c.ok("", "logout", "--account", bob)
	if introspectionActive(t, as, tok) {
		t.Fatal("the access token is still active after logout")
	}
}

// TestRealOAuthLostRefresh: the authorization server rotates the refresh
// token but its answer never reaches mxauth. refresh fails without losing the
// session; the next one redeems the old refresh token again, which the server
// accepts as nothing from the lost answer was used (MAS's rule).
func TestRealOAuthLostRefresh(t *testing.T) {
	t.Parallel()
	as, hs := startRealOAuth(t, oidctest.Options{})
	c := newCLI(t)
	alice, r := oidcDeviceLogin(t, c, as, hs, "alice")
	if r.code != 0 {
		t.Fatalf("login: %s", r)
	}
	tok := strings.TrimSpace(c.ok("", "token", "--account", alice).stdout)
	as.DropResponse("/token", 1)
	if r := c.run("", "refresh", "--account", alice); r.code == 0 || r.code == exitSignIn {
		t.Fatalf("refresh with its answer lost: %s, want a failure that keeps the session", r)
	}
	if got := strings.TrimSpace(c.ok("", "token", "--account", alice).stdout); got != tok {
		t.Fatal("the lost refresh changed the stored token")
	}
	c.ok("", "refresh", "--account", alice)
	fresh := strings.TrimSpace(c.ok("", "token", "--account", alice).stdout)
	if fresh == tok {
		t.Fatal("the retried refresh kept the access token")
	}
	if who := whoami(t, hs.URL(), fresh); who.UserID != alice {
		t.Fatalf("the refreshed token belongs to %+v", who)
	}
}

// TestRealOAuthLostRefreshStrict: with oidc-provider's own rule the retry is
// a replay that revokes the session; mxauth then says to sign in again
// (exit 4) instead of retrying forever, and keeps no dead tokens in use.
func TestRealOAuthLostRefreshStrict(t *testing.T) {
	t.Parallel()
	as, hs := startRealOAuth(t, oidctest.Options{StrictReplay: true})
	c := newCLI(t)
	alice, r := oidcDeviceLogin(t, c, as, hs, "alice")
	if r.code != 0 {
		t.Fatalf("login: %s", r)
	}
	tok := strings.TrimSpace(c.ok("", "token", "--account", alice).stdout)
	as.DropResponse("/token", 1)
	if r := c.run("", "refresh", "--account", alice); r.code == 0 || r.code == exitSignIn {
		t.Fatalf("refresh with its answer lost: %s, want a failure that keeps the session", r)
	}
	r = c.expect(exitSignIn, "", "refresh", "--account", alice)
	oneLineStderr(t, r)
	if introspectionActive(t, as, tok) {
		t.Fatal("the server did not revoke the session on the replay")
	}
	c.expect(exitSignIn, "", "token", "--account", alice)
}

// TestRealOAuthAccountPage: devices delete on an OAuth account prints the
// account page's link (exit 5, nothing deleted here); following it at
// oidc-provider's account page signs that device out: its next refresh says
// to sign in again, while this device carries on.
func TestRealOAuthAccountPage(t *testing.T) {
	t.Parallel()
	as, hs := startRealOAuth(t, oidctest.Options{})
	c, other := newCLI(t), newCLI(t)
	alice, r := oidcDeviceLogin(t, c, as, hs, "alice")
	if r.code != 0 {
		t.Fatalf("login: %s", r)
	}
	if _, r := oidcDeviceLogin(t, other, as, hs, "alice"); r.code != 0 {
		t.Fatalf("login on the other device: %s", r)
	}
	victim := decodeJSON[[]oidcAccount](t, other.ok("", "list", "--json").stdout)[0].DeviceID
	r = c.expect(exitUnsupported, "", "devices", "delete", victim)
	link := regexp.MustCompile(`http://\S+action=org\.matrix\.device_delete\S*`).FindString(r.stdout)
	if link == "" || !strings.HasPrefix(link, as.Issuer+"/account?") || !strings.Contains(link, "device_id="+victim) {
		t.Fatalf("devices delete: no account-page link for %s: %s", victim, r)
	}
	otok := strings.TrimSpace(other.ok("", "token", "--account", alice).stdout)
	if who := whoami(t, hs.URL(), otok); who.DeviceID != victim { // nothing was deleted yet
		t.Fatalf("the other device's token belongs to %+v", who)
	}
	page, err := as.Browser().SignOutDevice(t.Context(), link, "alice", as.Users["alice"])
	if err != nil || !strings.Contains(page, "signed out") {
		t.Fatalf("the account page: %v %s", err, page)
	}
	if devs := hs.Devices(alice); len(devs) != 1 || devs[0] == victim {
		t.Fatalf("the homeserver's devices after the sign-out: %v", devs)
	}
	oneLineStderr(t, other.expect(exitSignIn, "", "refresh", "--account", alice))
	c.ok("", "refresh", "--account", alice)
	tok := strings.TrimSpace(c.ok("", "token", "--account", alice).stdout)
	if who := whoami(t, hs.URL(), tok); who.UserID != alice || who.DeviceID == victim {
		t.Fatalf("this device's token belongs to %+v", who)
	}
}

// TestRealOAuthDeviceDenied: the person denies on oidc-provider's consent
// page; login ends with exit 1, says so (--json: denied), and stores nothing.
func TestRealOAuthDeviceDenied(t *testing.T) {
	t.Parallel()
	as, hs := startRealOAuth(t, oidctest.Options{})
	c := newCLI(t)
	bob := "@bob:" + hs.ServerName()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	p := c.startOIDC(ctx, "login", "--user", bob, "--json")
	m := p.waitStderr(t, oidcDeviceStep)
	if _, err := as.Browser().ApproveDevice(ctx, m[1], m[2], "bob", as.Users["bob"], oidctest.Deny); err != nil {
		t.Fatalf("denying at the authorization server: %v", err)
	}
	r := p.wait(t)
	var got oidcAccount
	if r.code != exitError || json.Unmarshal([]byte(r.stdout), &got) != nil || got.Status != "denied" || !strings.Contains(r.stderr, "denied") {
		t.Fatalf("login after a denial: %s", r)
	}
	if accounts := decodeJSON[[]oidcAccount](t, c.ok("", "list", "--json").stdout); len(accounts) != 0 {
		t.Fatalf("a denied sign-in left accounts: %+v", accounts)
	}
	if devs := hs.Devices(bob); len(devs) != 0 {
		t.Fatalf("a denied sign-in left devices on the homeserver: %v", devs)
	}
}
