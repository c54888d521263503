package ui

import (
	"strconv"
	"strings"

	"mxauth/ui/app"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/list"
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

// homeScreen is the accounts list: every account in user-ID order, a filter
// (/) and paging for long lists, on a bubbles list.
type homeScreen struct {
	*common
	w, h int
	list list.Model
}

func newHomeScreen(c *common) *homeScreen {
	h := &homeScreen{common: c, list: newAccountList(c)}
	return h
}

func (h *homeScreen) restyle() { h.list.FilterInput.SetStyles(h.styles.Input) }

func (h *homeScreen) Title() string { return "Accounts" }

func (h *homeScreen) Busy() bool { return false }

func (h *homeScreen) SetSize(w, ht int) {
	if w == h.w && ht == h.h {
		return // the frame sets the size on every draw
	}
	h.w, h.h = w, ht
	h.layout()
}

// filtering says the filter is being typed.
func (h *homeScreen) filtering() bool { return h.list.SettingFilter() }

// filterShown says the filter line is on screen: being typed or kept.
func (h *homeScreen) filterShown() bool { return h.filtering() || h.list.FilterValue() != "" }

// layout gives the list the rows left by the filter line and, when the
// accounts take more than one page, the position line.
func (h *homeScreen) layout() {
	rows := h.h
	if h.filterShown() {
		rows--
	}
	sel, ok := h.selected()
	h.list.SetSize(h.w, max(1, rows))
	if len(h.list.VisibleItems()) > h.list.Paginator.PerPage {
		h.list.SetSize(h.w, max(1, rows-1))
	}
	h.list.FilterInput.SetWidth(filterWidth) // the list sizes it to the whole line
	if ok {
		h.selectUser(sel.UserID)
	}
}

// pageRows is how many accounts one page holds: PgUp/PgDn move that far.
func (h *homeScreen) pageRows() int { return h.list.Paginator.PerPage }

func (h *homeScreen) HelpContext(km *KeyMap) {
	km.mode = helpHome
	switch {
	case h.filtering():
		km.mode = helpFilter
	case len(h.accounts) == 0:
		km.mode = helpHomeEmpty
	}
	a, ok := h.selected()
	km.needsSignIn = ok && canSignInAgain(a.Status.State)
	km.noTokens = ok && a.Status.TokensUnknown
	km.longList = len(h.list.VisibleItems()) > h.pageRows() || h.list.FilterValue() != ""
}

func (h *homeScreen) Update(msg tea.Msg) tea.Cmd {
	// The list's own filter answers (list.FilterMatchesMsg) are dropped:
	// this screen filters as it goes, so a late answer cannot undo a newer one.
	if k, ok := msg.(tea.KeyPressMsg); ok {
		return h.onKey(k)
	}
	return nil
}

func (h *homeScreen) onKey(k tea.KeyPressMsg) tea.Cmd {
	km := h.keys
	if h.filtering() {
		return h.filterKey(k)
	}
	switch {
	case key.Matches(k, km.Up, km.Down, km.First, km.Last):
		var cmd tea.Cmd
		h.list, cmd = h.list.Update(k)
		return cmd
	case key.Matches(k, km.PageUp):
		h.list.Select(max(0, h.list.Index()-h.pageRows()))
		return nil
	case key.Matches(k, km.PageDown):
		h.list.Select(max(0, min(len(h.list.VisibleItems())-1, h.list.Index()+h.pageRows())))
		return nil
	case key.Matches(k, km.Quit):
		return tea.Quit
	case key.Matches(k, km.Help):
		h.showHelp = !h.showHelp
	case key.Matches(k, km.Add):
		return h.nav.openLogin(nil)
	case key.Matches(k, km.Filter) && len(h.accounts) > 0:
		return h.startFilter()
	case key.Matches(k, km.FilterClear) && h.list.FilterValue() != "":
		h.clearFilter()
		return nil
	}
	a, ok := h.selected()
	if !ok {
		return nil
	}
	switch {
	case key.Matches(k, km.Details):
		return h.nav.openDetails(a.UserID)
	case key.Matches(k, km.Token):
		return h.nav.openToken(a)
	case key.Matches(k, km.SignIn):
		if canSignInAgain(a.Status.State) {
			return h.nav.openLogin(&a)
		}
		h.setStatus(a.UserID+" is signed in; nothing to do", true)
	case key.Matches(k, km.Refresh):
		if cmd := h.retryKeyring(); cmd != nil {
			return cmd
		}
		return h.refreshCmd(a.UserID)
	case key.Matches(k, km.SignOut):
		h.dialog = newSignOutDialog(h.common, a.UserID)
	}
	return nil
}

// startFilter opens the filter for typing, keeping what it already holds.
func (h *homeScreen) startFilter() tea.Cmd {
	h.applyFilter(h.list.FilterValue(), true)
	return h.list.FilterInput.Focus()
}

// filterKey edits the filter: enter keeps it, esc drops it.
func (h *homeScreen) filterKey(k tea.KeyPressMsg) tea.Cmd {
	switch {
	case key.Matches(k, h.keys.FilterClear):
		h.clearFilter()
		return nil
	case key.Matches(k, h.keys.FilterDone):
		if v := h.list.FilterValue(); v == "" {
			h.clearFilter()
		} else {
			h.applyFilter(v, false)
		}
		return nil
	}
	var cmd tea.Cmd
	before := h.list.FilterValue()
	h.list.FilterInput, cmd = h.list.FilterInput.Update(k)
	if v := h.list.FilterValue(); v != before {
		h.applyFilter(v, true)
	}
	return cmd
}

// applyFilter narrows the list to what matches v now, not in a later
// message, and keeps the cursor on its account while it still matches.
func (h *homeScreen) applyFilter(v string, typing bool) {
	sel, _ := h.selected()
	h.list.SetFilterText(v)
	if typing {
		h.list.SetFilterState(list.Filtering)
	} else {
		h.list.FilterInput.Blur()
	}
	h.layout()
	h.list.Select(0)
	h.selectUser(sel.UserID)
}

func (h *homeScreen) clearFilter() {
	sel, _ := h.selected()
	h.list.ResetFilter()
	h.list.FilterInput.Blur()
	h.layout()
	h.selectUser(sel.UserID)
}

// selected is the account under the cursor, if the list shows any.
func (h *homeScreen) selected() (app.Account, bool) {
	a, ok := h.list.SelectedItem().(*accountItem)
	if !ok || a == nil {
		return app.Account{}, false
	}
	return app.Account(*a), true
}

// shown is what the list shows: every account, or those the filter lets through.
func (h *homeScreen) shown() []app.Account {
	items := h.list.VisibleItems()
	out := make([]app.Account, len(items))
	for i, it := range items {
		out[i] = app.Account(*it.(*accountItem))
	}
	return out
}

// selectUser puts the cursor on userID in the shown list, if it is there.
func (h *homeScreen) selectUser(userID string) {
	for i, it := range h.list.VisibleItems() {
		if it.(*accountItem).UserID == userID {
			h.list.Select(i)
			return
		}
	}
}

// accountsChanged follows a new accounts snapshot: the cursor stays on the
// account it was on when others come or go.
func (h *homeScreen) accountsChanged(userID string, wasSelected bool) {
	items := make([]list.Item, len(h.accounts))
	for i := range h.accounts {
		items[i] = (*accountItem)(&h.accounts[i])
	}
	index, before := h.list.Index(), len(h.list.Items())
	h.list.SetItems(items)
	if v := h.list.FilterValue(); h.list.FilterState() != list.Unfiltered {
		h.applyFilter(v, h.filtering())
	} else if len(items) != before {
		h.layout() // the position line may come or go
	}
	h.list.Select(max(0, min(index, len(h.list.VisibleItems())-1)))
	if wasSelected {
		h.selectUser(userID)
	}
}

// reveal puts a newly signed-in account in view and selects it.
func (h *homeScreen) reveal(a app.Account) {
	if !matchesFilter(a, h.list.FilterValue()) {
		h.clearFilter() // the new account must be in view
	}
	h.selectUser(a.UserID)
}

func (h *homeScreen) View() string {
	s := h.styles
	w, ht := h.w, h.h
	if len(h.accounts) == 0 {
		msg := s.Header.Render("No accounts yet.") + "\n\n" +
			"Press " + s.Selected.Render("a") + " to add your first Matrix account.\n" +
			s.Muted.Render("mxauth keeps its tokens fresh and can mint login tokens\nto sign in new devices.")
		return lipgloss.Place(w, ht, lipgloss.Center, lipgloss.Center, msg)
	}
	var rows []string
	shown := len(h.list.VisibleItems())
	if h.filterShown() {
		line := " " + h.list.FilterInput.View() + s.Muted.Render("  "+itoa(shown)+" of "+itoa(len(h.accounts)))
		rows = append(rows, truncate(line, w))
	}
	if shown > 0 {
		rows = append(rows, h.page())
	}
	if shown > h.pageRows() {
		rows = append(rows, s.Muted.Render("     "+strconv.Itoa(h.list.Index()+1)+"/"+strconv.Itoa(shown)+" · pgup/pgdn home/end move by page · / filters"))
	}
	return strings.Join(rows, "\n")
}

// wrap word-wraps plain text to w cells.
func wrap(s string, w int) string {
	return lipgloss.NewStyle().Width(w).Render(s)
}

// page draws the list's current page with its delegate. The list's own
// View pads the page to its height and width through a style, which more
// than doubles the frame's memory; the frame fits the body anyway.
func (h *homeScreen) page() string {
	items := h.list.VisibleItems()
	start, end := h.list.Paginator.GetSliceBounds(len(items))
	d := accountDelegate{h.common}
	var b strings.Builder
	for i := start; i < end; i++ {
		if i > start {
			b.WriteByte('\n')
		}
		d.Render(&b, h.list, i, items[i])
	}
	return b.String()
}

// trimLines drops the blanks the list pads its lines and page with, so the
// frame decides the layout.
func trimLines(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n "), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
