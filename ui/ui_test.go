package ui

import (
	"context"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"mxauth/matrix"
	"mxauth/matrix/matrixtest/clocktest"
	"mxauth/matrix/session"
	"mxauth/ui/app"
	"mxauth/ui/qrcode"
)

// mustContain looks at the text as shown, without styling.
func mustContain(t *testing.T, view string, wants ...string) {
	t.Helper()
	plain := stripANSI(view)
	for _, w := range wants {
		if !strings.Contains(plain, w) {
			t.Fatalf("view lacks %q:\n%s", w, view)
		}
	}
}

func mustNotContain(t *testing.T, view string, bad ...string) {
	t.Helper()
	plain := stripANSI(view)
	for _, b := range bad {
		if strings.Contains(view, b) || strings.Contains(plain, b) {
			t.Fatalf("view contains %q:\n%s", b, view)
		}
	}
}

func isQuit(msgs []tea.Msg) bool {
	for _, m := range msgs {
		if _, ok := m.(tea.QuitMsg); ok {
			return true
		}
	}
	return false
}

func TestHomeEmptyInvitesToAdd(t *testing.T) {
	m, _ := testModel(t, newFake())
	v := content(m)
	mustContain(t, v, "No accounts yet", "to add your first Matrix account", "keyring: Secret Service", "a add")
	if !m.View().AltScreen {
		t.Fatal("the program should use the alternate screen")
	}
}

func TestHomeNavigationAndQuit(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	press(m, "j")
	if m.home.list.Index() != 1 {
		t.Fatalf("cursor = %d after j", m.home.list.Index())
	}
	press(m, "down", "down", "down")
	if m.home.list.Index() != 2 {
		t.Fatalf("cursor = %d, want clamped at 2", m.home.list.Index())
	}
	press(m, "k", "up", "up")
	if m.home.list.Index() != 0 {
		t.Fatalf("cursor = %d, want 0", m.home.list.Index())
	}
	if !isQuit(press(m, "q")) {
		t.Fatal("q should quit")
	}
	if !isQuit(press(m, "ctrl+c")) {
		t.Fatal("ctrl+c should quit")
	}
}

func TestHomeShowsEveryStateWithLiveCountdown(t *testing.T) {
	f := newFake()
	st := func(u string, s session.Status) app.Account {
		return app.Account{UserID: u, DeviceID: "D", Homeserver: "https://hs", Status: s}
	}
	f.accounts = []app.Account{
		st("@a:x", session.Status{State: session.StateActive, ExpiresAt: t0.Add(5 * time.Minute)}),
		st("@b:x", session.Status{State: session.StateRefreshing}),
		st("@c:x", session.Status{State: session.StateRetrying, RetryAt: t0.Add(7 * time.Second)}),
		st("@d:x", session.Status{State: session.StateNeedsSignIn}),
		st("@e:x", session.Status{State: session.StateLocked}),
		st("@f:x", session.Status{State: session.StateStoreProblem, Problem: "keyring locked"}),
		st("@g:x", session.Status{State: session.StateSignedOut}),
		st("@h:x", session.Status{State: session.StateExpiring, ExpiresAt: t0.Add(30 * time.Minute)}),
		st("@i:x", session.Status{State: session.StateNonExpiring}),
	}
	m, clk := testModel(t, f)
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	mustContain(t, content(m),
		"expires in 5m 00s", "refreshing", "retrying in 7s", "sign in again", "locked",
		"✗ keyring error", "signed out", "expires at 12:30", "sign in again before then",
		"token does not expire")
	tick(m, clk, 3*time.Second)
	mustContain(t, content(m), "expires in 4m 57s", "retrying in 4s")
}

func TestEventsShowInStatusLine(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	_, cmd := m.Update(eventMsg{session.Event{Kind: session.EventRefreshed, At: t0,
		Status: session.Status{Account: session.AccountKey{UserID: "@bob:example.org"}}}})
	mustContain(t, content(m), "refreshed @bob:example.org")
	if cmd == nil {
		t.Fatal("the event wait must be re-armed after each event")
	}
	f.events <- session.Event{Kind: session.EventNeedsSignIn, Status: session.Status{Account: session.AccountKey{UserID: "@carol:x"}}}
	close(f.events) // the wait after this event ends instead of blocking
	drain(m, cmd)
	mustContain(t, content(m), "@carol:x needs sign-in · press s")
	if m.events != nil {
		t.Fatal("a closed event channel is not waited on again")
	}
}

func TestServerTextIsSanitised(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.accounts[0].DisplayName = "Eve\x1b]0;pwned\x07\x1b[2J"
	m, _ := testModel(t, f)
	v := content(m)
	mustNotContain(t, v, "]0;pwned", "\x07")
	if strings.Contains(v, "\x1b[2J") {
		t.Fatal("server text cleared the screen")
	}
	mustContain(t, v, "Eve")
}

func TestTooSmallAndResize(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	m.Update(tea.WindowSizeMsg{Width: 59, Height: 30})
	mustContain(t, content(m), "terminal too small (need 60x20)")
	press(m, "a") // ignored while too small
	if m.screen != screenHome {
		t.Fatal("keys other than quit must be ignored while too small")
	}
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 19})
	mustContain(t, content(m), "terminal too small")
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 20})
	v := content(m)
	mustNotContain(t, v, "too small")
	mustContain(t, v, "@alice:example.org")
	if lines := strings.Count(v, "\n") + 1; lines > 20 {
		t.Fatalf("view has %d lines at 60x20", lines)
	}
	if !isQuit(press(m, "q")) {
		t.Fatal("q quits")
	}
}

func TestFullHelpToggle(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	mustNotContain(t, content(m), "sign in again   ")
	press(m, "?")
	mustContain(t, content(m), "r refresh", "sign in again")
	press(m, "?")
	if m.showHelp {
		t.Fatal("? toggles full help off")
	}
}

// --- add account ---

func TestAddAccountValidation(t *testing.T) {
	f := newFake()
	m, _ := testModel(t, f)
	press(m, "a")
	if m.screen != screenLogin {
		t.Fatal("a opens the form")
	}
	mustContain(t, content(m), "Add a Matrix account", "Homeserver", "Device name")
	if got := m.login.inputs[fieldDevice].Value(); got != "mxauth on testhost" {
		t.Fatalf("default device name = %q", got)
	}
	press(m, "enter")
	if m.login.errKind != errValidation || m.login.focus != fieldHomeserver {
		t.Fatalf("empty form: kind %v focus %d", m.login.errKind, m.login.focus)
	}
	m.login.inputs[fieldHomeserver].SetValue("https://matrix.example.org")
	m.login.resolvedFor = "https://matrix.example.org"
	press(m, "enter")
	if m.login.focus != fieldUser || !strings.Contains(m.login.errText, "user name") {
		t.Fatalf("missing user: %q focus %d", m.login.errText, m.login.focus)
	}
	m.login.inputs[fieldUser].SetValue("alice")
	press(m, "enter")
	if m.login.focus != fieldPassword || !strings.Contains(m.login.errText, "password") {
		t.Fatalf("missing password: %q", m.login.errText)
	}
	if len(f.logins) != 0 {
		t.Fatal("no login may be attempted with missing fields")
	}
	press(m, "esc")
	if m.screen != screenHome {
		t.Fatal("esc goes back")
	}
}

func fillForm(m *model, hs, user, pw string) {
	press(m, "a")
	typeText(m, hs)
	m.login.setFocus(fieldUser)
	typeText(m, user)
	m.login.setFocus(fieldPassword)
	typeText(m, pw)
}

func TestAddAccountSuccess(t *testing.T) {
	f := newFake()
	m, _ := testModel(t, f)
	fillForm(m, "example.org", "alice", "hunter2")
	mustNotContain(t, content(m), "hunter2")
	mustContain(t, content(m), "•••••••")
	press(m, "enter")
	if len(f.resolved) != 1 || f.resolved[0] != "example.org" {
		t.Fatalf("resolve calls %v", f.resolved)
	}
	if len(f.logins) != 1 {
		t.Fatalf("logins %d", len(f.logins))
	}
	p := f.logins[0]
	if p.Homeserver != "https://matrix.example.org" || p.User != "alice" || p.Password.Reveal() != "hunter2" ||
		p.DeviceName != "mxauth on testhost" || p.DeviceID != "" {
		t.Fatalf("params %+v", p)
	}
	if m.screen != screenHome {
		t.Fatal("back home after sign-in")
	}
	mustContain(t, content(m), "signed in as @alice:example.org", "@alice:example.org")
}

func TestAddAccountMXIDDiscovery(t *testing.T) {
	f := newFake()
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "@alice:example.org")
	press(m, "tab")
	if len(f.resolved) != 1 || f.resolved[0] != "@alice:example.org" {
		t.Fatalf("resolve calls %v", f.resolved)
	}
	if hs := m.login.inputs[fieldHomeserver].Value(); hs != "https://matrix.example.org" {
		t.Fatalf("homeserver field = %q", hs)
	}
	if u := m.login.inputs[fieldUser].Value(); u != "@alice:example.org" {
		t.Fatalf("user field = %q", u)
	}
	mustContain(t, content(m), "homeserver found")
	m.login.setFocus(fieldPassword)
	typeText(m, "pw")
	press(m, "enter")
	if len(f.resolved) != 1 {
		t.Fatal("a resolved homeserver is not discovered again")
	}
	if len(f.logins) != 1 || f.logins[0].Homeserver != "https://matrix.example.org" {
		t.Fatalf("logins %+v", f.logins)
	}
}

func TestAddAccountShowsSpinnerWhileDiscovering(t *testing.T) {
	f := newFake()
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "@alice:example.org")
	_, cmd := m.Update(kp("tab")) // do not run the command: the call is in flight
	if cmd == nil || !m.login.resolving {
		t.Fatal("tab out of a new homeserver starts discovery")
	}
	mustContain(t, content(m), "discovering @alice:example.org…")
	// The form stays editable while discovery runs.
	typeText(m, "al")
	if m.login.inputs[fieldUser].Value() != "al" {
		t.Fatalf("user field = %q", m.login.inputs[fieldUser].Value())
	}
	drain(m, cmd)
	if m.login.resolving || m.login.inputs[fieldHomeserver].Value() != "https://matrix.example.org" {
		t.Fatal("discovery result applied")
	}
	if m.login.inputs[fieldUser].Value() != "al" {
		t.Fatal("a user name typed meanwhile is kept")
	}
}

func TestAddAccountStaleDiscoveryIgnored(t *testing.T) {
	f := newFake()
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "example.org")
	_, cmd := m.Update(kp("tab"))
	press(m, "shift+tab")
	typeText(m, "x") // homeserver is now example.orgx
	drain(m, cmd)
	if got := m.login.inputs[fieldHomeserver].Value(); got != "example.orgx" {
		t.Fatalf("a result for older input overwrote the field: %q", got)
	}
}

func TestAddAccountErrors(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		kind   loginErr
		text   string
		field  int
		pwGone bool
	}{
		{"wrong password", &matrix.Error{Status: 403, ErrCode: "M_FORBIDDEN", Message: "Invalid password"},
			errWrongPassword, "Wrong user name or password", fieldPassword, true},
		{"deactivated", &matrix.Error{Status: 403, ErrCode: "M_USER_DEACTIVATED"},
			errDeactivated, "deactivated", fieldUser, false},
		{"locked", &matrix.Error{Status: 401, ErrCode: "M_USER_LOCKED"},
			errLocked, "locked", fieldUser, false},
		{"unreachable", &matrix.TransportError{Endpoint: "POST /_matrix/client/v3/login", Err: errors.New("connection refused")},
			errUnreachable, "Cannot reach https://matrix.example.org", fieldHomeserver, false},
		{"no password login", &matrix.Error{Status: 404, ErrCode: "M_UNRECOGNIZED"},
			errUnsupported, "does not offer password login", fieldHomeserver, false},
		{"other", &matrix.Error{Status: 400, ErrCode: "M_BAD_JSON", Message: "bad \x1b[31mjson"},
			errOther, "Sign-in failed: bad json", fieldPassword, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.login = func(app.LoginParams) (app.Account, error) { return app.Account{}, tc.err }
			m, _ := testModel(t, f)
			fillForm(m, "example.org", "alice", "pw")
			press(m, "enter")
			if m.screen != screenLogin {
				t.Fatal("the form stays open on error")
			}
			if m.login.errKind != tc.kind || m.login.errField != tc.field {
				t.Fatalf("kind %v field %d, want %v %d (%q)", m.login.errKind, m.login.errField, tc.kind, tc.field, m.login.errText)
			}
			v := content(m)
			mustContain(t, v, tc.text)
			mustNotContain(t, v, "\x1b[31mjson")
			if gone := m.login.inputs[fieldPassword].Value() == ""; gone != tc.pwGone {
				t.Fatalf("password cleared = %v", gone)
			}
		})
	}
}

func TestAddAccountDiscoveryFailureAsksForURL(t *testing.T) {
	f := newFake()
	f.resolve = func(string) (string, error) {
		return "", &matrix.DiscoveryError{Outcome: matrix.DiscoveryFailPrompt, Reason: "no .well-known"}
	}
	m, _ := testModel(t, f)
	fillForm(m, "@alice:example.org", "", "pw")
	press(m, "enter")
	if m.login.errKind != errDiscovery || m.login.focus != fieldHomeserver {
		t.Fatalf("kind %v focus %d", m.login.errKind, m.login.focus)
	}
	mustContain(t, content(m), "Could not find the homeserver", "Enter its URL")
	if len(f.logins) != 0 {
		t.Fatal("no login without a homeserver")
	}
	// The user types the URL; discovery of the URL now works.
	f.resolve = func(in string) (string, error) { return in, nil }
	m.login.inputs[fieldHomeserver].SetValue("https://hs.example.org")
	press(m, "enter")
	if len(f.logins) != 1 || f.logins[0].Homeserver != "https://hs.example.org" || f.logins[0].User != "@alice:example.org" {
		t.Fatalf("logins %+v", f.logins)
	}
}

func TestAddAccountRateLimitCountdown(t *testing.T) {
	f := newFake()
	f.login = func(app.LoginParams) (app.Account, error) {
		return app.Account{}, &matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", RetryAfter: 30 * time.Second}
	}
	m, clk := testModel(t, f)
	fillForm(m, "example.org", "alice", "pw")
	press(m, "enter")
	if m.login.errKind != errRateLimited {
		t.Fatalf("kind %v", m.login.errKind)
	}
	mustContain(t, content(m), "Try again in 30 seconds")
	tick(m, clk, 10*time.Second)
	mustContain(t, content(m), "Try again in 20 seconds")
	press(m, "enter")
	if len(f.logins) != 1 {
		t.Fatal("submit is held back during the countdown")
	}
	tick(m, clk, 20*time.Second)
	mustContain(t, content(m), "You can try again now")
	press(m, "enter")
	if len(f.logins) != 2 {
		t.Fatalf("after the countdown the form submits again (%d)", len(f.logins))
	}
}

func TestSignInAgainReusesDevice(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	press(m, "s") // alice is active: nothing to do
	if m.screen != screenHome {
		t.Fatal("s on an active account does nothing")
	}
	press(m, "j", "s")
	if m.screen != screenLogin || m.login.reauth == nil {
		t.Fatal("s on bob opens sign in again")
	}
	mustContain(t, content(m), "Sign in again as @bob:example.org", "BOBDEV is kept")
	if m.login.inputs[fieldUser].Value() != "@bob:example.org" || m.login.focus != fieldPassword {
		t.Fatal("user pre-filled and focus on password")
	}
	typeText(m, "pw")
	press(m, "enter")
	if len(f.resolved) != 0 {
		t.Fatal("the stored homeserver is not discovered again")
	}
	if len(f.logins) != 1 || f.logins[0].DeviceID != "BOBDEV" || f.logins[0].Homeserver != "https://matrix.example.org" {
		t.Fatalf("logins %+v", f.logins)
	}
}

// --- details ---

func TestDetailsRevealHides(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.devices = []matrix.Device{{DeviceID: "ALICEDEV", DisplayName: "mxauth on testhost"}, {DeviceID: "PHONE", DisplayName: "Element Android"}}
	m, clk := testModel(t, f)
	press(m, "enter")
	if m.screen != screenDetails {
		t.Fatal("enter opens details")
	}
	v := content(m)
	mustContain(t, v, "ALICEDEV", "https://matrix.example.org", "in 4m 12s", "Refresh token yes",
		"r0.6.1 – v1.12 (3 versions)", "login tokens ✓", "Devices (2)", "(this session)", "Element Android", mask)
	mustNotContain(t, v, f.token.Reveal())
	press(m, "v")
	mustContain(t, content(m), f.token.Reveal(), "hides in 10s")
	tick(m, clk, 5*time.Second)
	mustContain(t, content(m), f.token.Reveal())
	tick(m, clk, 5*time.Second)
	mustNotContain(t, content(m), f.token.Reveal())
	press(m, "v", "v")
	mustNotContain(t, content(m), f.token.Reveal())
	press(m, "v", "esc")
	if m.screen != screenHome || !m.details.revealed.IsZero() {
		t.Fatal("esc goes home and forgets the token")
	}
}

func TestDetailsRefreshNow(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	press(m, "r")
	press(m, "enter", "r")
	if len(f.refreshed) != 2 || f.refreshed[0] != "@alice:example.org" {
		t.Fatalf("refreshes %v", f.refreshed)
	}
	mustContain(t, content(m), "refreshed @alice:example.org")
}

func TestDeleteDeviceBehindUIA(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.devices = []matrix.Device{{DeviceID: "ALICEDEV"}, {DeviceID: "PHONE", DisplayName: "Phone"}}
	ch := &matrix.UIAChallenge{Session: "DS1", Flows: []matrix.UIAFlow{{Stages: []string{"m.login.password"}}}}
	f.deleteDevice = func(auth *matrix.AuthData) error {
		if auth == nil {
			return ch
		}
		f.devices = f.devices[:1]
		return nil
	}
	m, _ := testModel(t, f)
	press(m, "enter", "d")
	if m.confirmation() != nil || !strings.Contains(m.details.note, "own device") {
		t.Fatal("the session's own device is not deleted from here")
	}
	press(m, "j", "d")
	if m.confirmation() == nil || m.confirmation().deviceID != "PHONE" {
		t.Fatal("d asks first")
	}
	press(m, "y")
	if m.uia() == nil || m.uia().purpose != modalDeleteDevice {
		t.Fatal("UIA opens the password modal")
	}
	mustContain(t, content(m), "to delete", "device PHONE")
	typeText(m, "pw")
	press(m, "enter")
	if m.uia() != nil {
		t.Fatal("modal closes after success")
	}
	if len(f.deleteAuths) != 2 || f.deleteAuths[1].Session != "DS1" || f.deleteAuths[1].Password.Reveal() != "pw" {
		t.Fatalf("auths %+v", f.deleteAuths)
	}
	mustContain(t, content(m), "deleted device PHONE", "Devices (1)")
}

// --- sign out ---

func TestSignOutConfirm(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	press(m, "x")
	if m.confirmation() == nil {
		t.Fatal("x asks for confirmation")
	}
	mustContain(t, content(m), "Sign out @alice:example.org?")
	press(m, "n")
	if m.confirmation() != nil || len(f.signedOut) != 0 {
		t.Fatal("n cancels without signing out")
	}
	press(m, "x", "esc")
	if m.confirmation() != nil || len(f.signedOut) != 0 {
		t.Fatal("esc cancels")
	}
	f.signOutErr = &matrix.TransportError{Endpoint: "POST /logout", Err: errors.New("timeout")}
	press(m, "x", "y")
	if m.confirmation() == nil || m.confirmation().err == "" {
		t.Fatal("a failed sign-out stays in the dialog with the reason")
	}
	f.signOutErr = nil
	press(m, "y")
	if m.confirmation() != nil || len(f.signedOut) != 2 {
		t.Fatalf("signed out %v", f.signedOut)
	}
	mustContain(t, content(m), "signed out @alice:example.org")
}

// --- login token ---

func tokenResp(tok string, ms int64) *matrix.GetLoginTokenResponse {
	return &matrix.GetLoginTokenResponse{LoginToken: matrix.Secret(tok), ExpiresInMS: ms, ReceivedAt: t0}
}

const testToken = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func passwordChallenge(session string, failed bool) *matrix.UIAChallenge {
	ch := &matrix.UIAChallenge{Session: session, Flows: []matrix.UIAFlow{{Stages: []string{"m.login.password"}}}}
	if failed {
		ch.ErrCode, ch.Message = "M_FORBIDDEN", "Invalid password"
	}
	return ch
}

// uiaMint answers like a server with single-stage password UIA and password "right".
func uiaMint(f *fakeBackend, after func() (*matrix.GetLoginTokenResponse, error)) {
	n := 0
	f.mint = func(auth *matrix.AuthData) (*matrix.GetLoginTokenResponse, error) {
		switch {
		case auth == nil:
			n++
			return nil, passwordChallenge("S"+itoa(n), false)
		case auth.Type == "m.login.password" && auth.Password.Reveal() != "right":
			return nil, passwordChallenge(auth.Session, true)
		}
		return after()
	}
}

func TestLoginTokenUnsupported(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.check = app.LoginTokenCheck{Supported: false, Reason: "the server does not offer get_token (needs Matrix v1.7)"}
	m, _ := testModel(t, f)
	press(m, "t")
	if m.screen != screenToken || m.token.phase != tokenUnsupported {
		t.Fatalf("phase %v", m.token.phase)
	}
	mustContain(t, content(m), "cannot mint login tokens", "needs Matrix v1.7")
	if len(f.mintAuth) != 0 {
		t.Fatal("no mint when unsupported")
	}
}

func TestLoginTokenWrongThenRightPassword(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
	m, _ := testModel(t, f)
	press(m, "t")
	if m.uia() == nil {
		t.Fatal("the password modal opens")
	}
	v := content(m)
	mustContain(t, v, "Confirm it's you", "@alice:example.org", "to mint a login")
	typeText(m, "wrong")
	mustNotContain(t, content(m), "wrong")
	press(m, "enter")
	if m.uia() == nil || m.uia().errText == "" {
		t.Fatal("wrong password keeps the modal open")
	}
	mustContain(t, content(m), "Wrong password, try again.")
	if m.uia().input.Value() != "" {
		t.Fatal("the wrong password is cleared")
	}
	typeText(m, "right")
	press(m, "enter")
	if m.uia() != nil || m.token.phase != tokenShown {
		t.Fatalf("phase %v", m.token.phase)
	}
	if len(f.mintAuth) != 3 || f.mintAuth[0] != nil ||
		f.mintAuth[1].Session != "S1" || f.mintAuth[2].Session != "S1" {
		t.Fatalf("the retry must stay in the same UIA session: %+v", f.mintAuth)
	}
	if f.mintAuth[2].Identifier == nil || f.mintAuth[2].Identifier.User != "@alice:example.org" {
		t.Fatalf("identifier %+v", f.mintAuth[2].Identifier)
	}
	v = content(m)
	mustContain(t, v, testToken, "Login token for", "expires in 2m 00s", "▀")
	// A new token starts a new UIA session.
	press(m, "n")
	if m.uia() == nil || m.uia().session != "S2" {
		t.Fatal("n mints another behind a new UIA")
	}
	mustNotContain(t, content(m), testToken)
}

func TestLoginTokenEscCancels(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
	m, _ := testModel(t, f)
	press(m, "t")
	typeText(m, "rig")
	press(m, "esc")
	if m.uia() != nil || m.token.phase != tokenCancelled || m.screen != screenToken {
		t.Fatalf("esc cancels the modal (phase %v)", m.token.phase)
	}
	mustContain(t, content(m), "No token was minted")
	if len(f.mintAuth) != 1 {
		t.Fatal("nothing is sent after cancel")
	}
	press(m, "esc")
	if m.screen != screenHome {
		t.Fatal("esc again goes home")
	}
}

func TestLoginTokenFallbackStage(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	done := false
	f.mint = func(auth *matrix.AuthData) (*matrix.GetLoginTokenResponse, error) {
		if auth == nil || !done {
			return nil, &matrix.UIAChallenge{Session: "SSO1", Flows: []matrix.UIAFlow{{Stages: []string{"m.login.sso"}}}}
		}
		return tokenResp(testToken, 120000), nil
	}
	m, _ := testModel(t, f)
	press(m, "t")
	if m.uia() == nil || m.uia().fallbackURL == "" {
		t.Fatal("a non-password stage shows the fallback address")
	}
	mustContain(t, content(m), "m.login.sso", "fallback/web?session=SSO1", "press enter")
	_, cmd := m.Update(kp("c"))
	if cmd == nil || reflect.ValueOf(reflect.ValueOf(cmd()).Index(0).Interface().(tea.Cmd)()).String() != m.uia().fallbackURL {
		t.Fatal("c copies the fallback address")
	}
	mustContain(t, stripANSI(content(m)), "may not support it")
	press(m, "enter") // not done in the browser yet
	if m.uia() == nil || !strings.Contains(m.uia().errText, "not finished") {
		t.Fatal("the modal waits until the stage is done")
	}
	done = true
	press(m, "enter")
	if m.token.phase != tokenShown {
		t.Fatalf("phase %v", m.token.phase)
	}
	last := f.mintAuth[len(f.mintAuth)-1]
	if last.Session != "SSO1" || last.Type != "" || !last.Password.IsZero() {
		t.Fatalf("resend must be SessionAuth: %+v", last)
	}
}

func TestLoginTokenRateLimitRetriesSameSession(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	limited := true
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) {
		if limited {
			limited = false
			return nil, &matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", RetryAfter: 5 * time.Second}
		}
		return tokenResp(testToken, 120000), nil
	})
	m, clk := testModel(t, f)
	press(m, "t")
	typeText(m, "right")
	press(m, "enter")
	if m.uia() != nil || m.token.phase != tokenRateLimited {
		t.Fatalf("phase %v", m.token.phase)
	}
	mustContain(t, content(m), "rate limiting", "Trying again in 5 seconds")
	tick(m, clk, 2*time.Second)
	mustContain(t, content(m), "Trying again in 3 seconds")
	if len(f.mintAuth) != 2 {
		t.Fatal("no resend before the wait is over")
	}
	tick(m, clk, 3*time.Second)
	if m.token.phase != tokenShown {
		t.Fatalf("phase %v after the wait", m.token.phase)
	}
	last := f.mintAuth[len(f.mintAuth)-1]
	if len(f.mintAuth) != 3 || last.Session != "S1" || !last.Password.IsZero() {
		t.Fatalf("resend with the same session: %+v", f.mintAuth)
	}
}

func TestLoginTokenExpires(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
	m, clk := testModel(t, f)
	press(m, "t")
	typeText(m, "right")
	press(m, "enter")
	tick(m, clk, 60*time.Second)
	mustContain(t, content(m), "expires in 1m 00s", testToken)
	tick(m, clk, 60*time.Second)
	v := content(m)
	mustContain(t, v, "expired — press n for a new one")
	mustNotContain(t, v, testToken)
	if !m.token.token.IsZero() {
		t.Fatal("an expired token is forgotten")
	}
	press(m, "n")
	if m.uia() == nil {
		t.Fatal("n after expiry mints another")
	}
}

func TestLoginTokenCopy(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
	m, _ := testModel(t, f)
	press(m, "t")
	typeText(m, "right")
	press(m, "enter")
	_, cmd := m.Update(kp("c"))
	if cmd == nil {
		t.Fatal("c returns a clipboard command")
	}
	// A sequence: write the token (OSC 52), then ask the terminal for it back.
	seq := reflect.ValueOf(cmd())
	if seq.Kind() != reflect.Slice || seq.Len() != 2 {
		t.Fatalf("want a write then a read, got %T", cmd())
	}
	write := seq.Index(0).Interface().(tea.Cmd)()
	if rv := reflect.ValueOf(write); rv.Type().String() != "tea.setClipboardMsg" || rv.String() != testToken {
		t.Fatalf("clipboard write %T %v", write, rv)
	}
	if read := seq.Index(1).Interface().(tea.Cmd)(); reflect.TypeOf(read).String() != "tea.readClipboardMsg" {
		t.Fatalf("clipboard read %T", read)
	}
	// Terminals do not acknowledge the write: until the read-back matches,
	// the screen says the copy may not have worked.
	mustContain(t, stripANSI(content(m)), "may not support it")
	mustNotContain(t, content(m), "copied ✓")
	m.Update(tea.ClipboardMsg{Content: "something else", Selection: 'c'})
	mustNotContain(t, content(m), "copied ✓")
	m.Update(tea.ClipboardMsg{Content: testToken, Selection: 'c'})
	mustContain(t, content(m), "copied ✓")
}

func TestLoginTokenCopyNothingBeforeToken(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.check = app.LoginTokenCheck{Supported: false, Reason: "no"}
	m, _ := testModel(t, f)
	press(m, "t")
	if _, cmd := m.Update(kp("c")); cmd != nil {
		t.Fatal("c copies only a shown token")
	}
}

func TestLateAnswersAreDropped(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
	m, _ := testModel(t, f)
	press(m, "t")
	seq := m.token.seq
	press(m, "esc", "esc")
	m.Update(mintMsg{seq: seq, userID: "@alice:example.org", resp: tokenResp(testToken, 1000)})
	if m.screen != screenHome || !m.token.token.IsZero() {
		t.Fatal("an answer for a screen the user left must not show up")
	}
}

func TestQRFitsAt80x24(t *testing.T) {
	long := strings.Repeat("syl_abcdefghij", 5)[:64]
	for _, tok := range []string{testToken, "syl_olrIJvhn02JfT7podVyJxkQs9RVZz6ql", long} {
		for _, noColor := range []bool{false, true} {
			f := newFake()
			f.accounts = sampleAccounts()
			f.demo = &app.DemoInfo{Homeserver: "http://127.0.0.1:8008", Users: []app.DemoUser{{UserID: "@alice:localhost", Password: "alice-pw", SignedIn: true}, {UserID: "@bob:localhost", Password: "bob-pw"}}}
			uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(tok, 120000), nil })
			clk := clocktest.New(t0)
			m := newModel(t.Context(), f, RunOptions{Now: clk.Now, NoColor: noColor})
			m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
			press(m, "t")
			typeText(m, "right")
			press(m, "enter")
			v := content(m)
			if n := strings.Count(v, "\n") + 1; n > 24 {
				t.Fatalf("token view is %d lines", n)
			}
			qr, _, err := qrcode.Render(tok, m.styles.QR, noColor)
			if err != nil {
				t.Fatal(err)
			}
			// Every QR row must be on screen.
			for i, row := range strings.Split(qr, "\n") {
				if !strings.Contains(stripANSI(v), strings.TrimSpace(stripANSI(row))) {
					t.Fatalf("%d-char token: QR row %d missing (noColor=%v):\n%s", len(tok), i, noColor, stripANSI(v))
				}
			}
			mustContain(t, v, "Demo: nothing is saved", "expires in 2m 00s")
			if !strings.Contains(stripANSI(v), tok) {
				// A token wider than the column is broken over lines inside the box.
				mustContain(t, v, tok[:20])
			}
		}
	}
}

func TestGuardedRecoversPanics(t *testing.T) {
	f := newFake()
	f.panicStore = true
	g := guarded{newModel(t.Context(), f, RunOptions{Now: func() time.Time { return t0 }})}
	g.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	v := g.View()
	if !strings.Contains(v.Content, "internal error") {
		t.Fatalf("view after panic: %q", v.Content)
	}
	_, cmd := g.Update(kp("j"))
	if cmd == nil {
		t.Fatal("after a panic the program quits")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok || g.m.fatal == nil {
		t.Fatal("quit with an error")
	}
}

func TestCommandPanicBecomesError(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.check = app.LoginTokenCheck{Supported: true}
	f.mint = func(*matrix.AuthData) (*matrix.GetLoginTokenResponse, error) { panic("boom") }
	m, _ := testModel(t, f)
	msgs := press(m, "t")
	if m.fatal == nil || !isQuit(msgs) {
		t.Fatal("a panic in a command ends the program with an error")
	}
}

func TestNoColorHasNoColour(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
	m := newModel(t.Context(), f, RunOptions{NoColor: true, Now: func() time.Time { return t0 }})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	views := []string{content(m)}
	press(m, "?", "enter")
	views = append(views, content(m))
	press(m, "esc", "t")
	views = append(views, content(m))
	typeText(m, "right")
	press(m, "enter")
	views = append(views, content(m))
	for _, v := range views {
		if c := colourParam(v); c != "" {
			t.Fatalf("colour parameter %s in NO_COLOR view: %q", c, v)
		}
	}
	// The same screens with colour do use colour, so the check can fail.
	m2, _ := testModel(t, f)
	if colourParam(content(m2)) == "" {
		t.Fatal("colour view without colour")
	}
}

var sgrRE = regexp.MustCompile(`\x1b\[([0-9;:]*)m`)

// colourParam returns the first SGR parameter that sets a colour.
func colourParam(v string) string {
	for _, mm := range sgrRE.FindAllStringSubmatch(v, -1) {
		for _, p := range strings.FieldsFunc(mm[1], func(r rune) bool { return r == ';' || r == ':' }) {
			n, err := strconv.Atoi(p)
			if err != nil {
				continue
			}
			if (n >= 30 && n <= 38) || (n >= 40 && n <= 48) || (n >= 90 && n <= 97) || (n >= 100 && n <= 107) {
				return p
			}
		}
	}
	return ""
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;:?]*[A-Za-z]`)

func stripANSI(s string) string { return ansiRE.ReplaceAllString(s, "") }

// runProgram starts the real program on pipes, as Run does on a terminal.
func runProgram(t *testing.T, ctx context.Context, f *fakeBackend) (*io.PipeWriter, chan error) {
	t.Helper()
	in, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, f, RunOptions{NoColor: true, Now: func() time.Time { return t0 }},
			tea.WithInput(in), tea.WithOutput(io.Discard), tea.WithWindowSize(80, 24), tea.WithoutSignals())
	}()
	return w, done
}

func waitRun(t *testing.T, done chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("program did not stop")
		return nil
	}
}

func TestRunQuitsOnQ(t *testing.T) {
	w, done := runProgram(t, t.Context(), newFake())
	time.Sleep(100 * time.Millisecond)
	if _, err := w.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	if err := waitRun(t, done); err != nil {
		t.Fatalf("q: %v", err)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	_, done := runProgram(t, ctx, newFake())
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := waitRun(t, done); err != nil {
		t.Fatalf("cancel: %v", err)
	}
}

func TestRunReturnsErrorOnPanic(t *testing.T) {
	f := newFake()
	f.panicStore = true
	_, done := runProgram(t, t.Context(), f)
	err := waitRun(t, done)
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunWithoutBackend(t *testing.T) {
	if err := Run(t.Context(), nil, RunOptions{}); err == nil {
		t.Fatal("nil backend must fail")
	}
}

type storeErr struct{}

func (storeErr) Error() string          { return "keyring is locked" }
func (storeErr) StoreUnavailable() bool { return true }

func (storeErr) KeyringIssue() session.KeyringIssue { return session.KeyringLocked }

func TestSignInAgainSignedOutGetsNewDevice(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.accounts[1].Status.State = session.StateSignedOut
	m, _ := testModel(t, f)
	press(m, "j", "s")
	mustNotContain(t, content(m), "is kept")
	typeText(m, "pw")
	press(m, "enter")
	if len(f.logins) != 1 || f.logins[0].DeviceID != "" {
		t.Fatalf("a signed-out device is gone; a new one is made: %+v", f.logins)
	}
}

func TestDetailsShowsErrors(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.infoErr = &matrix.TransportError{Endpoint: "GET /versions", Err: errors.New("connection refused")}
	f.tokenErr = storeErr{}
	m, _ := testModel(t, f)
	press(m, "enter", "v")
	mustContain(t, content(m), "cannot reach the server", "keyring locked")
	mustNotContain(t, content(m), f.token.Reveal())
}

func TestRefreshFailureShowsStatus(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.refreshErr = &matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", RetryAfter: 3 * time.Second}
	m, _ := testModel(t, f)
	press(m, "r")
	mustContain(t, content(m), "refresh of @alice:example.org failed: rate limited, try again in 3s")
}

func TestLoginKeyringProblem(t *testing.T) {
	f := newFake()
	f.login = func(app.LoginParams) (app.Account, error) { return app.Account{}, storeErr{} }
	m, _ := testModel(t, f)
	fillForm(m, "example.org", "alice", "pw")
	press(m, "enter")
	if m.login.errKind != errKeyring {
		t.Fatalf("kind %v", m.login.errKind)
	}
	mustContain(t, content(m), "keyring is locked or unavailable")
}

func TestModalEmptyPasswordAndPaste(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
	m, _ := testModel(t, f)
	press(m, "t", "enter")
	if len(f.mintAuth) != 1 || !strings.Contains(m.uia().errText, "Enter your password") {
		t.Fatal("an empty password is not sent")
	}
	_, cmd := m.Update(tea.PasteMsg{Content: "right"})
	drain(m, cmd)
	press(m, "enter")
	if m.token.phase != tokenShown {
		t.Fatalf("pasted password works: phase %v", m.token.phase)
	}
}

// TestStartupInBackground: the first frame lists accounts still loading; the
// start-up work runs in a command, and its answer fills the rows in and shows
// its notes.
func TestStartupInBackground(t *testing.T) {
	f := newFake()
	loaded := sampleAccounts()
	for _, a := range loaded {
		a.Status = session.Status{Account: a.Status.Account, State: session.StateLoading}
		f.accounts = append(f.accounts, a)
	}
	release := make(chan struct{})
	startup := func(context.Context) ([]string, error) {
		<-release
		f.mu.Lock()
		f.accounts = loaded
		f.mu.Unlock()
		return []string{"finished removing an account"}, nil
	}
	m := newModel(context.Background(), f, RunOptions{Hostname: "testhost", Now: clocktest.New(t0).Now, Startup: startup})
	m.tick = func() tea.Cmd { return nil }
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	mustContain(t, content(m), loaded[0].UserID, "loading")

	init := m.Init()
	close(release)
	drain(m, init)
	mustNotContain(t, content(m), "loading")
	mustContain(t, content(m), "finished removing an account")
}
