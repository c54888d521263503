package ui

import (
	"errors"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

const accountPage = "https://auth.example.org/account/"

// oauthAccounts: dora signed in through OAuth on a server that also takes
// passwords, erin with a password on a legacy server.
func oauthAccounts() []app.Account {
	return []app.Account{
		{UserID: "@dora:example.org", DeviceID: "DORADEV123", Homeserver: "https://matrix.example.org",
			Kind: matrix.AuthOAuthPasswordCompat, OAuth: true, AccountURL: accountPage,
			Status: session.Status{State: session.StateActive, ExpiresAt: t0.Add(4 * time.Minute), HasRefreshToken: true}},
		{UserID: "@erin:example.org", DeviceID: "ERINDEV", Homeserver: "https://legacy.example.org", Kind: matrix.AuthLegacy,
			Status: session.Status{State: session.StateNonExpiring}},
	}
}

func TestDetailsSayHowTheAccountSignedIn(t *testing.T) {
	f := newFake()
	f.accounts = oauthAccounts()
	m, _ := testModel(t, f)
	press(m, "enter")
	v := content(m)
	mustContain(t, v, "Sign-in", "OAuth 2.0 (the server also takes passwords)")
	mustContain(t, helpBar(m), "o account page")
	press(m, "esc", "down", "enter")
	mustContain(t, content(m), "password (legacy server)")
	mustNotContain(t, helpBar(m), "o account page")
	press(m, "o")
	if m.dialog != nil {
		t.Fatal("an account without an account page opens none")
	}
}

func TestAccountPageOpensInTheBrowserOrShowsItsQRCode(t *testing.T) {
	f := newFake()
	f.accounts = oauthAccounts()
	m, _ := testModel(t, f)
	opened := &openedLog{}
	m.openURL = opened.open
	press(m, "enter", "o")
	if got := opened.list(); len(got) != 1 || got[0] != accountPage {
		t.Fatalf("opened %v", got)
	}
	mustContain(t, content(m), "opened the account page of @dora:example.org in your browser")

	// No browser: the page is shown with a QR code for a phone.
	m.openURL = nil
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	press(m, "o")
	if _, ok := m.dialog.(*linkDialog); !ok {
		t.Fatalf("dialog %T", m.dialog)
	}
	v := content(m)
	mustContain(t, v, "Account page", accountPage, "scan the code", "c copy address")
	if !hasQR(v) {
		t.Fatalf("no QR code:\n%s", v)
	}
	press(m, "c")
	mustContain(t, content(m), "sent to the terminal's clipboard")
	press(m, "esc")
	if m.dialog != nil || m.screen != screenDetails {
		t.Fatal("esc closes the page and stays on the details")
	}

	// A browser that fails to start: the page is shown, with why.
	opened.err = errors.New("xdg-open failed")
	m.openURL = opened.open
	press(m, "o")
	mustContain(t, content(m), "Could not open a browser (xdg-open failed)", accountPage)
}

func TestDeleteDeviceOfOAuthAccountGoesToTheAccountPage(t *testing.T) {
	f := newFake()
	f.accounts = oauthAccounts()
	f.devices = []matrix.Device{{DeviceID: "DORADEV123", DisplayName: "mxauth"}, {DeviceID: "PHONE", DisplayName: "Element X"}}
	page := accountPage + "?action=org.matrix.device_delete&device_id=PHONE"
	f.deleteDevice = func(*matrix.AuthData) error {
		return &app.AccountPageError{URL: page, Action: matrix.AccountActionDeviceDelete, DeviceID: "PHONE"}
	}
	m, _ := testModel(t, f)
	m.openURL = nil
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	press(m, "enter", "down", "d")
	if _, ok := m.dialog.(*linkDialog); !ok {
		t.Fatalf("d on a device of an OAuth account shows the account page, dialog %T", m.dialog)
	}
	if len(f.deleteAuths) != 1 || f.deleteAuths[0] != nil {
		t.Fatalf("delete calls %v: the service names the page, no password is asked", f.deleteAuths)
	}
	if v := content(m); !strings.Contains(stripANSI(v), "Open it to sign out device") || !strings.Contains(stripANSI(v), "device_delete&device_id=PHONE") {
		t.Fatalf("the dialog does not name the device and its page:\n%s", content(m))
	}
	before := f.deviceLists
	press(m, "esc")
	if f.deviceLists != before+1 {
		t.Fatal("the devices are listed again once the page is closed")
	}
}

func TestSignOutOfOAuthAccountSaysItRevokes(t *testing.T) {
	f := newFake()
	f.accounts = oauthAccounts()
	m, _ := testModel(t, f)
	press(m, "x")
	mustContain(t, content(m), "revokes the session's tokens")
	press(m, "esc", "down", "x")
	mustNotContain(t, content(m), "revokes")
	mustContain(t, content(m), "ends the session on the server")
}

func TestLoginTokenViewOnServerWithoutGetToken(t *testing.T) {
	f := newFake()
	f.accounts = oauthAccounts()
	list := accountPage + "?action=org.matrix.devices_list"
	f.check = app.LoginTokenCheck{Reason: "this server delegates sign-in to its authorization server, where login tokens do not exist", AccountURL: list}
	m, _ := testModel(t, f)
	m.openURL = nil
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	press(m, "t")
	v := content(m)
	mustContain(t, v, "cannot mint login tokens", "delegates sign-in", "Your account page:", list)
	if !hasQR(v) {
		t.Fatalf("no QR code of the account page:\n%s", v)
	}
	bar := helpBar(m)
	mustContain(t, bar, "c copy address")
	mustNotContain(t, bar, "o account page") // no browser here
	press(m, "c")
	mustContain(t, content(m), "sent to the terminal's clipboard")
	if f.mint != nil || len(f.mintAuth) != 0 {
		t.Fatal("no token is minted")
	}

	// Without the service's reason the screen names the way itself.
	f.check.Reason = ""
	press(m, "esc", "t")
	mustContain(t, content(m), "Sign it in with its own client", "Check or approve it on your account page", list)
	if len(f.mintAuth) != 0 {
		t.Fatal("no token is minted")
	}
}

func TestSignInAgainOfOAuthAccountUsesOAuth(t *testing.T) {
	f := newFake()
	f.accounts = oauthAccounts()
	f.accounts[0].Status = session.Status{State: session.StateNeedsSignIn}
	f.oauthStart = func(oauthParams) (*fakeSignIn, error) { return nil, errors.New("stop here") }
	m, _ := testModel(t, f)
	press(m, "s")
	if m.screen != screenLogin || !m.login.oauthMode() {
		t.Fatalf("s: screen %d, oauth mode %v", m.screen, m.login.oauthMode())
	}
	mustContain(t, content(m), "not needed")
	press(m, "enter")
	want := oauthParams{Homeserver: "https://matrix.example.org", User: "@dora:example.org", DeviceName: "mxauth on testhost"}
	if len(f.oauthParams) != 1 || f.oauthParams[0] != want || len(f.logins) != 0 || len(f.probes) != 0 {
		t.Fatalf("sign-ins %+v (want %+v), password logins %d, probes %v", f.oauthParams, want, len(f.logins), f.probes)
	}
}

// hasQR says whether a view shows a QR code: the top of a finder pattern,
// drawn in ink on the white of a colour terminal.
func hasQR(v string) bool { return strings.Count(stripANSI(v), "█▀▀▀▀▀█") >= 2 }
