package ui

import (
	"context"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

type (
	refreshDoneMsg struct {
		userID string
		err    error
	}
	signOutDoneMsg struct {
		userID string
		err    error
	}
)

type confirmKind int

const (
	confirmSignOut confirmKind = iota
	confirmDeleteDevice
)

// confirmDialog asks before anything that cannot be undone.
type confirmDialog struct {
	kind     confirmKind
	userID   string
	deviceID string
	label    string
	busy     bool
	err      string
}

func (m *model) homeKey(k tea.KeyPressMsg) tea.Cmd {
	km := m.keys
	if m.filtering {
		return m.filterKey(k)
	}
	if m.pageKey(k) {
		return nil
	}
	switch {
	case key.Matches(k, km.Quit):
		return tea.Quit
	case key.Matches(k, km.Help):
		m.showHelp = !m.showHelp
	case key.Matches(k, km.Up):
		if m.cursor > 0 {
			m.cursor--
		}
	case key.Matches(k, km.Down):
		if m.cursor < len(m.shown())-1 {
			m.cursor++
		}
	case key.Matches(k, km.Add):
		return m.openLogin(nil)
	case key.Matches(k, km.Filter) && len(m.accounts) > 0:
		m.filtering = true
		return m.filter.Focus()
	case key.Matches(k, km.Back) && m.filter.Value() != "":
		m.clearFilter()
		return nil
	}
	a, ok := m.selected()
	if !ok {
		return nil
	}
	switch {
	case key.Matches(k, km.Details):
		return m.openDetails(a.UserID)
	case key.Matches(k, km.Token):
		return m.openToken(a)
	case key.Matches(k, km.SignIn):
		if canSignInAgain(a.Status.State) {
			return m.openLogin(&a)
		}
		m.setStatus(a.UserID+" is signed in; nothing to do", true)
	case key.Matches(k, km.Refresh):
		if cmd := m.retryKeyring(); cmd != nil {
			return cmd
		}
		return m.refreshCmd(a.UserID)
	case key.Matches(k, km.SignOut):
		m.confirm = &confirmDialog{kind: confirmSignOut, userID: a.UserID}
	}
	return nil
}

func (m *model) refreshCmd(userID string) tea.Cmd {
	m.setStatus("refreshing "+userID+"…", true)
	b := m.b
	return m.call(func(ctx context.Context) tea.Msg {
		return refreshDoneMsg{userID, b.Refresh(ctx, userID)}
	})
}

func (m *model) confirmKey(k tea.KeyPressMsg) tea.Cmd {
	c := m.confirm
	if c.busy {
		return nil
	}
	switch {
	case key.Matches(k, m.keys.Yes):
		c.busy, c.err = true, ""
		b, userID := m.b, c.userID
		switch c.kind {
		case confirmSignOut:
			return m.call(func(ctx context.Context) tea.Msg {
				return signOutDoneMsg{userID, b.SignOut(ctx, userID)}
			})
		case confirmDeleteDevice:
			return m.deleteDeviceCmd(c.userID, c.deviceID, nil)
		}
	case key.Matches(k, m.keys.No):
		m.confirm = nil
	}
	return nil
}

func (m *model) signOutDone(msg signOutDoneMsg) tea.Cmd {
	m.reloadAccounts()
	if m.confirm != nil && m.confirm.userID == msg.userID {
		if msg.err != nil {
			m.confirm.busy = false
			m.confirm.err = describe(msg.err)
			return nil
		}
		m.confirm = nil
	}
	if msg.err != nil {
		m.setStatus("sign-out of "+msg.userID+" failed: "+describe(msg.err), false)
		return nil
	}
	m.setStatus("signed out "+msg.userID, true)
	if m.screen == screenDetails && m.details.userID == msg.userID {
		m.screen = screenHome
	}
	return nil
}

func (m *model) confirmView() string {
	c := m.confirm
	s := m.styles
	var title, body string
	switch c.kind {
	case confirmSignOut:
		title = "Sign out " + clean(c.userID) + "?"
		body = "This ends the session on the server and removes\nits tokens from the keyring."
	case confirmDeleteDevice:
		title = "Delete device " + clean(c.deviceID) + "?"
		body = "It is signed out everywhere it is used." + "\n" + clean(c.label)
	}
	lines := []string{s.Header.Render(title), "", body, ""}
	switch {
	case c.busy:
		lines = append(lines, m.spin.View()+" working…")
	case c.err != "":
		lines = append(lines, s.Error.Render(wrap(c.err, 48)), "", "y retry · n/esc cancel")
	default:
		lines = append(lines, s.Header.Render("y")+" yes · "+s.Header.Render("n/esc")+" no")
	}
	return s.Modal.Render(strings.Join(lines, "\n"))
}

func (m *model) homeView(w, h int) string {
	s := m.styles
	if len(m.accounts) == 0 {
		m.pageRows = 0
		msg := s.Header.Render("No accounts yet.") + "\n\n" +
			"Press " + s.Selected.Render("a") + " to add your first Matrix account.\n" +
			s.Muted.Render("mxauth keeps its tokens fresh and can mint login tokens\nto sign in new devices.")
		return lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, msg)
	}
	now := m.now()
	var rows []string
	accounts := m.shown()
	if m.filtering || m.filter.Value() != "" {
		line := " " + m.filter.View() + s.Muted.Render("  "+itoa(len(accounts))+" of "+itoa(len(m.accounts)))
		rows = append(rows, truncate(line, w))
		h--
	}
	const rowH = 3
	visible := max(1, h/rowH)
	if len(accounts) > visible {
		visible = max(1, (h-1)/rowH) // keep a line for the position indicator
	}
	m.pageRows = visible
	start := 0
	if m.cursor >= visible {
		start = m.cursor - visible + 1
	}
	for i := start; i < len(accounts) && i < start+visible; i++ {
		a := accounts[i]
		marker := "  "
		if i == m.cursor {
			marker = s.Selected.Render("▸ ")
		}
		name := s.UserID.Render(clean(a.UserID))
		if a.DisplayName != "" {
			name += s.Muted.Render(" (" + clean(a.DisplayName) + ")")
		}
		if a.IsDefault {
			name += s.Muted.Render(" · default")
		}
		state, st := m.stateText(a.Status, now)
		info := s.Label.Render("device ") + clean(a.DeviceID) + s.Label.Render(" · ") + clean(a.Homeserver)
		rows = append(rows,
			truncate(" "+marker+name, w),
			truncate("     "+info, w),
			"     "+st.Render(fitWords(state, w-5)))
	}
	if len(accounts) > visible {
		rows = append(rows, s.Muted.Render("     "+strconv.Itoa(m.cursor+1)+"/"+strconv.Itoa(len(accounts))+" · pgup/pgdn home/end move by page · / filters"))
	}
	return strings.Join(rows, "\n")
}

// wrap word-wraps plain text to w cells.
func wrap(s string, w int) string {
	return lipgloss.NewStyle().Width(w).Render(s)
}
