package ui

import (
	"context"
	"strings"

	tea "charm.land/bubbletea/v2"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

// keyringIssue is the keyring problem the banner shows, if any: the first
// account the keyring failed for, else what the start-up check found.
func (c *common) keyringIssue() (session.KeyringIssue, bool) {
	for _, a := range c.accounts {
		if a.Status.State == session.StateStoreProblem {
			return a.Status.Keyring, true
		}
	}
	// Accounts that read fine show the keyring works again.
	if c.opt.Keyring != nil && !c.keyringRecovered && len(c.accounts) == 0 {
		return session.KeyringIssueOf(c.opt.Keyring), true
	}
	return 0, false
}

// keyringWord names the keyring's state in the header and in account rows.
func keyringWord(k session.KeyringIssue) string {
	switch k {
	case session.KeyringLocked:
		return "keyring locked"
	case session.KeyringUnavailable:
		return "keyring unavailable"
	case session.KeyringNoAnswer:
		return "keyring not answering"
	case session.KeyringLockBusy:
		return "account lock busy"
	}
	return "keyring error"
}

// keyringAdvice is the banner: what to do first, then what is wrong.
func (c *common) keyringAdvice(k session.KeyringIssue) string {
	retry := "then press r"
	if len(c.accounts) == 0 {
		retry = "then restart mxauth"
	}
	switch k {
	case session.KeyringLocked:
		return "Keyring locked: unlock it, " + retry + ". Until then tokens cannot be read or saved."
	case session.KeyringUnavailable:
		return "Keyring unavailable: start gnome-keyring-daemon (or KeePassXC's Secret Service), " + retry + ". Nothing can be read or saved until then."
	case session.KeyringNoAnswer:
		return "Keyring not answering: unlock it if your desktop asks, " + retry + "."
	case session.KeyringLockBusy:
		return "Another mxauth process holds an account's lock: if one is stopped (Ctrl+Z), resume or end it, then press r."
	}
	return "Keyring error: press r to try again; the account's details say more."
}

// keyringBanner renders the banner across the whole width, wrapped at words.
func (c *common) keyringBanner() string {
	k, ok := c.keyringIssue()
	if !ok {
		return ""
	}
	return c.styles.Alert.Width(c.width).Render(c.keyringAdvice(k))
}

// retryKeyring reloads every account the keyring failed for; the refresh
// reads the tokens again first.
func (c *common) retryKeyring() tea.Cmd {
	var cmds []tea.Cmd
	b := c.b
	for _, a := range c.accounts {
		if a.Status.State != session.StateStoreProblem {
			continue
		}
		userID := a.UserID
		cmds = append(cmds, c.call(func(ctx context.Context) tea.Msg {
			return refreshDoneMsg{userID, b.Refresh(ctx, userID)}
		}))
	}
	if len(cmds) == 0 {
		return nil
	}
	c.setStatus("reading the keyring again…", true)
	return tea.Batch(cmds...)
}

// problemLines wraps an account's problem text at words, for the details
// screen, so nothing is cut mid-word.
func problemLines(text string, w int) []string {
	text = strings.Join(strings.Fields(matrix.Sanitize(text)), " ")
	return strings.Split(wrap(cutAtWord(text, 400), max(20, w)), "\n")
}
