package ui

import (
	"testing"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// Every screen and dialog reads its keys from the one KeyMap: rebinding a key
// there moves the action, and the old key no longer does it.
func TestKeysComeFromTheKeyMap(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m, _ := testModel(t, f)
	m.keys.Submit = key.NewBinding(key.WithKeys("ctrl+s"), key.WithHelp("ctrl+s", "sign in"))
	m.keys.Next = key.NewBinding(key.WithKeys("ctrl+n"), key.WithHelp("ctrl+n", "next field"))
	m.keys.ForceQuit = key.NewBinding(key.WithKeys("ctrl+q"), key.WithHelp("ctrl+q", "quit"))

	press(m, "a")
	if m.screen != screenLogin || m.login.focus != fieldHomeserver {
		t.Fatalf("a should open the form on the homeserver field (screen %d, focus %d)", m.screen, m.login.focus)
	}
	press(m, "tab")
	if m.login.focus != fieldHomeserver {
		t.Fatalf("tab moved the focus to %d though Next is rebound", m.login.focus)
	}
	press(m, "enter")
	if m.login.errKind != errNone {
		t.Fatalf("enter submitted the form though Submit is rebound (%q)", m.login.errText)
	}
	_, cmd := m.Update(kpMod('n'))
	drain(m, cmd)
	if m.login.focus != fieldUser {
		t.Fatalf("ctrl+n should move to the next field, focus %d", m.login.focus)
	}
	_, cmd = m.Update(kpMod('s'))
	drain(m, cmd)
	if m.login.errKind != errValidation {
		t.Fatalf("ctrl+s should submit the form, error kind %v", m.login.errKind)
	}
	if isQuit(press(m, "ctrl+c")) {
		t.Fatal("ctrl+c quit though ForceQuit is rebound")
	}
	_, cmd = m.Update(kpMod('q'))
	if !isQuit(drain(m, cmd)) {
		t.Fatal("ctrl+q should quit")
	}
}

// kpMod is ctrl plus a letter, as the terminal reports it.
func kpMod(r rune) tea.KeyPressMsg { return tea.KeyPressMsg{Code: r, Mod: tea.ModCtrl} }
