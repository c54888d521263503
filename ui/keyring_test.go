package ui

import (
	"regexp"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// cutWord matches a line ending in an ellipsis glued to a letter: a word cut in half.
var cutWord = regexp.MustCompile(`(?m)\pL…\s*$`)

func lockedAccounts() []app.Account {
	as := sampleAccounts()
	for i := range as[:2] {
		as[i].Status = session.Status{State: session.StateStoreProblem, TokensUnknown: true, Keyring: session.KeyringLocked,
			Problem: "keyring unavailable or locked (keystore: load tokens for " + as[i].UserID + ": the keyring (Secret Service) is locked [failed to unlock correct collection '/org/freedesktop/secrets/collection/login']; unlock the keyring (your desktop's keyring or password manager) and try again)"}
	}
	return as
}

func TestKeyringLockedBannerAndUnknownExpiry(t *testing.T) {
	f := newFake()
	f.accounts = lockedAccounts()
	m, _ := testModel(t, f)
	view := stripANSI(content(m))
	lines := strings.Split(view, "\n")
	if !strings.Contains(lines[0], "keyring locked") {
		t.Errorf("the header should name the keyring's state: %q", lines[0])
	}
	if !strings.HasPrefix(strings.TrimSpace(lines[1]), "Keyring locked: unlock it, then press r") {
		t.Errorf("the banner should open the screen with the advice:\n%s", view)
	}
	if n := strings.Count(view, "Keyring locked"); n != 1 {
		t.Errorf("the advice appears %d times:\n%s", n, view)
	}
	if l := cutWord.FindString(view); l != "" {
		t.Errorf("cut mid-word (%q):\n%s", l, view)
	}

	// The help bar offers r, not keys that need the tokens.
	mustContain(t, helpBar(m), "r refresh")
	mustNotContain(t, helpBar(m), "t token")

	// r reads the keyring again for every account it failed for.
	press(m, "r")
	if len(f.refreshed) != 2 || f.refreshed[0] == f.refreshed[1] {
		t.Errorf("r should retry both locked accounts, got %v", f.refreshed)
	}

	press(m, "enter")
	view = stripANSI(content(m))
	mustContain(t, view, "✗ keyring locked")
	if !regexp.MustCompile(`Expires\s+unknown`).MatchString(view) || !regexp.MustCompile(`Refresh token\s+unknown`).MatchString(view) {
		t.Errorf("details should say the expiry and refresh token are unknown:\n%s", view)
	}
	mustNotContain(t, view, "never", "Refresh token no")
	mustContain(t, helpBar(m), "r refresh", "esc back")
	mustNotContain(t, helpBar(m), "v reveal", "t token")
	if l := cutWord.FindString(view); l != "" {
		t.Errorf("cut mid-word (%q):\n%s", l, view)
	}
}

func TestKeyringBannerGoesWhenKeyringWorks(t *testing.T) {
	f := newFake()
	f.accounts = lockedAccounts()
	m, clk := testModel(t, f)
	f.mu.Lock()
	f.accounts = sampleAccounts()
	f.mu.Unlock()
	tick(m, clk, 1)
	view := stripANSI(content(m))
	mustNotContain(t, view, "Keyring locked", "keyring locked")
	mustContain(t, view, "keyring: Secret Service")
}

func TestKeyringStartupProblemWithoutAccounts(t *testing.T) {
	f := newFake()
	m, _ := testModel(t, f)
	m.opt.Keyring = storeErr{}
	view := stripANSI(content(m))
	mustContain(t, view, "Keyring locked: unlock it, then restart mxauth", "No accounts yet")
}

func TestLongMessagesEndOnWholeWords(t *testing.T) {
	long := strings.Repeat("the keyring (Secret Service) is locked and cannot be read ", 10)
	for _, l := range statusLines(long, 70) {
		if cutWord.MatchString(l) {
			t.Errorf("status line cut mid-word: %q", l)
		}
	}
	if got := fitWords("retrying in 5s · cannot reach the server (connection refused)", 40); cutWord.MatchString(got) || len([]rune(got)) > 40 {
		t.Errorf("fitWords: %q", got)
	}
	if got := clean(strings.Repeat("abcdefghij ", 30)); cutWord.MatchString(got) {
		t.Errorf("clean cut a word: %q", got)
	}
}

// TestLockBusyIsNotAKeyringError: a refresh that gave up on another process's
// lock says so, instead of blaming the keyring.
func TestLockBusyIsNotAKeyringError(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	busy := &session.SessionError{State: session.StateStoreProblem, Err: session.ErrLockBusy}
	f.accounts[0].Status = session.Status{State: session.StateStoreProblem, Keyring: session.KeyringIssueOf(busy),
		Problem: "another mxauth process holds the lock of " + f.accounts[0].UserID + " (waited 30s for x.lock)"}
	m, _ := testModel(t, f)
	view := stripANSI(content(m))
	mustContain(t, view, "account lock busy", "Another mxauth process holds an account's lock")
	mustNotContain(t, view, "Keyring error", "keyring error")
}

// TestHeaderGivesWayAtWords: at the smallest size the header shortens the
// store's name at a word instead of cutting into it.
func TestHeaderGivesWayAtWords(t *testing.T) {
	for _, accounts := range [][]app.Account{sampleAccounts(), lockedAccounts()} {
		f := newFake()
		f.accounts = accounts
		f.store = "memory (demo: nothing is saved)"
		m, _ := testModel(t, f)
		press(m, "enter") // the longest title
		m.Update(tea.WindowSizeMsg{Width: minWidth, Height: minHeight})
		header := strings.Split(stripANSI(content(m)), "\n")[0]
		if cutWord.MatchString(header) || !strings.Contains(header, "keyring") {
			t.Errorf("header %q", header)
		}
	}
}

// TestDetailsWhileLoading: before the keyring has answered, the expiry and
// refresh token are not known, and the screen says so.
func TestDetailsWhileLoading(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.accounts[0].Status = session.Status{State: session.StateLoading}
	m, _ := testModel(t, f)
	press(m, "enter")
	view := stripANSI(content(m))
	if !regexp.MustCompile(`Expires\s+unknown · still reading the keyring`).MatchString(view) || !regexp.MustCompile(`Refresh token\s+unknown`).MatchString(view) {
		t.Errorf("details while loading:\n%s", view)
	}
	mustNotContain(t, view, "never", "Refresh token no")
}
