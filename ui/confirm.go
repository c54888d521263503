package ui

import (
	"context"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

type confirmKind int

const (
	confirmSignOut confirmKind = iota
	confirmDeleteDevice
)

// confirmDialog asks before anything that cannot be undone.
type confirmDialog struct {
	*common
	kind     confirmKind
	userID   string
	deviceID string
	label    string
	busy     bool
	err      string
	onYes    func() tea.Cmd // starts the action; its answer ends the dialog
}

func newSignOutDialog(c *common, userID string) *confirmDialog {
	b := c.b
	return &confirmDialog{common: c, kind: confirmSignOut, userID: userID, onYes: func() tea.Cmd {
		return c.call(func(ctx context.Context) tea.Msg {
			return signOutDoneMsg{userID, b.SignOut(ctx, userID)}
		})
	}}
}

func newDeleteDeviceDialog(c *common, userID, deviceID, label string, onYes func() tea.Cmd) *confirmDialog {
	return &confirmDialog{common: c, kind: confirmDeleteDevice, userID: userID, deviceID: deviceID, label: label, onYes: onYes}
}

func (d *confirmDialog) Busy() bool { return d.busy }

func (d *confirmDialog) HelpMode() helpMode { return helpConfirm }

func (d *confirmDialog) SetSize(int, int) {}

func (d *confirmDialog) Update(msg tea.Msg) tea.Cmd {
	k, ok := msg.(tea.KeyPressMsg)
	if !ok || d.busy {
		return nil
	}
	switch {
	case key.Matches(k, d.keys.Yes):
		d.busy, d.err = true, ""
		return d.onYes()
	case key.Matches(k, d.keys.No):
		d.dialog = nil
	}
	return nil
}

// fail shows why the action did not happen; y tries again.
func (d *confirmDialog) fail(text string) {
	d.busy, d.err = false, text
}

func (d *confirmDialog) View() string {
	s := d.styles
	var title, body string
	switch d.kind {
	case confirmSignOut:
		title = "Sign out " + clean(d.userID) + "?"
		body = "This ends the session on the server and removes\nits tokens from the keyring."
		if a, ok := d.account(d.userID); ok && a.OAuth {
			body = "This revokes the session's tokens at the server's\nauthorization server and removes them from the keyring."
		}
	case confirmDeleteDevice:
		title = "Delete device " + clean(d.deviceID) + "?"
		body = "It is signed out everywhere it is used." + "\n" + clean(d.label)
	}
	lines := []string{s.Header.Render(title), "", body, ""}
	switch {
	case d.busy:
		lines = append(lines, d.spin.View()+" working…")
	case d.err != "":
		lines = append(lines, s.Error.Render(wrap(d.err, 48)), "", "y retry · n/esc cancel")
	default:
		lines = append(lines, s.Header.Render("y")+" yes · "+s.Header.Render("n/esc")+" no")
	}
	return s.Modal.Render(strings.Join(lines, "\n"))
}
