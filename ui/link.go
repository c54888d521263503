package ui

import (
	"context"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"rsc.io/qr"

	"mxauth/ui/qrcode"
)

// linkOpenedMsg is the browser opener's answer for a page a screen opened.
type linkOpenedMsg struct {
	addr, what  string
	title, text string // for the dialog shown when no browser opened
	err         error
	onClose     func() tea.Cmd
}

// linkDialog shows a page of the server's (its account page) to open
// elsewhere: the address whole, and a QR code for a phone when it fits.
type linkDialog struct {
	*common
	title, text string
	addr        string
	qr          *qr.Code
	copy        copyState
	onClose     func() tea.Cmd // may be nil
}

func newLinkDialog(c *common, title, text, addr string, onClose func() tea.Cmd) *linkDialog {
	d := &linkDialog{common: c, title: title, text: text, addr: addr, onClose: onClose}
	d.qr, _ = qr.Encode(addr, qr.L) // nil when too long: the address alone is shown
	return d
}

// openPage opens addr in the browser when this computer has one, saying so
// in the status line; without one (or when it fails) the dialog shows it.
func (c *common) openPage(addr, what, title, text string, onClose func() tea.Cmd) tea.Cmd {
	open := c.openURL
	if open == nil {
		c.dialog = newLinkDialog(c, title, text, addr, onClose)
		return nil
	}
	return c.call(func(context.Context) tea.Msg {
		return linkOpenedMsg{addr: addr, what: what, title: title, text: text, err: open(addr), onClose: onClose}
	})
}

// linkOpened follows the opener's answer: the status line says where to look,
// or the dialog shows the page when no browser could be opened.
func (c *common) linkOpened(msg linkOpenedMsg) tea.Cmd {
	if msg.err != nil {
		c.dialog = newLinkDialog(c, msg.title, "Could not open a browser ("+clean(msg.err.Error())+"). "+msg.text, msg.addr, msg.onClose)
		return nil
	}
	c.setStatus("opened "+msg.what+" in your browser", true)
	if msg.onClose != nil {
		return msg.onClose()
	}
	return nil
}

func (d *linkDialog) Busy() bool { return false }

func (d *linkDialog) HelpMode() helpMode { return helpLink }

func (d *linkDialog) SetSize(int, int) {}

func (d *linkDialog) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.ClipboardMsg:
		if d.copy == copySent && msg.Content == d.addr {
			d.copy = copyConfirmed
		}
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, d.keys.Close):
			d.dialog = nil
			if d.onClose != nil {
				return d.onClose()
			}
		case key.Matches(msg, d.keys.CopyURL):
			d.copy = copySent
			return copyCmd(d.addr)
		case key.Matches(msg, d.keys.OpenPage) && d.openURL != nil:
			d.dialog = nil
			return d.openPage(d.addr, "the page", d.title, d.text, d.onClose)
		}
	}
	return nil
}

func (d *linkDialog) View() string {
	s := d.styles
	textW := min(52, max(30, d.width-10))
	var qrText string
	qrW, qrH := 0, 0
	if d.qr != nil {
		qrText, qrW = qrcode.Draw(d.qr, s.QR, qrcode.InkLight(s.NoColor, d.darkBG))
		qrH = lipgloss.Height(qrText)
	}
	// Beside the text when both fit in the box; otherwise the address alone.
	showQR := d.qr != nil && qrW+3+30+6 <= d.width && qrH+2 <= d.height
	if showQR {
		textW = min(textW, d.width-qrW-3-6)
	}
	lines := []string{s.Header.Render(d.title), "", wrap(d.text, textW), "", s.Value.Render(urlLines(d.addr, textW)), ""}
	switch d.copy {
	case copyConfirmed:
		lines = append(lines, s.OK.Render(wrap("Address "+copyNotes[copyConfirmed]+".", textW)))
	case copySent:
		lines = append(lines, s.Warn.Render(wrap("Address "+copyNotes[copySent]+".", textW)))
	}
	hint := "c copy address · esc close"
	if d.openURL != nil {
		hint = "c copy address · o open in browser · esc close"
	}
	if showQR {
		hint = "Or scan the code with your phone. " + hint
	} else if d.qr != nil {
		hint = "Make the terminal larger to see a QR code. " + hint
	}
	lines = append(lines, s.Muted.Render(wrap(hint, textW)))
	body := strings.Join(lines, "\n")
	if showQR {
		body = lipgloss.JoinHorizontal(lipgloss.Top, qrText, "   ", body)
	}
	return s.Modal.Render(body)
}
