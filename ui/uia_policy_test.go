package ui

import (
	"testing"
	"time"

	"mxauth/matrix"
)

// TestLoginTokenPasswordTriesBounded: the password dialog follows the same
// policy as the command line: the third wrong password ends the request, and
// n starts a new one.
func TestLoginTokenPasswordTriesBounded(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
	m, _ := testModel(t, f)
	press(m, "t")
	for try := 1; try <= 2; try++ {
		typeText(m, "wrong")
		press(m, "enter")
		if m.uia() == nil {
			t.Fatalf("wrong password %d closed the dialog", try)
		}
	}
	typeText(m, "wrong")
	press(m, "enter")
	if m.uia() != nil || m.token.phase != tokenFailed {
		t.Fatalf("third wrong password: dialog open %v, phase %v", m.uia() != nil, m.token.phase)
	}
	mustContain(t, content(m), "Could not mint a token: wrong password", "n tries again")
	press(m, "n")
	if m.uia() == nil {
		t.Fatal("n asks for the password again")
	}
	typeText(m, "right")
	press(m, "enter")
	if m.token.phase != tokenShown {
		t.Fatalf("phase %v after the right password", m.token.phase)
	}
}

// TestLoginTokenLongRateLimitEnds: a rate limit beyond the policy's wait ends
// the request with the wait named, rather than counting down for ever.
func TestLoginTokenLongRateLimitEnds(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) {
		return nil, &matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", RetryAfter: 10 * time.Minute}
	})
	m, _ := testModel(t, f)
	press(m, "t")
	typeText(m, "right")
	press(m, "enter")
	if m.token.phase != tokenFailed {
		t.Fatalf("phase %v", m.token.phase)
	}
	mustContain(t, content(m), "rate limited, try again in 10m 00s")
}

// TestDeleteDevicePasswordTriesBounded: deleting a device follows the same
// policy: the third wrong password ends it and says so.
func TestDeleteDevicePasswordTriesBounded(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.devices = []matrix.Device{{DeviceID: "ALICEDEV"}, {DeviceID: "PHONE", DisplayName: "Phone"}}
	f.deleteDevice = func(auth *matrix.AuthData) error {
		return passwordChallenge("DS1", auth != nil)
	}
	m, _ := testModel(t, f)
	press(m, "enter", "j", "d", "y")
	for try := 1; try <= 3; try++ {
		if m.uia() == nil {
			t.Fatalf("before password %d: the dialog is closed", try)
		}
		typeText(m, "wrong")
		press(m, "enter")
	}
	if m.uia() != nil {
		t.Fatal("the third wrong password leaves the dialog open")
	}
	mustContain(t, content(m), "Could not delete the device: wrong password", "Devices (2)")
	if len(f.deleteAuths) != 4 || f.deleteAuths[3].Session != "DS1" {
		t.Fatalf("auths %+v", f.deleteAuths)
	}
}
