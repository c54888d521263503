package cli

import (
	"context"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/matrix/matrixtest/clocktest"
)

// startDelegated starts a homeserver that delegates sign-in to its in-process
// authorization server, with alice (and her password).
func startDelegated(t *testing.T, opt homeserver.Options) (*homeserver.Server, string, string) {
	t.Helper()
	opt.Delegated = true
	if opt.DeviceInterval == 0 {
		opt.DeviceInterval = time.Second
	}
	return startHomeserver(t, opt)
}

// oauthAccountJSON is login --json's and list --json's view of an account
// with the OAuth fields.
type oauthAccountJSON struct {
	accountJSON
	Status string `json:"status"`
	Error  string `json:"error"`
}

// deviceSignIn runs mxauth login (plus args) in the background, approves (or
// answers with action) the device grant on the authorization server's pages
// as user, and returns what login did and the stderr up to the code.
func deviceSignIn(t *testing.T, c *cli, user, localpart, password string, d browsertest.Decision, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bg := c.start(ctx, append([]string{"login", "--user", user}, args...)...)
	m := bg.waitStderr(t, "the device code", deviceCodeOnStderr)
	browsertest.New(t).AnswerDevice(m[1], m[2], browsertest.Answer{User: localpart, Password: password, Decision: d})
	return bg.wait(t)
}

// TestOAuthLoginDeviceGrant: on an OAuth-only server, login signs in with the
// device grant by default: the page and code on stderr (and a QR code), the
// approval on the authorization server's pages, then the account works like
// any other: token, list, refresh, and logout revokes.
func TestOAuthLoginDeviceGrant(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	c := newCLI(t)
	r := deviceSignIn(t, c, alice, "alice", pw, "approve", "--json", "--qr")
	clean(t, r)
	if r.code != 0 {
		t.Fatalf("login: %s", r)
	}
	if !strings.Contains(r.stderr, "To sign in as "+alice+", open this page") {
		t.Errorf("login does not name the user it signs in: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, "signs in through OAuth 2.0 only") {
		t.Errorf("login does not say which kind of server it is: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, "▀") && !strings.Contains(r.stderr, "▄") {
		t.Errorf("--qr printed no QR code: %s", r.stderr)
	}
	got := decodeJSON[oauthAccountJSON](t, r.stdout)
	if got.Status != "signed-in" || got.UserID != alice || got.DeviceID == "" || got.Homeserver != srv.URL() || got.Kind != "oauth" || !got.OAuth {
		t.Fatalf("login --json: %s", r.stdout)
	}
	if devs := srv.Devices(alice); len(devs) != 1 || devs[0] != got.DeviceID {
		t.Fatalf("server devices %v, want %s", devs, got.DeviceID)
	}

	tok := strings.TrimSpace(c.ok("", "token").stdout)
	if who := whoami(t, srv.URL(), tok); who.UserID != alice || who.DeviceID != got.DeviceID {
		t.Fatalf("token belongs to %+v", who)
	}
	list := decodeJSON[[]oauthAccountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || list[0].Kind != "oauth" || !list[0].OAuth || list[0].State != "active" {
		t.Fatalf("list --json: %+v", list)
	}
	if r := c.ok("", "doctor"); !strings.Contains(r.stdout+r.stderr, "OAuth 2.0") {
		t.Errorf("doctor does not say the server's kind: %s", r)
	}

	c.ok("", "refresh")
	fresh := strings.TrimSpace(c.ok("", "token").stdout)
	if fresh == tok {
		t.Fatal("refresh handed out the same token")
	}
	if who := whoami(t, srv.URL(), fresh); who.DeviceID != got.DeviceID {
		t.Fatalf("refreshed token belongs to %+v", who)
	}

	srv.ResetLog()
	c.ok("", "logout")
	var revoked, logout bool
	for _, req := range srv.Requests() {
		revoked = revoked || req.Path == "/auth/oauth2/revoke"
		logout = logout || strings.HasSuffix(req.Path, "/logout")
	}
	if !revoked || logout {
		t.Errorf("sign-out: revoked %v, /logout %v; want revocation only: %v", revoked, logout, endpoints(srv.Requests()))
	}
	if devs := srv.Devices(alice); len(devs) != 0 {
		t.Errorf("the device outlived the sign-out: %v", devs)
	}
	if items := keyringItems(t, alice); len(items) != 0 {
		t.Errorf("keyring items after sign-out: %v", items)
	}
}

// TestOAuthLoginRefusedOrExpired: a denied grant and a code that expired end
// login with exit 1, a clear line (and with --json the outcome), and store
// nothing.
func TestOAuthLoginRefusedOrExpired(t *testing.T) {
	t.Parallel()
	t.Run("denied", func(t *testing.T) {
		t.Parallel()
		srv, alice, pw := startDelegated(t, homeserver.Options{})
		c := newCLI(t)
		r := deviceSignIn(t, c, alice, "alice", pw, "deny", "--json")
		clean(t, r)
		if r.code != exitError || !strings.Contains(lastLine(r.stderr), "denied") {
			t.Fatalf("denied sign-in: %s", r)
		}
		if got := decodeJSON[oauthAccountJSON](t, r.stdout); got.Status != "denied" || got.Error == "" || got.UserID != "" {
			t.Errorf("--json: %s", r.stdout)
		}
		nothingStored(t, c, srv, alice)
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		clk := clocktest.New(time.Now()) // moves only forward, from the real time
		srv, alice, _ := startDelegated(t, homeserver.Options{Now: clk.Now})
		c := newCLI(t)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		bg := c.start(ctx, "login", "--user", alice, "--json")
		bg.waitStderr(t, "the device code", deviceCodeOnStderr)
		// Past the code's lifetime on the server's clock: the next poll is refused.
		clk.Advance(21 * time.Minute)
		r := bg.wait(t)
		clean(t, r)
		if r.code != exitError || !strings.Contains(lastLine(r.stderr), "expired") {
			t.Fatalf("expired sign-in: %s", r)
		}
		if got := decodeJSON[oauthAccountJSON](t, r.stdout); got.Status != "expired" {
			t.Errorf("--json: %s", r.stdout)
		}
		nothingStored(t, c, srv, alice)
	})
}

// TestOAuthLoginCancelled: Ctrl+C (SIGINT) while the code waits ends login
// with exit 1, "cancelled" (with --json as the status too), and nothing stored.
func TestOAuthLoginCancelled(t *testing.T) {
	t.Parallel()
	srv, alice, _ := startDelegated(t, homeserver.Options{})
	c := newCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bg := c.start(ctx, "login", "--user", alice, "--json")
	bg.waitStderr(t, "the device code", deviceCodeOnStderr)
	if err := bg.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := bg.wait(t)
	clean(t, r)
	if r.code != exitError || !strings.Contains(lastLine(r.stderr), "cancelled") {
		t.Fatalf("cancelled sign-in: %s", r)
	}
	if got := decodeJSON[oauthAccountJSON](t, r.stdout); got.Status != "cancelled" {
		t.Errorf("--json: %s", r.stdout)
	}
	nothingStored(t, c, srv, alice)
}

// TestOAuthLoginBrowser: --browser opens the authorization page with the
// platform's opener ($BROWSER here), and the browser's return to the
// loopback listener finishes the sign-in.
func TestOAuthLoginBrowser(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{PasswordCompat: true})
	opener, opened := recordingOpener(t)
	c := newCLI(t)
	c.extra = []string{opener}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bg := c.start(ctx, "login", "--user", alice, "--browser", "--json")
	auth := openedURL(t, opened, bg)
	if !strings.HasPrefix(auth.String(), srv.URL()+"/auth/") || auth.Query().Get("code_challenge_method") != "S256" {
		t.Fatalf("opened %s", auth)
	}
	if !strings.Contains(bg.err.String(), auth.String()) {
		t.Errorf("the page opened is not also printed: %s", bg.err.String())
	}
	back := browsertest.New(t).Authorize(auth.String(), browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve})
	if back.URL.Hostname() != "127.0.0.1" || !strings.Contains(strings.ToLower(back.Body), "terminal") {
		t.Fatalf("after consent: %s %s", back.URL, back.Body)
	}
	r := bg.wait(t)
	clean(t, r)
	if r.code != 0 {
		t.Fatalf("browser sign-in: %s", r)
	}
	got := decodeJSON[oauthAccountJSON](t, r.stdout)
	if got.UserID != alice || got.Kind != "oauth-compat" || !got.OAuth {
		t.Fatalf("login --json: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "compatibility layer") {
		t.Errorf("login does not say the server takes passwords too: %s", r.stderr)
	}
	tok := strings.TrimSpace(c.ok("", "token").stdout)
	if who := whoami(t, srv.URL(), tok); who.UserID != alice || who.DeviceID != got.DeviceID {
		t.Fatalf("token belongs to %+v", who)
	}
	c.ok("", "logout")
}

// TestOAuthLoginChoosesTheWay: --password uses the compatibility layer where
// there is one and is exit 5 where there is none; --browser on a server
// without OAuth 2.0 and the device grant on a server without it are exit 5
// with what to do instead.
func TestOAuthLoginChoosesTheWay(t *testing.T) {
	t.Parallel()
	t.Run("oauth only", func(t *testing.T) {
		t.Parallel()
		srv, alice, pw := startDelegated(t, homeserver.Options{})
		c := newCLI(t)
		for _, args := range [][]string{
			{"--password", "--password-stdin"},
			{"--password-stdin"},
		} {
			r := c.expect(exitUnsupported, pw+"\n", append([]string{"login", "--user", alice}, args...)...)
			oneLineStderr(t, r)
			clean(t, r)
			if !strings.Contains(r.stderr, "OAuth 2.0") {
				t.Errorf("login %v: %s", args, r.stderr)
			}
		}
		nothingStored(t, c, srv, alice)
	})
	t.Run("password compatibility", func(t *testing.T) {
		t.Parallel()
		srv, alice, pw := startDelegated(t, homeserver.Options{PasswordCompat: true})
		c := newCLI(t)
		r := c.ok(pw+"\n", "login", "--user", alice, "--password", "--password-stdin", "--json")
		got := decodeJSON[oauthAccountJSON](t, r.stdout)
		if got.UserID != alice || got.Kind != "oauth-compat" || got.OAuth {
			t.Fatalf("--password on a compatibility layer: %s", r.stdout)
		}
		if !strings.Contains(r.stderr, "compatibility layer") {
			t.Errorf("login does not say which kind the server is: %s", r.stderr)
		}
		tok := strings.TrimSpace(c.ok("", "token").stdout)
		if who := whoami(t, srv.URL(), tok); who.UserID != alice {
			t.Fatalf("token belongs to %+v", who)
		}
		// Its devices: TestOAuthCompatPasswordAccountDevices.
		c.ok("", "logout")
	})
	t.Run("legacy", func(t *testing.T) {
		t.Parallel()
		srv, alice, _ := startHomeserver(t, homeserver.Options{})
		c := newCLI(t)
		r := c.expect(exitUnsupported, "", "login", "--user", alice, "--browser")
		oneLineStderr(t, r)
		if !strings.Contains(r.stderr, "OAuth 2.0") {
			t.Errorf("--browser on a legacy server: %s", r.stderr)
		}
		nothingStored(t, c, srv, alice)
	})
	t.Run("no device grant", func(t *testing.T) {
		t.Parallel()
		srv, alice, _ := startDelegated(t, homeserver.Options{DeviceGrantDisabled: true})
		c := newCLI(t)
		r := c.expect(exitUnsupported, "", "login", "--user", alice)
		if !strings.Contains(lastLine(r.stderr), "--browser") {
			t.Errorf("without the device grant: %s", r.stderr)
		}
		nothingStored(t, c, srv, alice)
	})
}

// TestOAuthAccountPage: what an OAuth 2.0 server does only on its account
// page: deleting a device prints (with --qr as a QR code, with --open opens)
// the page for that device and exits 5; the page then signs it out.
// login-token explains why there is none and names the page.
func TestOAuthAccountPage(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	opener, opened := recordingOpener(t)
	c := newCLI(t)
	if r := deviceSignIn(t, c, alice, "alice", pw, "approve"); r.code != 0 {
		t.Fatalf("first device: %s", r)
	}
	other := newCLI(t)
	if r := deviceSignIn(t, other, alice, "alice", pw, "approve"); r.code != 0 {
		t.Fatalf("second device: %s", r)
	}
	devs := srv.Devices(alice)
	if len(devs) != 2 {
		t.Fatalf("devices %v", devs)
	}
	mine := decodeJSON[[]oauthAccountJSON](t, c.ok("", "list", "--json").stdout)[0].DeviceID
	victim := devs[0]
	if victim == mine {
		victim = devs[1]
	}

	c.extra = []string{opener}
	r := c.expect(exitUnsupported, "", "devices", "delete", victim, "--qr", "--open")
	clean(t, r)
	link := regexp.MustCompile(`https?://\S+action=org\.matrix\.device_delete\S*`).FindString(r.stdout + r.stderr)
	if link == "" || !strings.Contains(link, "device_id="+victim) {
		t.Fatalf("devices delete: no account-page link for %s: %s", victim, r)
	}
	if !strings.Contains(r.stdout+r.stderr, "▀") {
		t.Errorf("--qr printed no QR code: %s", r)
	}
	if got := openedURL(t, opened, nil); got.String() != link {
		t.Errorf("--open opened %s, want %s", got, link)
	}
	if !slices.Contains(srv.Devices(alice), victim) {
		t.Fatal("the device went without the account page")
	}
	// The printed link does what it says.
	b := browsertest.New(t)
	page := b.Submit(b.Account(link, "alice", pw), nil).Body
	if !strings.Contains(page, "signed out") || slices.Contains(srv.Devices(alice), victim) {
		t.Fatalf("the account page did not sign %s out: %s", victim, page)
	}

	r = c.expect(exitUnsupported, "", "login-token")
	clean(t, r)
	if !strings.Contains(r.stdout+r.stderr, srv.URL()+"/auth/account") {
		t.Errorf("login-token names no account page: %s", r)
	}
	// This machine's own device is signed out here, by revocation.
	r = c.ok("", "devices", "delete", mine)
	if !strings.Contains(r.stderr, "revoked") || slices.Contains(srv.Devices(alice), mine) {
		t.Errorf("deleting this device: %s; devices now %v", r, srv.Devices(alice))
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Errorf("the account outlived its device: %+v", got)
	}
}

// nothingStored checks that a failed sign-in left no account, no keyring
// item and no device on the server.
func nothingStored(t *testing.T, c *cli, srv *homeserver.Server, user string) {
	t.Helper()
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Errorf("accounts after a failed sign-in: %+v", got)
	}
	if items := keyringItems(t, user); len(items) != 0 {
		t.Errorf("keyring items after a failed sign-in: %v", items)
	}
	if devs := srv.Devices(user); len(devs) != 0 {
		t.Errorf("server devices after a failed sign-in: %v", devs)
	}
}

// lastLine is the last line of s (stderr's final message).
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.ToLower(lines[len(lines)-1])
}

// TestOAuthLoginWithoutKeyring: without a usable keyring an OAuth 2.0
// sign-in stops with exit 3 before it registers or shows a code, so nobody
// approves a session that could not be kept.
func TestOAuthLoginWithoutKeyring(t *testing.T) {
	t.Parallel()
	srv, alice, _ := startDelegated(t, homeserver.Options{})
	c := newCLI(t)
	c.extra = []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus"}
	srv.ResetLog()
	r := c.expect(exitKeyring, "", "login", "--user", alice, "--json")
	clean(t, r)
	if strings.Contains(r.stderr, "enter the code") {
		t.Errorf("a code was shown though the keyring cannot keep the session: %s", r.stderr)
	}
	for _, got := range oauthRequests(srv) {
		if strings.HasPrefix(got, "POST /auth/") {
			t.Errorf("asked the authorization server %s without a keyring", got)
		}
	}
	if got := decodeJSON[oauthAccountJSON](t, r.stdout); got.Status != "error" || got.Error == "" {
		t.Errorf("--json: %s", r.stdout)
	}
}

// TestOAuthLoginBrowserWithoutOpener: with no browser to open (no $BROWSER,
// no graphical session), --browser prints the page whole, and opening it
// by hand finishes the sign-in.
func TestOAuthLoginBrowserWithoutOpener(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{})
	c := newCLI(t)
	c.extra = []string{"BROWSER=", "DISPLAY=", "WAYLAND_DISPLAY="}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bg := c.start(ctx, "login", "--user", alice, "--browser")
	m := bg.waitStderr(t, "the page to open", regexp.MustCompile(`Open this page in a browser on this machine to sign in as \S+:\n  (\S+)\n`))
	back := browsertest.New(t).Authorize(m[1], browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve})
	if !strings.Contains(strings.ToLower(back.Body), "terminal") {
		t.Fatalf("after consent: %s", back.Body)
	}
	if r := bg.wait(t); r.code != 0 || !strings.Contains(r.stderr, "Signed in as "+alice) {
		t.Fatalf("browser sign-in by hand: %s", r)
	}
	if devs := srv.Devices(alice); len(devs) != 1 {
		t.Fatalf("devices %v", devs)
	}
	c.ok("", "logout")
}

// TestOAuthCompatPasswordAccountDevices: an account signed in with a password
// through an OAuth 2.0 server's compatibility layer deletes another device on
// the server's account page (its link printed, exit 5, nothing deleted here)
// and signs its own device out.
func TestOAuthCompatPasswordAccountDevices(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startDelegated(t, homeserver.Options{PasswordCompat: true, AccessTokenLifetime: time.Hour})
	other := newCLI(t)
	if r := deviceSignIn(t, other, alice, "alice", pw, browsertest.Approve); r.code != 0 {
		t.Fatalf("OAuth sign-in of the other device: %s", r)
	}
	otherDevice := decodeJSON[[]accountJSON](t, other.ok("", "list", "--json").stdout)[0].DeviceID
	c := newCLI(t)
	c.ok(pw+"\n", "login", "--user", alice, "--password", "--password-stdin")
	own := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)[0].DeviceID

	r := c.expect(exitUnsupported, "", "devices", "delete", otherDevice)
	clean(t, r)
	link, err := url.Parse(strings.TrimSpace(r.stdout))
	if err != nil || !strings.HasPrefix(link.String(), srv.URL()+"/auth/") ||
		link.Query().Get("action") != "org.matrix.device_delete" || link.Query().Get("device_id") != otherDevice {
		t.Fatalf("devices delete of another device: %s", r)
	}
	if devs := srv.Devices(alice); len(devs) != 2 {
		t.Fatalf("devices after handing the deletion to the account page: %v", devs)
	}

	r = c.ok("", "devices", "delete", own)
	clean(t, r)
	if devs := srv.Devices(alice); len(devs) != 1 || devs[0] != otherDevice {
		t.Fatalf("devices after deleting the own device: %v (stderr %s)", devs, r.stderr)
	}
	if items := keyringItems(t, alice); len(items) != 1 {
		t.Fatalf("keyring items: %v", items)
	}
	other.ok("", "logout")
}
