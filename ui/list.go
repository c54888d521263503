package ui

import (
	"io"
	"slices"
	"strings"

	"mxauth/ui/app"

	"charm.land/bubbles/v2/list"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// sortAccounts puts accounts in user-ID order, so the list reads the same
// however and whenever they were added.
// Every tick checks; a list already in order (the usual case) is not sorted.
func sortAccounts(as []app.Account) {
	for i := 1; i < len(as); i++ {
		if as[i-1].UserID > as[i].UserID {
			slices.SortStableFunc(as, func(a, b app.Account) int { return strings.Compare(a.UserID, b.UserID) })
			return
		}
	}
}

// accountItem is one account as a list item. It points into the accounts
// snapshot, so an event that changes a status in place shows at once.
type accountItem app.Account

// FilterValue is what the filter looks in: user ID, display name, homeserver
// and device, one per line so a match never spans two of them.
func (a *accountItem) FilterValue() string {
	return a.UserID + "\n" + a.DisplayName + "\n" + a.Homeserver + "\n" + a.DeviceID
}

// substringFilter keeps the items whose text holds the term, ignoring case,
// in list order (user ID), as people read a filter over a sorted list.
func substringFilter(term string, targets []string) []list.Rank {
	q := strings.ToLower(strings.TrimSpace(term))
	var ranks []list.Rank
	for i, t := range targets {
		if q == "" || strings.Contains(strings.ToLower(t), q) {
			ranks = append(ranks, list.Rank{Index: i})
		}
	}
	return ranks
}

func matchesFilter(a app.Account, q string) bool {
	return len(substringFilter(q, []string{(*accountItem)(&a).FilterValue()})) > 0
}

// accountDelegate draws one account in three lines: who, where, state.
type accountDelegate struct{ *common }

func (d accountDelegate) Height() int                         { return 3 }
func (d accountDelegate) Spacing() int                        { return 0 }
func (d accountDelegate) Update(tea.Msg, *list.Model) tea.Cmd { return nil }

func (d accountDelegate) Render(w io.Writer, l list.Model, index int, item list.Item) {
	a, ok := item.(*accountItem)
	if !ok {
		return
	}
	s := d.styles
	width := l.Width()
	marker := "  "
	if index == l.Index() {
		marker = s.Selected.Render("▸ ")
	}
	name := s.UserID.Render(clean(a.UserID))
	if a.DisplayName != "" {
		name += s.Muted.Render(" (" + clean(a.DisplayName) + ")")
	}
	if a.IsDefault {
		name += s.Muted.Render(" · default")
	}
	state, st := d.stateText(a.Status, d.now())
	info := s.Label.Render("device ") + clean(a.DeviceID) + s.Label.Render(" · ") + clean(a.Homeserver)
	io.WriteString(w, truncate(" "+marker+name, width)+"\n"+
		truncate("     "+info, width)+"\n"+
		"     "+st.Render(fitWords(state, width-5)))
}

// newAccountList is the bubbles list the accounts screen shows, driven by
// mxauth's own keys; its title, status bar, help and dots are left out
// because the frame shows those.
func newAccountList(c *common) list.Model {
	l := list.New(nil, accountDelegate{c}, 0, 0)
	l.SetShowTitle(false)
	l.SetShowFilter(false)
	l.SetShowStatusBar(false)
	l.SetShowPagination(false)
	l.SetShowHelp(false)
	l.DisableQuitKeybindings()
	l.Filter = substringFilter
	l.FilterInput = newFilterInput(c.styles)
	km := c.keys
	l.KeyMap = list.KeyMap{
		CursorUp: km.Up, CursorDown: km.Down,
		GoToStart: km.First, GoToEnd: km.Last,
		// Paging (by a page from the cursor), the filter, help and quitting
		// are the screen's own: bindings without keys never match.
	}
	return l
}

// filterWidth is the filter's input width, in cells.
const filterWidth = 30

func newFilterInput(st Styles) textinput.Model {
	in := textinput.New()
	in.Prompt = "/"
	in.Placeholder = "user, server or device"
	in.CharLimit = 64
	in.SetStyles(st.Input)
	in.SetVirtualCursor(true)
	in.SetWidth(filterWidth)
	return in
}
