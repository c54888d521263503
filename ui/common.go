package ui

import (
	"context"
	"time"

	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// component is one part of the interface that handles its own messages and
// draws itself into the size it was last given.
type component interface {
	Update(msg tea.Msg) tea.Cmd
	View() string
	SetSize(w, h int)
}

// screenModel is a component that fills the body of the frame: the accounts
// list, the sign-in form, an account's details, a login token.
type screenModel interface {
	component
	Title() string
	// Busy says a call is on its way, so the spinner keeps turning.
	Busy() bool
	// HelpContext tells the key map what the screen allows right now.
	HelpContext(km *KeyMap)
}

// dialog is a box drawn over the screen that takes the keys while it is
// open: a confirmation or the password prompt of user-interactive auth.
type dialog interface {
	component
	Busy() bool
	HelpMode() helpMode
}

// navigator moves between screens; the root implements it, so screens never
// reach into one another.
type navigator interface {
	openLogin(reauth *app.Account) tea.Cmd
	openDetails(userID string) tea.Cmd
	openToken(a app.Account) tea.Cmd
	openGrant(p oauthParams) tea.Cmd
	show(s screen)
	signedIn(a app.Account)
}

// common is the state shared by the root, every screen and every dialog:
// size, clock, styles, keys, the accounts snapshot, the status line and the
// dialog in front. The root owns it; components hold a pointer.
type common struct {
	ctx    context.Context
	b      Backend
	opt    RunOptions
	now    func() time.Time
	styles Styles
	keys   KeyMap
	spin   spinner.Model
	bar    progress.Model
	nav    navigator
	oauth  oauthBackend // nil when the backend cannot sign in through OAuth
	// openURL opens an address in this computer's browser; nil when it has none.
	openURL func(addr string) error

	width, height int
	darkBG        bool

	screen   screen
	accounts []app.Account // every account, in user-ID order
	status   string        // last background event or action result
	statusOK bool
	showHelp bool
	dialog   dialog // nil when none is open

	seq        int // numbers requests so late answers for a screen left behind are dropped
	lastExpiry map[string]expirySeen
	// keyringRecovered: a sign-in worked since start, so the start-up
	// keyring problem is over.
	keyringRecovered bool
}

// call runs a backend call in a command with a deadline, turning a panic in
// it into a message so the program can exit cleanly.
func (c *common) call(f func(ctx context.Context) tea.Msg) tea.Cmd {
	parent := c.ctx
	return func() (msg tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				msg = panicMsg{r}
			}
		}()
		ctx, cancel := context.WithTimeout(parent, callTimeout)
		defer cancel()
		return f(ctx)
	}
}

// callCtx is call for a wait that ctx bounds instead of callTimeout: an
// OAuth sign-in waits as long as its code lives.
func (c *common) callCtx(ctx context.Context, f func(ctx context.Context) tea.Msg) tea.Cmd {
	return func() (msg tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				msg = panicMsg{r}
			}
		}()
		return f(ctx)
	}
}

func (c *common) nextSeq() int {
	c.seq++
	return c.seq
}

func (c *common) setStatus(s string, ok bool) {
	c.status, c.statusOK = s, ok
}

func (c *common) account(userID string) (app.Account, bool) {
	for _, a := range c.accounts {
		if a.UserID == userID {
			return a, true
		}
	}
	return app.Account{}, false
}

// clock formats a wall time in the clock's own location, so a pinned clock
// gives the same text everywhere.
func (c *common) clock(t time.Time) string {
	return t.In(c.now().Location()).Format("15:04:05")
}

// uia is the password dialog when it is the one open.
func (c *common) uia() *uiaModal {
	md, _ := c.dialog.(*uiaModal)
	return md
}

// confirmation is the confirmation dialog when it is the one open.
func (c *common) confirmation() *confirmDialog {
	cd, _ := c.dialog.(*confirmDialog)
	return cd
}

func (c *common) refreshCmd(userID string) tea.Cmd {
	c.setStatus("refreshing "+userID+"…", true)
	b := c.b
	return c.call(func(ctx context.Context) tea.Msg {
		return refreshDoneMsg{userID, b.Refresh(ctx, userID)}
	})
}

// lifetimeStart guesses when the current access token was issued, for the
// progress bar: the last refresh when known, else when the deadline first showed up.
func (c *common) lifetimeStart(a app.Account) time.Time {
	st := a.Status
	if !st.LastRefresh.IsZero() && st.LastRefresh.Before(st.ExpiresAt) {
		return st.LastRefresh
	}
	if seen, ok := c.lastExpiry[a.UserID]; ok && seen.expiresAt.Equal(st.ExpiresAt) {
		return seen.seenAt
	}
	return c.now()
}

// noteExpiry remembers when an account's expiry deadline was first seen.
func (c *common) noteExpiry(userID string, exp time.Time) {
	if seen, ok := c.lastExpiry[userID]; !ok || !seen.expiresAt.Equal(exp) {
		c.lastExpiry[userID] = expirySeen{expiresAt: exp, seenAt: c.now()}
	}
}

// stateText is an account's state in words, with its live countdown.
func (c *common) stateText(st session.Status, now time.Time) (string, lipgloss.Style) {
	s := c.styles
	switch st.State {
	case session.StateActive:
		if st.ExpiresAt.IsZero() {
			return "● active", s.OK
		}
		left := st.ExpiresAt.Sub(now)
		if left <= 0 {
			return "● active · token expired, refreshing soon", s.Warn
		}
		return "● active · expires in " + countdown(left), s.OK
	case session.StateRefreshing:
		return "◌ refreshing…", s.Busy
	case session.StateRetrying:
		t := "◌ retrying"
		if !st.RetryAt.IsZero() {
			t += " in " + countdown(st.RetryAt.Sub(now))
		}
		if st.Problem != "" {
			t += " · " + clean(st.Problem)
		}
		return t, s.Warn
	case session.StateNeedsSignIn:
		return "✗ needs sign-in · press s", s.Bad
	case session.StateSignedOut:
		return "✗ signed out by the server · press s", s.Muted
	case session.StateLocked:
		return "✗ locked by the server administrator", s.Bad
	case session.StateStoreProblem:
		// The banner gives the advice; the details screen the whole problem.
		return "✗ " + keyringWord(st.Keyring), s.Bad
	case session.StateExpiring:
		if st.ExpiresAt.IsZero() {
			return "● expires, sign in again before then", s.Warn
		}
		if !st.ExpiresAt.After(now) {
			return "✗ needs sign-in (token expired) · press s", s.Bad
		}
		return "● expires at " + st.ExpiresAt.In(now.Location()).Format("15:04") +
			" (in " + countdown(st.ExpiresAt.Sub(now)) + "), sign in again before then", s.Warn
	case session.StateNonExpiring:
		return "● active · token does not expire", s.OK
	case session.StateLoading:
		return "◌ loading from the keyring…", s.Busy
	}
	return "? " + st.State.String(), s.Muted
}
