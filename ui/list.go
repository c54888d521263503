package ui

import (
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// sortAccounts puts accounts in user-ID order, so the list reads the same
// however and whenever they were added.
// Every tick checks; a list already in order (the usual case) is not sorted.
func sortAccounts(as []AccountView) {
	for i := 1; i < len(as); i++ {
		if as[i-1].UserID > as[i].UserID {
			slices.SortStableFunc(as, func(a, b AccountView) int { return strings.Compare(a.UserID, b.UserID) })
			return
		}
	}
}

// shown is what the accounts list shows: every account, or those matching
// the filter. The cursor counts in this list.
func (m *model) shown() []AccountView {
	q := strings.ToLower(strings.TrimSpace(m.filter.Value()))
	if q == "" {
		return m.accounts
	}
	var out []AccountView
	for _, a := range m.accounts {
		if matchesFilter(a, q) {
			out = append(out, a)
		}
	}
	return out
}

func matchesFilter(a AccountView, q string) bool {
	for _, s := range []string{a.UserID, a.DisplayName, a.Homeserver, a.DeviceID} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

func newFilterInput(st Styles) textinput.Model {
	in := textinput.New()
	in.Prompt = "/"
	in.Placeholder = "user, server or device"
	in.CharLimit = 64
	in.SetStyles(st.Input)
	in.SetVirtualCursor(true)
	in.SetWidth(30)
	return in
}

// selectUser puts the cursor on userID in the shown list, if it is there.
func (m *model) selectUser(userID string) {
	for i, a := range m.shown() {
		if a.UserID == userID {
			m.cursor = i
			return
		}
	}
}

// clampCursor keeps the cursor inside the shown list.
func (m *model) clampCursor() {
	n := len(m.shown())
	m.cursor = max(0, min(m.cursor, n-1))
}

// filterKey edits the filter: enter keeps it, esc drops it.
func (m *model) filterKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, m.keys.Back):
		m.clearFilter()
		return nil
	case key.Matches(k, m.keys.FilterDone):
		m.filtering = false
		m.filter.Blur()
		return nil
	}
	sel, _ := m.selected()
	var cmd tea.Cmd
	m.filter, cmd = m.filter.Update(k)
	m.cursor = 0
	m.selectUser(sel.UserID) // stay on the same account while it still matches
	return cmd
}

func (m *model) clearFilter() {
	sel, _ := m.selected()
	m.filtering = false
	m.filter.Reset()
	m.filter.Blur()
	m.selectUser(sel.UserID)
}

// pageKey moves the cursor by a page or to either end of the list.
func (m *model) pageKey(k tea.KeyPressMsg) bool {
	km, n, page := m.keys, len(m.shown()), max(1, m.pageRows)
	switch {
	case key.Matches(k, km.PageUp):
		m.cursor = max(0, m.cursor-page)
	case key.Matches(k, km.PageDown):
		m.cursor = max(0, min(n-1, m.cursor+page))
	case key.Matches(k, km.First):
		m.cursor = 0
	case key.Matches(k, km.Last):
		m.cursor = max(0, n-1)
	default:
		return false
	}
	return true
}
