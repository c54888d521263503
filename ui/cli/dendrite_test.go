package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/matrixtest/dendritetest"
)

// The tests below run the real binary against Dendrite, a homeserver written
// by others: what passes against the in-process server must pass here too.

// startDendrite starts a Dendrite for t (stopped by t's cleanup), skipping with
// one line when it cannot be built or started, unless MXAUTH_REAL_HOMESERVER=1.
func startDendrite(t *testing.T, opt dendritetest.Options) *dendritetest.Server {
	t.Helper()
	if why := dendritetest.SkipReason(); why != "" {
		t.Skip(why)
	}
	start := time.Now()
	s, err := dendritetest.Start(opt)
	if err != nil {
		if os.Getenv(dendritetest.EnvRequire) == "1" {
			t.Fatalf("real homeserver required (%s=1): %v", dendritetest.EnvRequire, err)
		}
		msg, _, _ := strings.Cut(err.Error(), "\n")
		t.Skipf("Dendrite unavailable (%s); set %s=1 to require it", msg, dendritetest.EnvRequire)
	}
	t.Cleanup(s.Stop)
	forgetKeyringItems(t, s.ServerName)
	t.Logf("Dendrite %s started in %s at %s", dendritetest.Version, time.Since(start).Round(time.Millisecond), s.URL)
	return s
}

// dendriteUser registers a fresh user and returns its ID and password.
func dendriteUser(t *testing.T, s *dendritetest.Server, localpart string) (userID, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	password = "correct horse battery " + localpart
	userID, err := s.Register(ctx, localpart, password)
	if err != nil {
		t.Fatalf("registering %s: %v", localpart, err)
	}
	return userID, password
}

// directLogin signs a device in without mxauth, as another client would;
// deviceID "" lets the server pick one.
func directLogin(t *testing.T, baseURL, user, password, deviceID string) *matrix.LoginResponse {
	t.Helper()
	c, err := matrix.NewClient(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := matrix.PasswordLogin(user, matrix.Secret(password))
	req.DeviceID = deviceID
	resp, err := c.Login(ctx, req)
	if err != nil {
		t.Fatalf("direct login: %v", err)
	}
	return resp
}

// whoamiErr is whoami that returns the error instead of failing.
func whoamiErr(baseURL, token string) error {
	c, err := matrix.NewClient(baseURL)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.WhoAmI(ctx, matrix.Secret(token))
	return err
}

const nonExpiringMsg = "this server issues tokens that do not expire"

// TestDendrite runs every scenario against one Dendrite; the rate-limit
// scenario starts a second one with the limiter on.
func TestDendrite(t *testing.T) {
	t.Parallel()
	if testing.Short() && os.Getenv(dendritetest.EnvRequire) != "1" {
		t.Skip("starts a real homeserver")
	}
	needKeyring(t)
	srv := startDendrite(t, dendritetest.Options{})

	t.Run("Discovery", func(t *testing.T) { dendriteDiscovery(t, srv) })
	t.Run("PasswordLogin", func(t *testing.T) { dendritePasswordLogin(t, srv) })
	t.Run("LoginAgain", func(t *testing.T) { dendriteLoginAgain(t, srv) })
	t.Run("NonExpiring", func(t *testing.T) { dendriteNonExpiring(t, srv) })
	t.Run("LoginTokenUnsupported", func(t *testing.T) { dendriteLoginToken(t, srv) })
	t.Run("Devices", func(t *testing.T) { dendriteDevices(t, srv) })
	t.Run("Logout", func(t *testing.T) { dendriteLogout(t, srv) })
	t.Run("EndedElsewhere", func(t *testing.T) { dendriteEndedElsewhere(t, srv) })
	t.Run("EndedRecorded", func(t *testing.T) { dendriteEndedRecorded(t, srv) })
	t.Run("TUI", func(t *testing.T) { dendriteTUI(t, srv) })
	t.Run("RateLimit", dendriteRateLimit)
}

// dendriteDiscovery: the homeserver is found from the user ID alone (the
// loopback well-known rule), and doctor reports the server's spec versions.
func dendriteDiscovery(t *testing.T, srv *dendritetest.Server) {
	uid, pw := dendriteUser(t, srv, "disco")
	if !strings.HasSuffix(uid, ":"+srv.ServerName) {
		t.Fatalf("user ID %s is not on %s", uid, srv.ServerName)
	}
	c := newCLI(t)
	got := decodeJSON[accountJSON](t, c.ok(pw+"\n", "login", "--user", uid, "--password-stdin", "--json").stdout)
	if got.UserID != uid || got.DeviceID == "" || got.Homeserver != srv.URL || got.State != "non-expiring" || got.ExpiresAt != nil {
		t.Fatalf("login --json: %+v, want %s on %s", got, uid, srv.URL)
	}

	cl, err := matrix.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := cl.Versions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := c.ok("", "doctor")
	for _, want := range []string{
		"ok    keyring: Secret Service",
		fmt.Sprintf("ok    %s: homeserver %s answers, spec versions %s\n", uid, srv.URL, versionRange(v.Versions)),
		// Dendrite speaks up to v1.2: refresh tokens came in v1.3.
		uid + ": server predates refresh tokens (spec v1.3)",
		uid + ": no login tokens: this server does not offer login tokens",
		uid + ": token valid; " + nonExpiringMsg,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor lacks %q:\n%s", want, r.stdout)
		}
	}
	if len(v.Versions) == 0 || !strings.Contains(r.stdout, v.Versions[len(v.Versions)-1]) {
		t.Errorf("doctor does not name the newest version %v:\n%s", v.Versions, r.stdout)
	}
}

// dendritePasswordLogin: a wrong password leaves nothing; the right one
// stores a working token that list, list --json and token agree on.
func dendritePasswordLogin(t *testing.T, srv *dendritetest.Server) {
	uid, pw := dendriteUser(t, srv, "pat")
	c := newCLI(t)

	r := c.expect(exitError, "not the password at all\n", "login", "--user", uid, "--password-stdin")
	oneLineStderr(t, r)
	if !strings.Contains(r.stderr, "wrong user ID, password or login token") || strings.Contains(r.stderr, "not the password") {
		t.Fatalf("wrong password: want a plain reason and no echo: %s", r)
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after a failed login: %+v", got)
	}
	if items := keyringItems(t, uid); len(items) != 0 {
		t.Fatalf("keyring items after a failed login: %v", items)
	}

	r = c.ok(pw+"\n", "login", "--user", uid, "--password-stdin")
	if !strings.Contains(r.stderr, "Signed in as "+uid) || !strings.Contains(r.stderr, "Note: "+nonExpiringMsg+".") {
		t.Fatalf("login: %s", r)
	}
	if len(keyringItems(t, uid)) != 1 {
		t.Fatal("login stored no keyring item")
	}

	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 {
		t.Fatalf("list --json: %+v", list)
	}
	a := list[0]
	if a.UserID != uid || a.Homeserver != srv.URL || !a.Default || a.State != "non-expiring" ||
		a.ExpiresAt != nil || a.ExpiresInS != nil || a.HasRefreshToken || a.Problem != "" {
		t.Fatalf("list --json: %+v", a)
	}
	r = c.ok("", "list")
	row := regexp.MustCompile(`(?m)^\*\s+` + regexp.QuoteMeta(uid) + `\s+` + regexp.QuoteMeta(a.DeviceID) +
		`\s+` + regexp.QuoteMeta(srv.URL) + `\s+non-expiring\s+never\s*$`)
	if !row.MatchString(r.stdout) || !strings.Contains(r.stderr, uid+": "+nonExpiringMsg+".") {
		t.Fatalf("list: %s", r)
	}

	r = c.ok("", "token")
	tok := strings.TrimSpace(r.stdout)
	if tok == "" || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
		t.Fatalf("token must print the token and nothing else: %s", r)
	}
	if who := whoami(t, srv.URL, tok); who.UserID != uid || who.DeviceID != a.DeviceID {
		t.Fatalf("whoami with mxauth's token: %+v, want %s/%s", who, uid, a.DeviceID)
	}
	// The failed attempt made no device on the server.
	if devs := decodeJSON[[]deviceJSON](t, c.ok("", "devices", "--json").stdout); len(devs) != 1 || !devs[0].Current {
		t.Fatalf("devices after one failed and one good login: %+v", devs)
	}
}

// dendriteLoginAgain: signing in again with --homeserver keeps the device
// (Dendrite honours device_id), and exec hands the new token to a command.
func dendriteLoginAgain(t *testing.T, srv *dendritetest.Server) {
	uid, pw := dendriteUser(t, srv, "lars")
	c := newCLI(t)
	first := decodeJSON[accountJSON](t, c.ok(pw+"\n", "login", "--user", uid, "--password-stdin", "--json").stdout)
	oldTok := strings.TrimSpace(c.ok("", "token").stdout)
	again := decodeJSON[accountJSON](t, c.ok(pw+"\n", "login", "--user", uid, "--homeserver", srv.URL, "--password-stdin", "--json").stdout)
	if again.DeviceID != first.DeviceID || again.Homeserver != srv.URL {
		t.Fatalf("signing in again: %+v, want device %s", again, first.DeviceID)
	}
	devs := decodeJSON[[]deviceJSON](t, c.ok("", "devices", "--json").stdout)
	if len(devs) != 1 || devs[0].DeviceID != first.DeviceID {
		t.Fatalf("devices after signing in twice: %+v", devs)
	}
	if n := len(keyringItems(t, uid)); n != 1 {
		t.Fatalf("%d keyring items after signing in twice", n)
	}
	r := c.ok("", "exec", "--", "sh", "-c", `echo "$MATRIX_USER_ID"; echo "$MATRIX_HOMESERVER"; echo "$MATRIX_ACCESS_TOKEN"`)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || lines[0] != uid || lines[1] != srv.URL {
		t.Fatalf("exec env: %q", r.stdout)
	}
	if who := whoami(t, srv.URL, lines[2]); who.UserID != uid || who.DeviceID != first.DeviceID {
		t.Fatalf("whoami with exec's token: %+v", who)
	}
	// Dendrite revokes the device's previous token on a new login, so mxauth
	// must have replaced the stored one.
	if lines[2] == oldTok {
		t.Fatal("signing in again kept the previous token")
	}
	if err := whoamiErr(srv.URL, oldTok); !matrix.IsUnknownToken(err) {
		t.Fatalf("the previous token: want M_UNKNOWN_TOKEN, got %v", err)
	}
}

// dendriteNonExpiring: Dendrite issues no refresh token and no expiry even
// when asked for one; refresh says so and succeeds, changing nothing.
func dendriteNonExpiring(t *testing.T, srv *dendritetest.Server) {
	uid, pw := dendriteUser(t, srv, "nora")
	c := newCLI(t)
	c.ok(pw+"\n", "login", "--user", uid, "--password-stdin")
	before := strings.TrimSpace(c.ok("", "token").stdout)

	r := c.ok("", "refresh")
	if want := uid + ": " + nonExpiringMsg + "; nothing to refresh.\n"; r.stderr != want || r.stdout != "" {
		t.Fatalf("refresh: want only %q on stderr, got %s", want, r)
	}
	got := decodeJSON[accountJSON](t, c.ok("", "refresh", "--json").stdout)
	if got.UserID != uid || got.ExpiresAt != nil || got.HasRefreshToken || got.State != "non-expiring" {
		t.Fatalf("refresh --json: %+v", got)
	}
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || list[0].State != "non-expiring" || list[0].ExpiresAt != nil {
		t.Fatalf("list --json after refresh: %+v", list)
	}
	after := strings.TrimSpace(c.ok("", "token").stdout)
	if after != before {
		t.Fatal("refresh replaced a token that does not expire")
	}
	if who := whoami(t, srv.URL, after); who.UserID != uid {
		t.Fatalf("whoami: %s", who.UserID)
	}
}

// dendriteLoginToken: Dendrite has no get_token; login-token says so with
// exit code 5 and asks for no password.
func dendriteLoginToken(t *testing.T, srv *dendritetest.Server) {
	uid, pw := dendriteUser(t, srv, "lena")
	c := newCLI(t)
	c.ok(pw+"\n", "login", "--user", uid, "--password-stdin")
	for _, args := range [][]string{
		{"login-token", "--password-stdin"},
		{"login-token", "--password-stdin", "--json"},
	} {
		r := c.expect(exitUnsupported, pw+"\n", args...)
		oneLineStderr(t, r)
		if r.stderr != "mxauth: this server does not offer login tokens\n" || r.stdout != "" {
			t.Fatalf("%v: %s", args, r)
		}
	}
}

// dendriteDevices deletes another device through Dendrite's real
// user-interactive auth: a wrong password first, then the right one.
func dendriteDevices(t *testing.T, srv *dendritetest.Server) {
	uid, pw := dendriteUser(t, srv, "dave")
	c := newCLI(t)
	c.ok(pw+"\n", "login", "--user", uid, "--password-stdin")
	// A fixed ID: Dendrite's own are URL-safe base64 and may start with '-'.
	other := directLogin(t, srv.URL, uid, pw, "OTHERDEVICE")

	devs := decodeJSON[[]deviceJSON](t, c.ok("", "devices", "--json").stdout)
	var own string
	for _, d := range devs {
		if d.Current {
			own = d.DeviceID
		}
	}
	if len(devs) != 2 || own == "" || own == other.DeviceID {
		t.Fatalf("devices --json: %+v (other device %s)", devs, other.DeviceID)
	}
	if r := c.ok("", "devices"); !regexp.MustCompile(`(?m)^\*\s+`+regexp.QuoteMeta(own)+`\s`).MatchString(r.stdout) ||
		!strings.Contains(r.stdout, other.DeviceID) {
		t.Fatalf("devices: %s", r)
	}

	r := c.run("wrong password here\n"+pw+"\n", "devices", "delete", other.DeviceID, "--password-stdin")
	if r.code == exitOK || !strings.Contains(r.stderr, "wrong password") {
		t.Fatalf("delete with a wrong password: %s", r)
	}
	oneLineStderr(t, r)
	if n := len(decodeJSON[[]deviceJSON](t, c.ok("", "devices", "--json").stdout)); n != 2 {
		t.Fatalf("%d devices after a wrong password", n)
	}

	r = c.ok(pw+"\n", "devices", "delete", other.DeviceID, "--password-stdin")
	if !strings.Contains(r.stderr, "Deleted 1 device(s) of "+uid) {
		t.Fatalf("delete: %s", r)
	}
	left := decodeJSON[[]deviceJSON](t, c.ok("", "devices", "--json").stdout)
	if len(left) != 1 || left[0].DeviceID != own || !left[0].Current {
		t.Fatalf("devices left: %+v, want only %s", left, own)
	}
	if err := whoamiErr(srv.URL, other.AccessToken.Reveal()); !matrix.IsUnknownToken(err) {
		t.Fatalf("the deleted device's token: want M_UNKNOWN_TOKEN, got %v", err)
	}

	// An ID that looks like a flag goes after "--".
	dashed := directLogin(t, srv.URL, uid, pw, "-DASHED")
	c.ok(pw+"\n", "devices", "delete", "--password-stdin", "--", dashed.DeviceID)
	if err := whoamiErr(srv.URL, dashed.AccessToken.Reveal()); !matrix.IsUnknownToken(err) {
		t.Fatalf("the deleted -DASHED device's token: want M_UNKNOWN_TOKEN, got %v", err)
	}

	// Deleting this machine's own device signs it out here as well. Its ID
	// came from Dendrite and may start with '-', hence the "--".
	tok := strings.TrimSpace(c.ok("", "token").stdout)
	c.ok(pw+"\n", "devices", "delete", "--password-stdin", "--", own)
	if err := whoamiErr(srv.URL, tok); !matrix.IsUnknownToken(err) {
		t.Fatalf("own deleted device's token: want M_UNKNOWN_TOKEN, got %v", err)
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after deleting the own device: %+v", got)
	}
	if items := keyringItems(t, uid); len(items) != 0 {
		t.Fatalf("keyring items after deleting the own device: %v", items)
	}
}

// dendriteLogout: the server ends the session (the old token is refused)
// and nothing is left locally.
func dendriteLogout(t *testing.T, srv *dendritetest.Server) {
	uid, pw := dendriteUser(t, srv, "otto")
	c := newCLI(t)
	c.ok(pw+"\n", "login", "--user", uid, "--password-stdin")
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	tok := strings.TrimSpace(c.ok("", "token").stdout)
	whoami(t, srv.URL, tok)

	r := c.ok("", "logout")
	if want := fmt.Sprintf("Signed out %s (device %s).", uid, list[0].DeviceID); !strings.Contains(r.stderr, want) {
		t.Fatalf("logout: want %q: %s", want, r)
	}
	err := whoamiErr(srv.URL, tok)
	var merr *matrix.Error
	if !matrix.IsUnknownToken(err) || !errors.As(err, &merr) || merr.ErrCode != "M_UNKNOWN_TOKEN" || merr.Status != http.StatusUnauthorized {
		t.Fatalf("the signed-out token: want 401 M_UNKNOWN_TOKEN, got %v", err)
	}
	if items := keyringItems(t, uid); len(items) != 0 {
		t.Fatalf("keyring items after logout: %v", items)
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after logout: %+v", got)
	}
	oneLineStderr(t, c.expect(exitSignIn, "", "token"))

	// --all: two accounts on the server, both ended there.
	u1, p1 := dendriteUser(t, srv, "olga")
	u2, p2 := dendriteUser(t, srv, "oleg")
	c.ok(p1+"\n", "login", "--user", u1, "--password-stdin")
	c.ok(p2+"\n", "login", "--user", u2, "--password-stdin")
	t1 := strings.TrimSpace(c.ok("", "token", "--account", u1).stdout)
	t2 := strings.TrimSpace(c.ok("", "token", "--account", u2).stdout)
	r = c.ok("", "logout", "--all")
	for _, u := range []string{u1, u2} {
		if !strings.Contains(r.stderr, "Signed out "+u) {
			t.Errorf("logout --all does not name %s: %s", u, r)
		}
		if items := keyringItems(t, u); len(items) != 0 {
			t.Errorf("keyring items of %s after logout --all: %v", u, items)
		}
	}
	for _, tok := range []string{t1, t2} {
		if err := whoamiErr(srv.URL, tok); !matrix.IsUnknownToken(err) {
			t.Errorf("a token after logout --all: want M_UNKNOWN_TOKEN, got %v", err)
		}
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after logout --all: %+v", got)
	}
}

// dendriteEndedElsewhere: another client deletes mxauth's device. The next
// call that reaches the server (Dendrite's tokens do not expire, so only such
// a call can notice) says sign-in is needed, and logout still cleans up.
func dendriteEndedElsewhere(t *testing.T, srv *dendritetest.Server) {
	c, uid := dendriteEndedSession(t, srv, "eve")
	r := c.expect(exitSignIn, "", "devices")
	oneLineStderr(t, r)
	if !strings.Contains(r.stderr, "signed this device out; sign in again") {
		t.Fatalf("devices on an ended session: want the way out: %s", r)
	}
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || (list[0].State != "signed-out" && list[0].State != "sign-in-needed") {
		t.Fatalf("list --json after the server ended the session: %+v", list)
	}
	c.ok("", "logout")
	if items := keyringItems(t, uid); len(items) != 0 {
		t.Fatalf("keyring items after logout: %v", items)
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after logout: %+v", got)
	}
}

// dendriteEndedRecorded: whichever command finds the session ended, the
// account list remembers it as signed out by the server (as refresh already
// does), so list says so and start-up repair does not report a missing item.
func dendriteEndedRecorded(t *testing.T, srv *dendritetest.Server) {
	for _, args := range [][]string{{"devices"}, {"login-token", "--password-stdin"}, {"doctor"}} {
		t.Run(args[0], func(t *testing.T) {
			c, uid := dendriteEndedSession(t, srv, "ended-"+args[0])
			c.run("", args...)
			list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
			if len(list) != 1 || list[0].State != "signed-out" {
				t.Errorf("after %s noticed the sign-out, list --json: %+v; want signed-out", args[0], list)
			}
			st, err := keystore.Open(keystore.Options{Dir: c.dir})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			notes, err := st.Repair(ctx)
			for _, n := range notes {
				if strings.Contains(n, uid) {
					t.Errorf("start-up repair reports the signed-out account as damaged: %q", n)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// dendriteEndedSession signs a fresh user in with mxauth, then deletes that
// device from another client, as a user would from another app.
func dendriteEndedSession(t *testing.T, srv *dendritetest.Server, localpart string) (*cli, string) {
	t.Helper()
	uid, pw := dendriteUser(t, srv, localpart)
	c := newCLI(t)
	c.ok(pw+"\n", "login", "--user", uid, "--password-stdin")
	own := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)[0].DeviceID

	other := directLogin(t, srv.URL, uid, pw, "")
	cl, err := matrix.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = cl.DeleteDevice(ctx, other.AccessToken, own, nil)
	ch, ok := matrix.AsUIA(err)
	if !ok || !ch.CanUsePassword() {
		t.Fatalf("deleting without auth: want a password challenge, got %v", err)
	}
	if err := cl.DeleteDevice(ctx, other.AccessToken, own, matrix.PasswordAuth(ch.Session, uid, matrix.Secret(pw))); err != nil {
		t.Fatalf("deleting mxauth's device from another client: %v", err)
	}
	return c, uid
}
