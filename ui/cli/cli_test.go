package cli

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/keystore/keyringtest"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

// TestHandoff signs a second device in with a login token, through the CLI only.
func TestHandoff(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	first := newCLI(t)
	first.login(srv, alice, pw)

	r := first.ok(pw+"\n", "login-token", "--password-stdin", "--json")
	lt := decodeJSON[loginTokenJSON](t, r.stdout)
	if lt.LoginToken == "" || lt.UserID != alice || lt.Homeserver != srv.URL() || lt.ExpiresInMS <= 0 {
		t.Fatalf("login-token --json: %+v", lt)
	}
	exp, err := time.Parse(time.RFC3339, lt.ExpiresAt)
	if err != nil || time.Until(exp) <= 0 || time.Until(exp) > 3*time.Minute {
		t.Fatalf("expires_at %q: %v", lt.ExpiresAt, err)
	}

	second := newCLI(t)
	second.ok(lt.LoginToken+"\n", "login", "--user", alice, "--login-token-stdin")

	tok1 := strings.TrimSpace(first.ok("", "token").stdout)
	tok2 := strings.TrimSpace(second.ok("", "token").stdout)
	who1, who2 := whoami(t, srv.URL(), tok1), whoami(t, srv.URL(), tok2)
	if who1.UserID != alice || who2.UserID != alice {
		t.Fatalf("whoami: %s and %s, want %s", who1.UserID, who2.UserID, alice)
	}
	if who1.DeviceID == "" || who1.DeviceID == who2.DeviceID {
		t.Fatalf("want two devices, got %q and %q", who1.DeviceID, who2.DeviceID)
	}

	// The token is single use.
	third := newCLI(t)
	r = third.run(lt.LoginToken+"\n", "login", "--user", alice, "--login-token-stdin")
	if r.code != exitError || !strings.Contains(r.stderr, "login token") {
		t.Fatalf("a used login token signed in again: %s", r)
	}
}

// TestTokenRefreshesExpired: `token` hands out a working token after expiry.
func TestTokenRefreshesExpired(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: 2 * time.Second})
	c := newCLI(t)
	c.login(srv, alice, pw)
	before := strings.TrimSpace(c.ok("", "token").stdout)
	time.Sleep(2500 * time.Millisecond)

	r := c.ok("", "token")
	tok := strings.TrimSpace(r.stdout)
	if strings.Count(r.stdout, "\n") != 1 || tok == "" || r.stderr != "" {
		t.Fatalf("token must print the token and nothing else: %s", r)
	}
	if tok == before {
		t.Fatal("token returned the expired token")
	}
	if who := whoami(t, srv.URL(), tok); who.UserID != alice {
		t.Fatalf("whoami: %s", who.UserID)
	}
	if srv.RefreshCount() == 0 {
		t.Fatal("no refresh reached the server")
	}
	if n := srv.ExpiredTokenUses(); n != 0 {
		t.Fatalf("an expired token was sent %d times", n)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)
	r := c.ok("", "exec", "--", "sh", "-c", `echo "$MATRIX_USER_ID"; echo "$MATRIX_HOMESERVER"; echo "$MATRIX_ACCESS_TOKEN"`)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || lines[0] != alice || lines[1] != srv.URL() {
		t.Fatalf("exec env: %q", r.stdout)
	}
	if who := whoami(t, srv.URL(), lines[2]); who.UserID != alice {
		t.Fatalf("MATRIX_ACCESS_TOKEN belongs to %s", who.UserID)
	}
	c.expect(7, "", "exec", "--account", alice, "--", "sh", "-c", "exit 7")
	// Everything after the command is the command's, flags and "--" included.
	r = c.ok("", "exec", "--account", alice, "--", "sh", "-c", `printf '%s|' "$0" "$@"`, "-x", "--help", "--", "--account")
	if r.stdout != "-x|--help|--|--account|" {
		t.Fatalf("exec passed on %q", r.stdout)
	}
	// Without "--", flags end at the command.
	r = c.ok("", "exec", "sh", "-c", `printf '%s|' "$0" "$@"`, "--json", "-v")
	if r.stdout != "--json|-v|" {
		t.Fatalf("exec without -- passed on %q", r.stdout)
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)

	t.Run("usage", func(t *testing.T) {
		c.t = t
		for _, args := range [][]string{
			{"frobnicate"},
			{"login"},
			{"login", "--user", alice}, // no terminal and no --password-stdin
			{"list", "--no-such-flag"},
			{"exec"},
			{"devices", "delete"},
		} {
			oneLineStderr(t, c.expect(exitUsage, "", args...))
		}
	})
	t.Run("no such account", func(t *testing.T) {
		c.t = t
		oneLineStderr(t, c.expect(exitSignIn, "", "token"))
		oneLineStderr(t, c.expect(exitSignIn, "", "token", "--account", "@nobody:example.org"))
	})
	t.Run("wrong password", func(t *testing.T) {
		c.t = t
		r := c.expect(exitError, "not the password\n", "login", "--user", alice, "--password-stdin")
		oneLineStderr(t, r)
		if strings.Contains(r.stderr, "not the password") {
			t.Fatal("the password was echoed")
		}
	})
	t.Run("keyring unavailable", func(t *testing.T) {
		c.t = t
		c.login(srv, alice, pw)
		bogus := &cli{t: t, dir: c.dir, extra: []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus"}}
		oneLineStderr(t, bogus.expect(exitKeyring, "", "token"))
		bogus.expect(exitKeyring, "", "doctor")
		// A login that cannot save its tokens leaves nothing behind.
		fresh := &cli{t: t, dir: t.TempDir(), extra: bogus.extra}
		fresh.expect(exitKeyring, pw+"\n", "login", "--user", alice, "--password-stdin")
		if got := decodeJSON[[]accountJSON](t, newCLIIn(t, fresh.dir).ok("", "list", "--json").stdout); len(got) != 0 {
			t.Fatalf("failed login left %v", got)
		}
	})
	t.Run("not supported", func(t *testing.T) {
		c.t = t
		srv2, bob, bobpw := startHomeserver(t, homeserver.Options{NoGetToken: true})
		c2 := newCLI(t)
		c2.login(srv2, bob, bobpw)
		r := c2.expect(exitUnsupported, bobpw+"\n", "login-token", "--password-stdin")
		oneLineStderr(t, r)
		if !strings.Contains(r.stderr, "does not offer login tokens") {
			t.Fatalf("want a plain reason: %s", r)
		}
	})
	t.Run("rate limited", func(t *testing.T) {
		c.t = t
		srv3, carol, carolpw := startHomeserver(t, homeserver.Options{LoginTokenRateLimit: true})
		c3 := newCLI(t)
		c3.login(srv3, carol, carolpw)
		c3.ok(carolpw+"\n", "login-token", "--password-stdin")
		r := c3.expect(exitRateLimited, carolpw+"\n", "login-token", "--password-stdin")
		oneLineStderr(t, r)
		if !strings.Contains(r.stderr, "try again in") {
			t.Fatalf("want the wait: %s", r)
		}
	})
}

func newCLIIn(t *testing.T, dir string) *cli { return &cli{t: t, dir: dir} }

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, dir: t.TempDir()}
	if r := c.ok("", "--version"); !strings.HasPrefix(r.stdout, "mxauth ") {
		t.Fatalf("--version: %s", r)
	}
	if r := c.ok("", "--help"); !strings.Contains(r.stdout, "Exit codes") {
		t.Fatalf("--help: %s", r)
	}
	oneLineStderr(t, c.expect(exitUsage, "", "help", "frobnicate"))
	for _, name := range commandNames() {
		r := c.ok("", name, "--help")
		if !strings.Contains(r.stdout, "mxauth "+name) || strings.Count(r.stdout, "Exit codes") != 1 {
			t.Errorf("%s --help: %s", name, r)
		}
		if h := c.ok("", "help", name); h.stdout != r.stdout {
			t.Errorf("mxauth help %s differs from mxauth %s --help: %s", name, name, h)
		}
		// A bad flag is one line on stderr, not the help text.
		bad := c.expect(exitUsage, "", name, "--no-such-flag")
		if bad.stdout != "" {
			t.Errorf("%s --no-such-flag printed to stdout: %s", name, bad)
		}
		oneLineStderr(t, bad)
	}
}

// TestCompletionAndManPage: mxauth completion prints a script for each shell,
// the completions the scripts ask the binary for name its commands and flags,
// and mxauth man prints a man page.
func TestCompletionAndManPage(t *testing.T) {
	c := &cli{t: t, dir: t.TempDir()}
	for _, tc := range []struct{ shell, want string }{
		{"bash", "complete -o default -F __start_mxauth mxauth"},
		{"zsh", "#compdef mxauth"},
		{"fish", "complete -c mxauth"},
	} {
		r := c.ok("", "completion", tc.shell)
		if !strings.Contains(r.stdout, tc.want) {
			t.Errorf("completion %s lacks %q:\n%.300s", tc.shell, tc.want, r.stdout)
		}
		if tc.shell == "bash" {
			check := exec.Command("bash", "-n")
			check.Stdin = strings.NewReader(r.stdout)
			if out, err := check.CombinedOutput(); err != nil {
				t.Errorf("bash -n on the completion script: %v\n%s", err, out)
			}
		}
	}
	// What the scripts run on Tab: the commands starting "lo", list's flags,
	// and devices' one subcommand.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "lo"}, []string{"login\t", "login-token\t", "logout\t"}},
		{[]string{"__complete", "list", "--"}, []string{"--json\t"}},
		{[]string{"__complete", "devices", ""}, []string{"delete"}},
	} {
		r := c.ok("", tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("mxauth %q: want %q in %q", tc.args, w, r.stdout)
			}
		}
	}
	man := c.ok("", "man").stdout
	if !strings.HasPrefix(man, ".TH MXAUTH 1") || !strings.Contains(man, "login-token") || !strings.Contains(man, "Exit codes") {
		t.Fatalf("mxauth man: %.300s", man)
	}
	for _, args := range [][]string{{"completion", "bash", "extra"}, {"man", "extra"}} {
		oneLineStderr(t, c.expect(exitUsage, "", args...))
	}
}

// TestCompleteAccounts: --account completes with the accounts' user IDs, read
// from the account list alone.
func TestCompleteAccounts(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	c.login(srv, alice, pw)
	r := c.ok("", "__complete", "token", "--account", "")
	if !strings.HasPrefix(r.stdout, alice+"\n") {
		t.Fatalf("completing --account: %s", r)
	}
	// Without a keyring the list still completes: a Tab never waits for one.
	noBus := &cli{t: t, dir: c.dir, extra: []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus"}}
	if r := noBus.ok("", "__complete", "exec", "--account", "@"); !strings.HasPrefix(r.stdout, alice+"\n") {
		t.Fatalf("completing --account without a keyring: %s", r)
	}
}

func TestJSONOutputs(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	login := decodeJSON[accountJSON](t, c.ok(pw+"\n", "login", "--user", alice, "--password-stdin", "--json").stdout)
	if login.UserID != alice || login.DeviceID == "" || login.Homeserver != srv.URL() || login.ExpiresAt == nil || !login.HasRefreshToken {
		t.Fatalf("login --json: %+v", login)
	}
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || list[0].UserID != alice || list[0].State != "active" || !list[0].Default {
		t.Fatalf("list --json: %+v", list)
	}
	ref := decodeJSON[accountJSON](t, c.ok("", "refresh", "--json").stdout)
	if ref.ExpiresAt == nil || ref.ExpiresAt.Before(*login.ExpiresAt) {
		t.Fatalf("refresh --json: %+v (login: %v)", ref, login.ExpiresAt)
	}
	devs := decodeJSON[[]deviceJSON](t, c.ok("", "devices", "--json").stdout)
	if len(devs) != 1 || devs[0].DeviceID != login.DeviceID || !devs[0].Current {
		t.Fatalf("devices --json: %+v", devs)
	}
}

// TestWrongPasswordLeavesNothing: one attempt, no prompt, no account.
func TestWrongPasswordLeavesNothing(t *testing.T) {
	t.Parallel()
	srv, alice, _ := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	r := c.run("wrong\nwrong again\n", "login", "--user", alice, "--password-stdin")
	if r.code == 0 {
		t.Fatalf("wrong password accepted: %s", r)
	}
	oneLineStderr(t, r)
	if strings.Contains(r.stderr, "Password") {
		t.Fatalf("prompted: %s", r)
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after a failed login: %+v", got)
	}
	if items := keyringItems(t, alice); len(items) != 0 {
		t.Fatalf("keyring items after a failed login: %v", items)
	}
	if devs := srv.Devices(alice); len(devs) != 0 {
		t.Fatalf("server devices after a failed login: %v", devs)
	}
}

func TestNonExpiringServer(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{})
	c := newCLI(t)
	c.login(srv, alice, pw)
	const msg = "this server issues tokens that do not expire"
	if r := c.ok("", "list"); !strings.Contains(r.stderr, msg) {
		t.Fatalf("list: %s", r)
	}
	if r := c.ok("", "refresh"); !strings.Contains(r.stderr, msg) {
		t.Fatalf("refresh: %s", r)
	}
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || list[0].ExpiresAt != nil {
		t.Fatalf("list --json: %+v", list)
	}
}

func TestLogoutRemovesSecrets(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)
	if len(keyringItems(t, alice)) != 1 {
		t.Fatal("login stored no keyring item")
	}
	c.ok("", "logout")
	if items := keyringItems(t, alice); len(items) != 0 {
		t.Fatalf("keyring items after logout: %v", items)
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after logout: %+v", got)
	}
	if devs := srv.Devices(alice); len(devs) != 0 {
		t.Fatalf("the server still has devices %v", devs)
	}
	c.expect(exitSignIn, "", "token")
}

// TestLogoutAfterServerEnded: a session the server already ended is removed locally.
func TestLogoutAfterServerEnded(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	srv.HardLogoutDevice(alice, list[0].DeviceID)
	c.ok("", "logout")
	if items := keyringItems(t, alice); len(items) != 0 {
		t.Fatalf("keyring items after logout: %v", items)
	}
}

// TestDevicesDelete deletes another device, first with a wrong password.
// The password is the first line of stdin; a wrong one is not retried.
func TestDevicesDelete(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c, other := newCLI(t), newCLI(t)
	c.login(srv, alice, pw)
	other.login(srv, alice, pw)
	devs := decodeJSON[[]deviceJSON](t, c.ok("", "devices", "--json").stdout)
	if len(devs) != 2 {
		t.Fatalf("want 2 devices, got %+v", devs)
	}
	var otherID string
	for _, d := range devs {
		if !d.Current {
			otherID = d.DeviceID
		}
	}
	r := c.run("wrong password\n"+pw+"\n", "devices", "delete", otherID, "--password-stdin")
	if r.code == 0 || !strings.Contains(r.stderr, "wrong password") {
		t.Fatalf("wrong password: %s", r)
	}
	oneLineStderr(t, r)
	if n := len(srv.Devices(alice)); n != 2 {
		t.Fatalf("devices after a wrong password: %d", n)
	}
	c.ok(pw+"\n", "devices", "delete", otherID, "--password-stdin")
	left := srv.Devices(alice)
	if len(left) != 1 || left[0] == otherID {
		t.Fatalf("devices left: %v", left)
	}
	// The deleted device's session is over: its next refresh says so.
	other.expect(exitSignIn, "", "refresh")
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)
	r := c.ok("", "doctor")
	for _, want := range []string{"keyring: Secret Service", "spec versions", "refresh tokens", "login tokens can be minted", "token valid",
		"signs in with passwords (no OAuth 2.0 API); this account signed in with a password"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.stdout)
		}
	}
	srv.Close()
	r = c.run("", "doctor")
	if r.code == 0 || !strings.Contains(r.stdout, "FAIL") {
		t.Fatalf("doctor with the server down: %s", r)
	}
}

// TestMissingTokensNeedSignIn: an index entry whose keyring item is gone is
// shown as needing sign-in, and signing in again reuses its device.
func TestMissingTokensNeedSignIn(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)
	before := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)

	st, err := keystore.Open(keystore.Options{Dir: c.dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := st.DeleteTokens(ctx, session.AccountKey{UserID: alice, DeviceID: before[0].DeviceID}); err != nil {
		t.Fatal(err)
	}

	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || list[0].State != "sign-in-needed" {
		t.Fatalf("list --json: %+v", list)
	}
	r := c.expect(exitSignIn, "", "token")
	oneLineStderr(t, r)
	if !strings.Contains(r.stderr, "mxauth login --user "+alice) {
		t.Fatalf("token should say how to sign in again: %s", r)
	}

	c.login(srv, alice, pw)
	after := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(after) != 1 || after[0].State != "active" || after[0].DeviceID != before[0].DeviceID {
		t.Fatalf("sign-in again: %+v, want device %s", after, before[0].DeviceID)
	}
	if n := len(srv.Devices(alice)); n != 1 {
		t.Fatalf("signing in again made %d devices", n)
	}
}

func TestLoginTokenQR(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{})
	c := newCLI(t)
	c.login(srv, alice, pw)
	r := c.ok(pw+"\n", "login-token", "--password-stdin", "--qr")
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) < 10 || strings.ContainsAny(lines[0], "▀▄█ ") {
		t.Fatalf("want the token then a QR code:\n%s", r.stdout)
	}
	for _, l := range lines[1:] {
		if strings.Trim(l, "▀▄█ ") != "" || len([]rune(l)) != len([]rune(lines[1])) {
			t.Fatalf("not a half-block QR row: %q", l)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Fatal("colour escapes in output that is not a terminal")
	}
	// The printed token signs a device in; the token names the user itself.
	second := newCLI(t)
	got := decodeJSON[accountJSON](t, second.ok(lines[0]+"\n", "login", "--homeserver", srv.URL(), "--login-token-stdin", "--json").stdout)
	if got.UserID != alice {
		t.Fatalf("token login signed in %q, want %s", got.UserID, alice)
	}
}

// TestLockedKeyring: a locked keyring is exit code 3, not "sign in again".
func TestLockedKeyring(t *testing.T) {
	t.Parallel()
	needKeyring(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{})
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := &cli{t: t, dir: t.TempDir(), extra: k.Env}
	c.login(srv, alice, pw)
	if err := k.Lock(); err != nil {
		t.Fatal(err)
	}
	r := c.expect(exitKeyring, "", "token")
	oneLineStderr(t, r)
	if err := k.Unlock(); err != nil {
		t.Fatal(err)
	}
	c.ok("", "token")
}

// TestLogoutLocalWhenServerGone: with the homeserver unreachable, logout keeps
// everything and fails; --local then removes the local copy without it.
func TestLogoutLocalWhenServerGone(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	c.login(srv, alice, pw)
	srv.Close()
	r := c.run("", "logout")
	if r.code == 0 || len(keyringItems(t, alice)) != 1 {
		t.Fatalf("logout with the server gone must fail and keep the secrets: %s", r)
	}
	r = c.ok("", "logout", "--local")
	if !strings.Contains(r.stderr, "stays on the server") {
		t.Fatalf("--local should say the device stays on the server: %s", r)
	}
	if items := keyringItems(t, alice); len(items) != 0 {
		t.Fatalf("keyring items after logout --local: %v", items)
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after logout --local: %+v", got)
	}
}

// TestRefreshSaysWhenTheNewTokenIsExpired: a server granting access tokens
// that are dead on arrival gets a sentence that says so, not "expires expired".
func TestRefreshSaysWhenTheNewTokenIsExpired(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Millisecond})
	c := newCLI(t)
	c.login(srv, alice, pw)
	r := c.run("", "refresh")
	if strings.Contains(r.stderr, "expires expired") || r.code == 0 && !strings.Contains(r.stderr, "has already expired") {
		t.Fatalf("refresh of a token granted already expired: %s", r)
	}
}
