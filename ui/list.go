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
func (h *homeScreen) shown() []AccountView {
	q := strings.ToLower(strings.TrimSpace(h.filter.Value()))
	if q == "" {
		return h.accounts
	}
	var out []AccountView
	for _, a := range h.accounts {
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

// selected is the account under the cursor, if the list shows any.
func (h *homeScreen) selected() (AccountView, bool) {
	shown := h.shown()
	if h.cursor < 0 || h.cursor >= len(shown) {
		return AccountView{}, false
	}
	return shown[h.cursor], true
}

// selectUser puts the cursor on userID in the shown list, if it is there.
func (h *homeScreen) selectUser(userID string) {
	for i, a := range h.shown() {
		if a.UserID == userID {
			h.cursor = i
			return
		}
	}
}

// accountsChanged follows a new accounts snapshot: the cursor stays on the
// account it was on when others come or go.
func (h *homeScreen) accountsChanged(userID string, wasSelected bool) {
	if wasSelected {
		h.selectUser(userID)
	}
	h.clampCursor()
}

// statusChanged follows a change of one account's status, in place.
func (h *homeScreen) statusChanged(int) {}

// reveal puts a newly signed-in account in view and selects it.
func (h *homeScreen) reveal(a AccountView) {
	if !matchesFilter(a, strings.ToLower(strings.TrimSpace(h.filter.Value()))) {
		h.clearFilter() // the new account must be in view
	}
	h.selectUser(a.UserID)
}

// clampCursor keeps the cursor inside the shown list.
func (h *homeScreen) clampCursor() {
	n := len(h.shown())
	h.cursor = max(0, min(h.cursor, n-1))
}

// filterKey edits the filter: enter keeps it, esc drops it.
func (h *homeScreen) filterKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, h.keys.FilterClear):
		h.clearFilter()
		return nil
	case key.Matches(k, h.keys.FilterDone):
		h.filtering = false
		h.filter.Blur()
		return nil
	}
	sel, _ := h.selected()
	var cmd tea.Cmd
	h.filter, cmd = h.filter.Update(k)
	h.cursor = 0
	h.selectUser(sel.UserID) // stay on the same account while it still matches
	return cmd
}

func (h *homeScreen) clearFilter() {
	sel, _ := h.selected()
	h.filtering = false
	h.filter.Reset()
	h.filter.Blur()
	h.selectUser(sel.UserID)
}

// pageKey moves the cursor by a page or to either end of the list.
func (h *homeScreen) pageKey(k tea.KeyPressMsg) bool {
	km, n, page := h.keys, len(h.shown()), max(1, h.pageRows)
	switch {
	case key.Matches(k, km.PageUp):
		h.cursor = max(0, h.cursor-page)
	case key.Matches(k, km.PageDown):
		h.cursor = max(0, min(n-1, h.cursor+page))
	case key.Matches(k, km.First):
		h.cursor = 0
	case key.Matches(k, km.Last):
		h.cursor = max(0, n-1)
	default:
		return false
	}
	return true
}
