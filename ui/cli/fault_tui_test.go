package cli

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"mxauth/keystore/keyringtest"
	"mxauth/matrix/homeserver"
)

// needTmux skips (or, with MXAUTH_E2E_TMUX=1, fails) without tmux.
func needTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("MXAUTH_E2E_TMUX") == "1" {
			t.Fatal("MXAUTH_E2E_TMUX=1 but tmux is not installed")
		}
		t.Skip("tmux not installed (set MXAUTH_E2E_TMUX=1 to require it)")
	}
}

// startTUI runs the full-screen app for c's config dir in an 80x24 tmux pane.
func startTUI(t *testing.T, c *cli, name string) *tmuxTerm {
	t.Helper()
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-%s-%d", name, os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	base := keyringtest.Merge(keyringEnv, c.extra)
	var env []string
	for _, kv := range keyringtest.Merge(base, []string{"MXAUTH_CONFIG_DIR=" + c.dir, "NO_COLOR=1", "TERM=xterm-256color", "PATH=" + os.Getenv("PATH")}) {
		env = append(env, fmt.Sprintf("%q", kv))
	}
	launch := fmt.Sprintf("env -i %s %q", strings.Join(env, " "), binPath)
	m.must("new-session", "-d", "-s", "e2e", "-x", "80", "-y", "24", launch)
	return m
}

// cutWord finds a line that ends in an ellipsis glued to a word: text cut mid-word.
var cutWord = regexp.MustCompile(`(?m)\pL…\s*$`)

// TestFaultTUIKeyringLocked: with the keyring locked, the TUI says so once,
// across the screen, advice first; details and list --json say the expiry is
// unknown instead of "never"; unlocking and pressing r brings the account back.
func TestFaultTUIKeyringLocked(t *testing.T) {
	t.Parallel()
	needKeyring(t)
	needTmux(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{})
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := &cli{t: t, dir: t.TempDir(), extra: k.Env}
	c.login(srv, alice, pw)
	if err := k.Lock(); err != nil {
		t.Fatal(err)
	}

	got := decodeJSON[[]map[string]any](t, c.expect(exitKeyring, "", "list", "--json").stdout)
	if len(got) != 1 || got[0]["expiry"] != "unknown" {
		t.Fatalf("list --json with a locked keyring should say the expiry is unknown: %v", got)
	}
	if r := c.expect(exitKeyring, "", "list"); !strings.Contains(r.stdout, "unknown") {
		t.Fatalf("list with a locked keyring should say the expiry is unknown: %s", r)
	}

	m := startTUI(t, c, "locked")
	screen, _ := m.wait("the keyring banner", regexp.MustCompile(`Keyring locked: unlock it, then press r`))
	lines := strings.Split(screen, "\n")
	if !strings.Contains(lines[0], "keyring locked") {
		t.Errorf("the header should name the keyring's state:\n%s", screen)
	}
	if n := strings.Count(screen, "Keyring locked"); n != 1 {
		t.Errorf("the keyring problem should be said once, not %d times:\n%s", n, screen)
	}
	if l := cutWord.FindString(screen); l != "" {
		t.Errorf("a message is cut mid-word (%q):\n%s", l, screen)
	}
	m.keys("Enter")
	// Settled: the server and device rows have their answers, no spinner is left.
	screen, _ = m.wait("the details screen", regexp.MustCompile(`(?s)Account details.*Refresh token.*Server\s+keyring locked.*Devices\s*\n\s+keyring locked`))
	for _, re := range []string{`Expires\s+unknown`, `Refresh token\s+unknown`} {
		if !regexp.MustCompile(re).MatchString(screen) {
			t.Errorf("details should say %s:\n%s", re, screen)
		}
	}
	if strings.Contains(screen, "never") {
		t.Errorf("details claim the token never expires:\n%s", screen)
	}
	if l := cutWord.FindString(screen); l != "" {
		t.Errorf("a message is cut mid-word (%q):\n%s", l, screen)
	}
	m.keys("Escape")
	m.wait("home again", regexp.MustCompile(`mxauth · Accounts`))

	if err := k.Unlock(); err != nil {
		t.Fatal(err)
	}
	m.keys("r")
	screen, _ = m.wait("alice back", regexp.MustCompile(`active · expires in`))
	if strings.Contains(screen, "Keyring locked") {
		t.Errorf("the banner stays after the keyring came back:\n%s", screen)
	}
	m.keys("q")
}
