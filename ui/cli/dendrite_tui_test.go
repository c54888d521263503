package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/matrixtest/dendritetest"
)

// dendriteTUI adds the account through the full-screen app in tmux, the
// homeserver found from the typed user ID, reads its details, deletes another
// device through the password modal; a second start finds the account in the
// keyring and signs it out.
func dendriteTUI(t *testing.T, srv *dendritetest.Server) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("MXAUTH_E2E_TMUX") == "1" {
			t.Fatal("MXAUTH_E2E_TMUX=1 but tmux is not installed")
		}
		t.Skip("tmux not installed (set MXAUTH_E2E_TMUX=1 to require it)")
	}
	uid, pw := dendriteUser(t, srv, "tia")
	c := newCLI(t)

	// A script, so the keyring's environment reaches the program exactly.
	script := filepath.Join(t.TempDir(), "run.sh")
	env := []string{"PATH=" + os.Getenv("PATH"), "TERM=xterm-256color", "NO_COLOR=1", "MXAUTH_CONFIG_DIR=" + c.dir}
	env = append(env, keyringEnv...)
	var quoted []string
	for _, kv := range env {
		quoted = append(quoted, shellQuote(kv))
	}
	body := "#!/bin/sh\nexec env -i " + strings.Join(quoted, " ") + " " + shellQuote(binPath) + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}

	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-dendrite-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	launch := func() { m.must("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "30", script) }
	quit := func() {
		t.Helper()
		m.keys("q")
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, err := m.cmd("has-session", "-t", "e2e"); err != nil {
				return // the program quit and its session ended
			}
			if time.Now().After(deadline) {
				t.Fatalf("mxauth did not quit on q:\n%s", m.capture())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	launch()

	m.wait("the empty home screen", regexp.MustCompile(`No accounts yet`))
	m.keys("a")
	m.wait("the add-account form", regexp.MustCompile(`Add a Matrix account`))
	m.literal(uid)
	m.keys("Tab")
	m.wait("discovery from the user ID", regexp.MustCompile(`homeserver found`))
	m.keys("Tab")
	m.literal(pw)
	if screen := m.capture(); strings.Contains(screen, pw) {
		t.Fatalf("the password is echoed:\n%s", screen)
	}
	m.keys("Enter")
	// Dendrite's device IDs are URL-safe base64: they may hold '-' and '_'.
	screen, sub := m.wait("the account listed as not expiring", regexp.MustCompile(
		`(?s)`+regexp.QuoteMeta(uid)+`.*device (\S+) · `+regexp.QuoteMeta(srv.URL)+`.*token does not expire`))
	device := sub[1]
	t.Logf("home:\n%s", screen)

	// No login tokens on Dendrite: the app says so instead of asking for the password.
	m.keys("t")
	screen, _ = m.wait("the login-token screen's verdict", regexp.MustCompile(`does not offer login tokens`))
	if strings.Contains(screen, "Confirm it's you") {
		t.Fatalf("asked for the password for a server without login tokens:\n%s", screen)
	}
	m.keys("Escape")
	m.wait("home again", regexp.MustCompile(`mxauth · Accounts`))

	// Another client's device, to delete from the details screen.
	other := directLogin(t, srv.URL, uid, pw, "TUIOTHER")

	m.keys("Enter")
	screen, _ = m.wait("the details with the server's answers", regexp.MustCompile(
		`(?s)Account details.*Expires\s+never.*Refresh token\s+no.*Versions\s+r0\.\S+ – v1\.\d+.*login tokens ✗.*do not expire.*Devices \(2\)`))
	t.Logf("details:\n%s", screen)
	for _, want := range []string{uid, device, srv.URL} {
		if !strings.Contains(screen, want) {
			t.Errorf("details lack %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, pw) {
		t.Fatalf("the details show the password:\n%s", screen)
	}

	// Delete the other device through Dendrite's user-interactive auth: a
	// wrong password first, then the right one, in the app's password modal.
	if !strings.Contains(screen, "▸ TUIOTHER") {
		m.keys("Down")
	}
	m.wait("the other device selected", regexp.MustCompile(`▸ TUIOTHER`))
	m.keys("d")
	m.wait("the delete question", regexp.MustCompile(`Delete device TUIOTHER\?`))
	m.keys("y")
	m.wait("the password modal", regexp.MustCompile(`Confirm it's you`))
	m.literal("not the password")
	m.keys("Enter")
	m.wait("the wrong-password note", regexp.MustCompile(`Wrong password`))
	m.literal(pw)
	m.keys("Enter")
	screen, _ = m.wait("the device gone", regexp.MustCompile(`(?s)Devices \(1\).*deleted device TUIOTHER`))
	if regexp.MustCompile(`(?m)^\s*(▸\s+)?TUIOTHER\b`).MatchString(screen) || strings.Contains(screen, pw) {
		t.Fatalf("after deleting TUIOTHER:\n%s", screen)
	}
	if err := whoamiErr(srv.URL, other.AccessToken.Reveal()); !matrix.IsUnknownToken(err) {
		t.Fatalf("the device deleted in the app: want M_UNKNOWN_TOKEN, got %v", err)
	}

	quit()

	// What the app stored is what the command line sees.
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || list[0].UserID != uid || list[0].DeviceID != device || list[0].Homeserver != srv.URL || list[0].State != "non-expiring" {
		t.Fatalf("list --json after the app: %+v", list)
	}
	tok := strings.TrimSpace(c.ok("", "token").stdout)
	if who := whoami(t, srv.URL, tok); who.DeviceID != device {
		t.Fatalf("whoami: %+v, want device %s", who, device)
	}

	// Started again, the app finds the account in the keyring; sign it out there.
	launch()
	m.wait("the account loaded from the keyring", regexp.MustCompile(`(?s)`+regexp.QuoteMeta(uid)+`.*token does not expire`))
	m.keys("x")
	m.wait("the sign-out question", regexp.MustCompile(`Sign out `+regexp.QuoteMeta(uid)+`\?`))
	m.keys("y")
	m.wait("the account gone", regexp.MustCompile(`(?s)No accounts yet.*signed out `+regexp.QuoteMeta(uid)))
	quit()
	if err := whoamiErr(srv.URL, tok); !matrix.IsUnknownToken(err) {
		t.Fatalf("the token after signing out in the app: want M_UNKNOWN_TOKEN, got %v", err)
	}
	if items := keyringItems(t, uid); len(items) != 0 {
		t.Fatalf("keyring items after signing out in the app: %v", items)
	}
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
		t.Fatalf("list after signing out in the app: %+v", got)
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
