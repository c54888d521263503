package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mxauth/keystore/keyringtest"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
)

// tmuxTerm drives the real binary in a real terminal: a tmux server of its own.
type tmuxTerm struct {
	t      *testing.T
	socket string
}

func (m *tmuxTerm) cmd(args ...string) (string, error) {
	all := append([]string{"-L", m.socket, "-f", "/dev/null"}, args...)
	out, err := exec.Command("tmux", all...).CombinedOutput()
	return string(out), err
}

func (m *tmuxTerm) must(args ...string) string {
	m.t.Helper()
	out, err := m.cmd(args...)
	if err != nil {
		m.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return out
}

func (m *tmuxTerm) capture() string { return m.must("capture-pane", "-p", "-t", "e2e") }

// keys sends keys one call at a time, with a pause so each lands in its own
// read (the form resolves the homeserver between fields).
func (m *tmuxTerm) keys(keys ...string) {
	m.t.Helper()
	for _, k := range keys {
		m.must("send-keys", "-t", "e2e", k)
		time.Sleep(150 * time.Millisecond)
	}
}

// literal types text as is (no key-name lookup).
func (m *tmuxTerm) literal(text string) {
	m.t.Helper()
	m.must("send-keys", "-t", "e2e", "-l", text)
	time.Sleep(150 * time.Millisecond)
}

// wait polls the screen until re matches, and returns the screen and the match.
func (m *tmuxTerm) wait(what string, re *regexp.Regexp) (string, []string) {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var screen string
	for time.Now().Before(deadline) {
		screen = m.capture()
		if sub := re.FindStringSubmatch(screen); sub != nil {
			return screen, sub
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.t.Fatalf("waiting for %s (%s); screen:\n%s", what, re, screen)
	return "", nil
}

// saveAsset writes a screen capture into assets/ when MXAUTH_UPDATE_ASSETS=1,
// so plain test runs leave the tree alone.
func saveAsset(t *testing.T, name, screen string) {
	t.Helper()
	if os.Getenv("MXAUTH_UPDATE_ASSETS") != "1" {
		return
	}
	lines := strings.Split(screen, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	out := strings.TrimRight(strings.Join(lines, "\n"), "\n") + "\n"
	if err := os.WriteFile(filepath.Join(assetsDir, name+".txt"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTmuxDemo runs `mxauth demo` in tmux: alice is signed in at once, with a
// countdown and a refresh on the first screen; bob is added through the form;
// a login token is minted through the password modal (wrong password first)
// and signs a second device in, read off the screen.
func TestTmuxDemo(t *testing.T) {
	t.Parallel()
	needTmux(t)
	driveDemo(t, false)
	if os.Getenv("MXAUTH_UPDATE_ASSETS") == "1" {
		// The PNGs are the same screens in colour.
		t.Run("colour", func(t *testing.T) { driveDemo(t, true) })
	}
}

// driveDemo runs the demo once. Without colour it saves the text captures,
// with colour the PNG renderings (both only with MXAUTH_UPDATE_ASSETS=1).
func driveDemo(t *testing.T, colour bool) {
	name := "e2e"
	if colour {
		name = "colour"
	}
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-%s-%d", name, os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	save := func(asset, screen string) {
		if colour {
			saveScreenshot(t, m, asset)
		} else {
			saveAsset(t, asset, screen)
		}
	}
	// The demo needs no keyring and no config: give it an empty home to prove it.
	home := t.TempDir()
	look := "NO_COLOR=1"
	if colour {
		look = "COLORTERM=truecolor"
	}
	launch := fmt.Sprintf("env -i PATH=%q HOME=%q TERM=xterm-256color %s %q demo", os.Getenv("PATH"), home, look, binPath)
	m.must("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", launch)

	// The first screen: alice signed in, her countdown running, a refresh done.
	screen, _ := m.wait("alice signed in and refreshed", regexp.MustCompile(`(?s)@alice:\S+.*expires in \d+s.*refreshed @alice`))
	save("home", screen)
	// The banner may wrap; read it with the line breaks folded into spaces.
	flat := strings.Join(strings.Fields(screen), " ")
	hs := regexp.MustCompile(`homeserver (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(flat)
	aliceCred := regexp.MustCompile(`signed in: (@alice:\S+) / ([a-z0-9]+)`).FindStringSubmatch(flat)
	bobCred := regexp.MustCompile(`press a to add (@bob:\S+) / ([a-z0-9]+)`).FindStringSubmatch(flat)
	if hs == nil || aliceCred == nil || bobCred == nil || !strings.Contains(flat, "nothing is saved") {
		t.Fatalf("demo banner lacks the homeserver, alice's or bob's password or the nothing-saved note:\n%s", screen)
	}
	if strings.Contains(screen, "@bob") && strings.Count(flat, "@bob") != 1 {
		t.Fatalf("bob is left to add, so he is only in the banner:\n%s", screen)
	}
	baseURL, bob, password := hs[1], bobCred[1], bobCred[2]

	m.keys("a")
	m.wait("the add-account form", regexp.MustCompile(`Add a Matrix account`))
	m.literal(baseURL)
	m.keys("Tab")
	m.wait("the homeserver check", regexp.MustCompile(`homeserver found`))
	m.literal("bob")
	m.keys("Tab")
	before := strings.Count(strings.Join(strings.Fields(m.capture()), ""), password)
	m.literal(password)
	// Once the field has redrawn with every character typed (one mask each),
	// the banner shows the password; the form must not show it a second time.
	screen, _ = m.wait("the password typed", regexp.MustCompile(`Password\s+(•|\*){`+strconv.Itoa(len([]rune(password)))+`}\s`))
	if after := strings.Count(strings.Join(strings.Fields(screen), ""), password); after != before {
		t.Fatalf("the password is echoed in the form:\n%s", screen)
	}
	save("add-account", screen)
	m.keys("Enter")
	_, sub := m.wait("bob listed with a countdown", regexp.MustCompile(`(?s)`+regexp.QuoteMeta(bob)+`\s+device (\w+).*expires in (\d+)s`))
	firstDevice := sub[1]

	m.keys("Enter") // the new account is the selected one
	screen, _ = m.wait("the details screen", regexp.MustCompile(`(?s)Account details.*`+regexp.QuoteMeta(bob)+`.*Devices \(1\)`))
	save("details", screen)
	m.keys("Escape")
	m.wait("home again", regexp.MustCompile(`mxauth · Accounts`))

	m.keys("t")
	m.wait("the password modal", regexp.MustCompile(`Confirm it's you`))
	m.literal("not-the-password")
	m.keys("Enter")
	screen, _ = m.wait("the wrong-password note", regexp.MustCompile(`Wrong password`))
	save("modal", screen)
	m.literal(password)
	m.keys("Enter")
	screen, sub = m.wait("the login token", regexp.MustCompile(`(?s)Login token for.*│ (\S{20,}) │.*expires in (?:(\d+)m )?(\d+)s`))
	save("token", screen)
	token := sub[1]
	if sub[2] == "" && sub[3] == "0" {
		t.Fatalf("the countdown has already run out:\n%s", screen)
	}

	// tmux does not hand its clipboard back to programs, so the copy cannot
	// be confirmed: the screen must not claim it worked.
	m.keys("c")
	screen, _ = m.wait("the copy note", regexp.MustCompile(`sent to the terminal's|copied ✓`))
	if strings.Contains(screen, "copied ✓") {
		t.Fatalf("copied claimed without the terminal confirming it:\n%s", screen)
	}

	c, err := matrix.NewClient(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Login(ctx, matrix.TokenLogin(matrix.Secret(token)))
	if err != nil {
		t.Fatalf("logging a second device in with the token from the screen: %v", err)
	}
	who, err := c.WhoAmI(ctx, resp.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if who.UserID != bob || who.DeviceID == "" || who.DeviceID == firstDevice {
		t.Fatalf("second device: %+v, first device %s", who, firstDevice)
	}

	m.keys("Escape", "q")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := m.cmd("has-session", "-t", "e2e"); err != nil {
			return // the program quit and its session ended
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("mxauth demo did not quit on q:\n%s", m.capture())
}

// assetsDir is the repository's assets/ seen from this package's directory.
var assetsDir = filepath.Join("..", "..", "assets")

// screenshots are the screens README.md and docs/usage.md show as PNGs.
var screenshots = map[string]bool{"home": true, "modal": true, "token": true}

// saveScreenshot renders the pane, colours included, to assets/NAME.png with
// Charm's freeze, when MXAUTH_UPDATE_ASSETS=1 and NAME is one of the screenshots.
func saveScreenshot(t *testing.T, m *tmuxTerm, name string) {
	t.Helper()
	if os.Getenv("MXAUTH_UPDATE_ASSETS") != "1" || !screenshots[name] {
		return
	}
	freeze, err := exec.LookPath("freeze")
	if err != nil {
		t.Fatal("MXAUTH_UPDATE_ASSETS=1 renders the PNGs with freeze: go install github.com/charmbracelet/freeze@v0.2.2")
	}
	ansi := filepath.Join(t.TempDir(), name+".ansi")
	screen := m.must("capture-pane", "-e", "-p", "-t", "e2e")
	// freeze ignores "default colours" (SGR 39 and 49), so the text after the
	// black-on-white QR code would stay black on white: name its window's
	// own colours instead. A closing reset and newline keep it from dropping
	// the last line.
	screen = strings.NewReplacer("\x1b[39m", "\x1b[38;2;208;208;208m", "\x1b[49m", "\x1b[48;2;23;23;23m").Replace(screen) + "\x1b[0m\n"
	if err := os.WriteFile(ansi, []byte(screen), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(freeze, "--language", "ansi", "--window", "--font.size", "7",
		"-o", filepath.Join(assetsDir, name+".png"), ansi).CombinedOutput()
	if err != nil {
		t.Fatalf("freeze: %v: %s", err, out)
	}
}

// TestTmuxKeyringUnavailable: the full-screen app on a machine whose keyring
// cannot be reached says so at once, with advice, before any password is typed.
func TestTmuxKeyringUnavailable(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("MXAUTH_E2E_TMUX") == "1" {
			t.Fatal("MXAUTH_E2E_TMUX=1 but tmux is not installed")
		}
		t.Skip("tmux not installed (set MXAUTH_E2E_TMUX=1 to require it)")
	}
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-nokeyring-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	home := t.TempDir()
	bus := "unix:path=" + filepath.Join(home, "no-such-bus")
	launch := fmt.Sprintf("env -i PATH=%q HOME=%q XDG_RUNTIME_DIR=%q DBUS_SESSION_BUS_ADDRESS=%q TERM=xterm-256color NO_COLOR=1 %q",
		os.Getenv("PATH"), home, home, bus, binPath)
	m.must("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "30", launch)
	screen, _ := m.wait("the keyring banner", regexp.MustCompile(`(?s)Keyring unavailable: start gnome-keyring-daemon.*No accounts yet`))
	if !strings.Contains(strings.Split(screen, "\n")[0], "keyring unavailable") {
		t.Fatalf("the header should name the keyring's state:\n%s", screen)
	}
	m.keys("q")
}

// TestTmuxLoginTokenWaitsOutRateLimit: at a terminal, a rate limit that comes
// after the password was accepted is waited out and the request resent on the
// same UIA session, so the password is typed once.
func TestTmuxLoginTokenWaitsOutRateLimit(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("MXAUTH_E2E_TMUX") == "1" {
			t.Fatal("MXAUTH_E2E_TMUX=1 but tmux is not installed")
		}
		t.Skip("tmux not installed (set MXAUTH_E2E_TMUX=1 to require it)")
	}
	c := newCLI(t)
	var ahead atomic.Int64 // how far the server's clock runs ahead of ours
	srv := homeserver.New(homeserver.Options{
		AccessTokenLifetime: time.Hour,
		LoginTokenRateLimit: true,
		Now:                 func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) },
	})
	t.Cleanup(srv.Close)
	forgetKeyringItems(t, srv.ServerName())
	pw := "correct horse battery"
	alice := srv.AddUser("alice", pw)
	c.ok(pw+"\n", "login", "--user", alice, "--password-stdin")
	c.ok(pw+"\n", "login-token", "--password-stdin")
	// The next mint comes 3 s before the server's one-a-minute limit lifts.
	ahead.Store(int64(57 * time.Second))
	srv.ResetLog()

	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-ratelimit-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	var env []string
	for _, kv := range keyringtest.Merge(keyringEnv, []string{"MXAUTH_CONFIG_DIR=" + c.dir, "NO_COLOR=1", "TERM=xterm-256color", "PATH=" + os.Getenv("PATH"), keyringWait}) {
		env = append(env, fmt.Sprintf("%q", kv))
	}
	launch := fmt.Sprintf("env -i %s %q login-token; echo EXIT=$?; sleep 30", strings.Join(env, " "), binPath)
	m.must("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "30", launch)
	m.wait("the password prompt", regexp.MustCompile(`Password for @alice`))
	m.literal(pw)
	m.keys("Enter")
	m.wait("the rate-limit wait", regexp.MustCompile(`trying again in \d+s`))
	screen, _ := m.wait("the token", regexp.MustCompile(`(?s)EXIT=0`))
	if !regexp.MustCompile(`(?m)^syl_\S+$`).MatchString(screen) && !strings.Contains(screen, "Single use") {
		t.Fatalf("no token printed after the wait:\n%s", screen)
	}
	mints := 0
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "get_token") {
			mints++
		}
	}
	// Challenge, password (429), resend with the session only: three calls, one password.
	if mints != 3 {
		t.Fatalf("%d get_token requests, want 3 (challenge, password answered 429, resend on the session)", mints)
	}
	if n := strings.Count(screen, "Password for"); n != 1 {
		t.Fatalf("the password was asked for %d times:\n%s", n, screen)
	}
}

// qrRows returns the rows of the first QR drawing on a screen: the lines
// from the first run of at least 20 full blocks, cut to that run's columns.
func qrRows(screen string) []string {
	lines := strings.Split(screen, "\n")
	for i, l := range lines {
		r := []rune(l)
		start := strings.Index(l, strings.Repeat("█", 20))
		if start < 0 {
			continue
		}
		col := len([]rune(l[:start]))
		end := col
		for end < len(r) && r[end] == '█' {
			end++
		}
		var rows []string
		for _, m := range lines[i:] {
			mr := []rune(m)
			if len(mr) < end || strings.Trim(string(mr[col:end]), "▀▄█ ") != "" || strings.TrimSpace(string(mr[col:end])) == "" {
				break
			}
			rows = append(rows, string(mr[col:end]))
		}
		return rows
	}
	return nil
}

// TestTmuxQRSameInAppAndCLI: without colour, login-token --qr draws the code
// with the same polarity and quiet zone as the full-screen app in the same
// terminal, so a code that scans in one scans in the other.
func TestTmuxQRSameInAppAndCLI(t *testing.T) {
	t.Parallel()
	needTmux(t)
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	c.login(srv, alice, pw)

	app := startTUI(t, c, "qr-app")
	app.wait("the accounts", regexp.MustCompile(`expires in`))
	app.keys("t")
	app.wait("the password modal", regexp.MustCompile(`Confirm it's you`))
	app.literal(pw)
	app.keys("Enter")
	screen, _ := app.wait("the login token", regexp.MustCompile(`Login token for`))
	inApp := qrRows(screen)
	app.keys("Escape", "q")

	cli := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-qr-cli-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = cli.cmd("kill-server") })
	var env []string
	for _, kv := range keyringtest.Merge(keyringEnv, []string{"MXAUTH_CONFIG_DIR=" + c.dir, "NO_COLOR=1", "TERM=xterm-256color", "PATH=" + os.Getenv("PATH"), keyringWait}) {
		env = append(env, fmt.Sprintf("%q", kv))
	}
	cli.must("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "50",
		fmt.Sprintf("env -i %s %q login-token --qr; echo EXIT=$?; sleep 30", strings.Join(env, " "), binPath))
	cli.wait("the password prompt", regexp.MustCompile(`Password for @alice`))
	cli.literal(pw)
	cli.keys("Enter")
	screen, _ = cli.wait("the printed code", regexp.MustCompile(`EXIT=0`))
	inCLI := qrRows(screen)

	if len(inApp) < 10 || len(inCLI) < 10 {
		t.Fatalf("no QR code found: app %d rows, CLI %d rows\n%s", len(inApp), len(inCLI), screen)
	}
	// The tokens differ, so the data modules do; the quiet zone and the
	// finder pattern in the top-left corner are the same in every code.
	for y := range 4 {
		a, b := []rune(inApp[y])[:9], []rune(inCLI[y])[:9]
		if string(a) != string(b) {
			t.Fatalf("row %d of the corner: app %q, login-token --qr %q\napp:\n%s\ncli:\n%s", y, string(a), string(b),
				strings.Join(inApp, "\n"), strings.Join(inCLI, "\n"))
		}
	}
	if len([]rune(inApp[0])) != len([]rune(inCLI[0])) {
		t.Fatalf("quiet zones differ: app %d cells wide, CLI %d", len([]rune(inApp[0])), len([]rune(inCLI[0])))
	}
}

// TestTmuxDemoManyAccounts: with --accounts N the banner says the extra users'
// password, the list is in user-ID order, and End, PgUp and / find accounts.
func TestTmuxDemoManyAccounts(t *testing.T) {
	t.Parallel()
	needTmux(t)
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-many-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	launch := fmt.Sprintf("env -i PATH=%q HOME=%q TERM=xterm-256color NO_COLOR=1 %q demo --accounts 40", os.Getenv("PATH"), t.TempDir(), binPath)
	m.must("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", launch)
	screen, _ := m.wait("the list", regexp.MustCompile(`(?s)@alice:\S+.*@user00\d`))
	flat := strings.Join(strings.Fields(screen), " ")
	if !regexp.MustCompile(`@user001:\S+ … @user040:\S+ \(40, signed in\) share password [a-z0-9]+`).MatchString(flat) {
		t.Fatalf("the banner should say the extra users' password:\n%s", screen)
	}
	rows := regexp.MustCompile(`@(alice|bob|user\d+):`).FindAllStringSubmatch(screen, -1)
	var names []string
	for _, r := range rows {
		names = append(names, r[1])
	}
	// The banner names alice, bob and two users first; the list follows.
	list := names[4:]
	if len(list) < 4 || list[0] != "alice" || list[1] != "user001" || list[2] != "user002" || list[3] != "user003" {
		t.Fatalf("accounts not in user-ID order: %v\n%s", list, screen)
	}
	m.keys("End")
	m.wait("the last account", regexp.MustCompile(`▸ @user040:.*(?s).*41/41`))
	m.keys("PPage")
	m.wait("a page up", regexp.MustCompile(`▸ @user0[23]\d:`))
	m.keys("Home")
	m.wait("the first account", regexp.MustCompile(`▸ @alice:`))
	m.keys("/")
	m.literal("user03")
	screen, _ = m.wait("the filtered list", regexp.MustCompile(`10 of 41`))
	if strings.Contains(screen, "@user029:") || !strings.Contains(screen, "@user030:") {
		t.Fatalf("the filter should show user030…user039 only:\n%s", screen)
	}
	m.keys("Escape")
	m.wait("the whole list again", regexp.MustCompile(`1/41`))
	m.keys("q")
}

// TestTmuxLoginDeviceGrant: at a terminal, login --qr on an OAuth 2.0 server
// shows the page, the code and a QR code, then one status line redrawn in
// place with the countdown and the polls; approving on the page ends it
// signed in, with the status line gone. Ctrl+C while waiting cancels and
// stores nothing.
func TestTmuxLoginDeviceGrant(t *testing.T) {
	t.Parallel()
	needTmux(t)
	srv, alice, pw := startDelegated(t, homeserver.Options{OAuthAccessLifetime: time.Hour})
	c := newCLI(t)
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-devicegrant-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	var env []string
	for _, kv := range keyringtest.Merge(keyringEnv, []string{"MXAUTH_CONFIG_DIR=" + c.dir, "NO_COLOR=1", "TERM=xterm-256color", "PATH=" + os.Getenv("PATH"), keyringWait}) {
		env = append(env, fmt.Sprintf("%q", kv))
	}
	launch := fmt.Sprintf("env -i %s %q login --user %s --qr; echo EXIT=$?; sleep 30", strings.Join(env, " "), binPath, alice)
	m.must("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "60", launch)
	screen, sub := m.wait("the page and the code", regexp.MustCompile(`open this page on any device.*\n\s+(\S+)\nand enter the code:\n\s+(\S+)`))
	page, code := sub[1], sub[2]
	if !strings.Contains(screen, "▀") && !strings.Contains(screen, "▄") {
		t.Errorf("--qr drew no QR code:\n%s", screen)
	}
	// Polled twice or more: the status line has been redrawn, not repeated.
	screen, _ = m.wait("the status line after a few polls", regexp.MustCompile(`Waiting for approval · code expires in \d+m \d+s · asked [2-9]×`))
	if n := strings.Count(screen, "Waiting for approval"); n != 1 {
		t.Fatalf("the status line is not redrawn in place (%d copies):\n%s", n, screen)
	}
	browsertest.New(t).AnswerDevice(page, code, browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve})
	screen, _ = m.wait("the sign-in", regexp.MustCompile(`(?s)Signed in as @alice\S* \(device \w+\).*EXIT=0`))
	if strings.Contains(screen, "Waiting for approval") {
		t.Errorf("the status line was left on screen:\n%s", screen)
	}
	if devs := srv.Devices(alice); len(devs) != 1 {
		t.Fatalf("devices %v", devs)
	}

	// The second sign-in gets a tmux server of its own: killing the only
	// session ends a server, and a session started on its socket meanwhile
	// can meet it exiting.
	_, _ = m.cmd("kill-server")
	m = &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-devicegrant-cancel-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	other := newCLI(t)
	env = env[:0]
	for _, kv := range keyringtest.Merge(keyringEnv, []string{"MXAUTH_CONFIG_DIR=" + other.dir, "NO_COLOR=1", "TERM=xterm-256color", "PATH=" + os.Getenv("PATH"), keyringWait}) {
		env = append(env, fmt.Sprintf("%q", kv))
	}
	launch = fmt.Sprintf("env -i %s %q login --user %s; echo EXIT=$?; sleep 30", strings.Join(env, " "), binPath, alice)
	m.must("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "30", launch)
	m.wait("the status line", regexp.MustCompile(`Waiting for approval`))
	m.keys("C-c")
	screen, _ = m.wait("the end", regexp.MustCompile(`EXIT=\d+`))
	if !strings.Contains(screen, "cancelled") || !strings.Contains(screen, "EXIT=1") {
		t.Errorf("Ctrl+C while waiting:\n%s", screen)
	}
	if got := decodeJSON[[]accountJSON](t, other.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Errorf("a cancelled sign-in stored %+v", got)
	}
	if devs := srv.Devices(alice); len(devs) != 1 {
		t.Errorf("devices after the cancelled sign-in: %v", devs)
	}
	c.ok("", "logout")
}
