package ui

import (
	"context"
	"testing"

	"mxauth/matrix"
	"mxauth/ui/app"
)

// timeoutErr is what a discovery that ran out of time returns.
func timeoutErr() error {
	return &matrix.DiscoveryError{Outcome: matrix.DiscoveryFailPrompt, Reason: "cannot fetch discovery information",
		Err: &matrix.TransportError{Endpoint: "GET /.well-known/matrix/client", Err: context.DeadlineExceeded}}
}

// A discovery that fails while the user has moved on leaves the focus where
// the user put it: what is typed next (the password) stays in its field and
// is never shown.
func TestAddAccountLateDiscoveryFailureKeepsFocus(t *testing.T) {
	f := newFake()
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "slow.example")
	_, cmd := m.Update(kp("tab")) // discovery in flight
	if cmd == nil || !m.login.resolving {
		t.Fatal("tab out of a new homeserver starts discovery")
	}
	typeText(m, "alice")
	press(m, "tab")
	typeText(m, "hunt")
	m.Update(resolveDoneMsg{seq: m.login.resolveSeq, input: "slow.example", err: timeoutErr()})
	if m.login.focus != fieldPassword {
		t.Fatalf("focus moved to field %d without the user", m.login.focus)
	}
	typeText(m, "er2")
	if got := m.login.inputs[fieldPassword].Value(); got != "hunter2" {
		t.Fatalf("password field = %q", got)
	}
	if got := m.login.inputs[fieldHomeserver].Value(); got != "slow.example" {
		t.Fatalf("homeserver field = %q", got)
	}
	view := content(m)
	mustNotContain(t, view, "hunter2", "hunt", "er2")
	mustContain(t, view, "timed out")
}

// An error about a field goes once the user changes that field.
func TestAddAccountErrorClearsWhenFieldChanges(t *testing.T) {
	f := newFake()
	f.resolve = func(string) (string, error) { return "", timeoutErr() }
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "slow.example")
	press(m, "tab")
	mustContain(t, content(m), "timed out")
	press(m, "shift+tab")
	mustContain(t, content(m), "timed out") // moving alone changes nothing
	typeText(m, "x")
	if m.login.errText != "" {
		t.Fatalf("stale error kept after the field changed: %q", m.login.errText)
	}
	mustNotContain(t, content(m), "timed out")
}

// A wrong password's error goes once the password is edited, not before.
func TestAddAccountWrongPasswordClearsOnEdit(t *testing.T) {
	f := newFake()
	f.login = func(app.LoginParams) (app.Account, error) {
		return app.Account{}, &matrix.Error{Status: 403, ErrCode: "M_FORBIDDEN", Message: "Invalid password"}
	}
	m, _ := testModel(t, f)
	fillForm(m, "example.org", "alice", "wrong")
	press(m, "enter")
	mustContain(t, content(m), "Wrong user name or password")
	m.login.setFocus(fieldDevice)
	typeText(m, "x")
	mustContain(t, content(m), "Wrong user name or password")
	m.login.setFocus(fieldPassword)
	typeText(m, "r")
	mustNotContain(t, content(m), "Wrong user name or password")
}
