package ui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

// helpBar is the last line of the screen: the short help.
func helpBar(m *model) string {
	lines := strings.Split(stripANSI(content(m)), "\n")
	return lines[len(lines)-1]
}

func TestHelpBarFollowsSelectedAccount(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	bar := helpBar(m) // alice: active
	mustContain(t, bar, "r refresh", "t token", "? help", "q quit")
	mustNotContain(t, bar, "s sign in")
	press(m, "down") // bob needs sign-in
	bar = helpBar(m)
	mustContain(t, bar, "s sign in again", "? help", "q quit")
	mustNotContain(t, bar, "t token", "r refresh")
	press(m, "enter") // details of bob
	bar = helpBar(m)
	mustContain(t, bar, "s sign in again", "esc back")
	mustNotContain(t, bar, "v reveal")
	press(m, "s")
	if m.screen != screenLogin || m.login.reauth == nil || m.login.reauth.UserID != "@bob:example.org" {
		t.Fatal("s on details signs the account in again")
	}
}

func TestHelpBarNoCopyAfterExpiry(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 60000), nil })
	m, clk := testModel(t, f)
	press(m, "t")
	typeText(m, "right")
	press(m, "enter")
	mustContain(t, helpBar(m), "c copy", "n new token")
	tick(m, clk, 61*time.Second)
	bar := helpBar(m)
	mustNotContain(t, bar, "c copy")
	mustContain(t, bar, "n new token", "esc back")
}

func TestTokenFromDetailsReturnsToDetails(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	goldenDevices(f)
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 60000), nil })
	m, _ := testModel(t, f)
	press(m, "enter", "t")
	if m.screen != screenToken {
		t.Fatal("t on details opens the token view")
	}
	press(m, "esc") // cancels the password modal
	press(m, "esc")
	if m.screen != screenDetails {
		t.Fatalf("esc from a token view opened from details goes to screen %d", m.screen)
	}
	press(m, "esc")
	if m.screen != screenHome {
		t.Fatal("esc from details goes home")
	}
	press(m, "t", "esc", "esc")
	if m.screen != screenHome {
		t.Fatal("esc from a token view opened from home goes home")
	}
}

func TestDetailsRefreshReloadsDevices(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	goldenDevices(f)
	m, _ := testModel(t, f)
	press(m, "enter")
	mustNotContain(t, content(m), "Element Web")
	f.mu.Lock()
	f.devices = append(f.devices, matrix.Device{DeviceID: "WEB", DisplayName: "Element Web"})
	f.mu.Unlock()
	press(m, "r")
	mustContain(t, content(m), "Element Web", "Devices (3)")
}

// cliHint is a backend error that names a command-line fix, as the CLI's are.
type cliHint struct{}

func (cliHint) Error() string {
	return "@alice:example.org needs to sign in again: mxauth login --user @alice:example.org"
}
func (cliHint) Is(t error) bool { return t == session.ErrNeedsSignIn }

func TestHintsNameTUIKeys(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.refreshErr = cliHint{}
	m, _ := testModel(t, f)
	press(m, "r")
	v := stripANSI(content(m))
	mustContain(t, v, "press s")
	mustNotContain(t, v, "mxauth login")
	if !errors.Is(cliHint{}, session.ErrNeedsSignIn) {
		t.Fatal("test error must match")
	}
}
