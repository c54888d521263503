package ui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
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
// (/) and paging for long lists.
type homeScreen struct {
	*common
	w, h int

	cursor int // in shown(): the accounts the filter lets through
	// filter narrows a long list (/); filtering while it is being typed.
	filter    textinput.Model
	filtering bool
	pageRows  int // accounts one screen holds, from the last layout: PgUp/PgDn move that far
}

func newHomeScreen(c *common) *homeScreen {
	return &homeScreen{common: c, filter: newFilterInput(c.styles)}
}

func (h *homeScreen) Title() string { return "Accounts" }

func (h *homeScreen) Busy() bool { return false }

func (h *homeScreen) SetSize(w, ht int) { h.w, h.h = w, ht }

func (h *homeScreen) HelpContext(km *KeyMap) {
	km.mode = helpHome
	switch {
	case h.filtering:
		km.mode = helpFilter
	case len(h.accounts) == 0:
		km.mode = helpHomeEmpty
	}
	a, ok := h.selected()
	km.needsSignIn = ok && canSignInAgain(a.Status.State)
	km.noTokens = ok && a.Status.TokensUnknown
	km.longList = len(h.shown()) > h.pageRows || h.filter.Value() != ""
}

func (h *homeScreen) Update(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		return h.onKey(k)
	}
	return nil
}

func (h *homeScreen) onKey(k tea.KeyPressMsg) tea.Cmd {
	km := h.keys
	if h.filtering {
		return h.filterKey(k)
	}
	if h.pageKey(k) {
		return nil
	}
	switch {
	case key.Matches(k, km.Quit):
		return tea.Quit
	case key.Matches(k, km.Help):
		h.showHelp = !h.showHelp
	case key.Matches(k, km.Up):
		if h.cursor > 0 {
			h.cursor--
		}
	case key.Matches(k, km.Down):
		if h.cursor < len(h.shown())-1 {
			h.cursor++
		}
	case key.Matches(k, km.Add):
		return h.nav.openLogin(nil)
	case key.Matches(k, km.Filter) && len(h.accounts) > 0:
		h.filtering = true
		return h.filter.Focus()
	case key.Matches(k, km.FilterClear) && h.filter.Value() != "":
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

func (h *homeScreen) View() string {
	s := h.styles
	w, ht := h.w, h.h
	if len(h.accounts) == 0 {
		h.pageRows = 0
		msg := s.Header.Render("No accounts yet.") + "\n\n" +
			"Press " + s.Selected.Render("a") + " to add your first Matrix account.\n" +
			s.Muted.Render("mxauth keeps its tokens fresh and can mint login tokens\nto sign in new devices.")
		return lipgloss.Place(w, ht, lipgloss.Center, lipgloss.Center, msg)
	}
	now := h.now()
	var rows []string
	accounts := h.shown()
	if h.filtering || h.filter.Value() != "" {
		line := " " + h.filter.View() + s.Muted.Render("  "+itoa(len(accounts))+" of "+itoa(len(h.accounts)))
		rows = append(rows, truncate(line, w))
		ht--
	}
	const rowH = 3
	visible := max(1, ht/rowH)
	if len(accounts) > visible {
		visible = max(1, (ht-1)/rowH) // keep a line for the position indicator
	}
	h.pageRows = visible
	start := 0
	if h.cursor >= visible {
		start = h.cursor - visible + 1
	}
	for i := start; i < len(accounts) && i < start+visible; i++ {
		a := accounts[i]
		marker := "  "
		if i == h.cursor {
			marker = s.Selected.Render("▸ ")
		}
		name := s.UserID.Render(clean(a.UserID))
		if a.DisplayName != "" {
			name += s.Muted.Render(" (" + clean(a.DisplayName) + ")")
		}
		if a.IsDefault {
			name += s.Muted.Render(" · default")
		}
		state, st := h.stateText(a.Status, now)
		info := s.Label.Render("device ") + clean(a.DeviceID) + s.Label.Render(" · ") + clean(a.Homeserver)
		rows = append(rows,
			truncate(" "+marker+name, w),
			truncate("     "+info, w),
			"     "+st.Render(fitWords(state, w-5)))
	}
	if len(accounts) > visible {
		rows = append(rows, s.Muted.Render("     "+strconv.Itoa(h.cursor+1)+"/"+strconv.Itoa(len(accounts))+" · pgup/pgdn home/end move by page · / filters"))
	}
	return strings.Join(rows, "\n")
}

// wrap word-wraps plain text to w cells.
func wrap(s string, w int) string {
	return lipgloss.NewStyle().Width(w).Render(s)
}
