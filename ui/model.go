package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// The smallest terminal the layouts are designed for.
const (
	minWidth  = 60
	minHeight = 20
)

// callTimeout caps one backend call made from the interface, on top of the
// client's own per-request timeout, so a stuck call never leaves a spinner forever.
const callTimeout = 2 * time.Minute

type screen int

const (
	screenHome screen = iota
	screenLogin
	screenDetails
	screenToken
	screenGrant
)

// Messages. Commands never touch the model; they return one of these.
type (
	tickMsg         struct{}
	eventMsg        struct{ ev session.Event }
	eventsClosedMsg struct{}
	panicMsg        struct{ v any }
	startupDoneMsg  struct {
		notes   []string
		keyring error
	}
)

// model is the root: it owns the shared state (size, clock, styles, keys,
// accounts snapshot, status line, dialog) and routes messages to the screen
// in front, or to the dialog over it.
type model struct {
	*common
	help     help.Model
	spinning bool
	fatal    error

	home    *homeScreen
	login   *loginScreen
	details *detailsScreen
	token   *tokenScreen
	grant   *grantScreen

	tick       func() tea.Cmd // the 1 Hz clock; tests drive ticks by hand
	events     <-chan session.Event
	notesUntil time.Time // start-up notes stay in the status line until then
}

// expirySeen remembers when the interface first saw an expiry deadline, to
// draw the progress bar when the session has no recorded refresh time.
type expirySeen struct {
	expiresAt time.Time
	seenAt    time.Time
}

func newModel(ctx context.Context, b Backend, opt RunOptions) *model {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	// Dark until the terminal says otherwise (tea.BackgroundColorMsg).
	st := NewStyles(opt.NoColor, true)
	c := &common{
		ctx:        ctx,
		b:          b,
		opt:        opt,
		now:        now,
		styles:     st,
		keys:       DefaultKeyMap(),
		darkBG:     true,
		lastExpiry: map[string]expirySeen{},
	}
	c.oauth = oauthOf(b)
	c.openURL = opt.OpenURL
	if c.openURL == nil {
		c.openURL = browserOpener()
	}
	c.spin = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(st.Busy))
	c.bar = newBar(st)
	m := &model{common: c, help: help.New(), tick: tickCmd}
	c.nav = m
	m.help.Styles = st.Help
	m.events = b.Events()
	m.home = newHomeScreen(c)
	m.login = newLoginScreen(c)
	m.details = &detailsScreen{common: c}
	m.token = &tokenScreen{common: c}
	m.grant = newGrantScreen(c)
	m.accounts = b.Accounts()
	sortAccounts(m.accounts)
	m.home.accountsChanged("", false)
	m.setNotes(opt.Notes)
	return m
}

// notesHold is how long start-up notes keep the status line from background
// events, which would otherwise replace them before anyone reads them.
const notesHold = 15 * time.Second

// setNotes puts the start-up notes in the status line, on one line whatever
// they hold.
func (m *model) setNotes(notes []string) {
	var parts []string
	for _, n := range notes {
		if n = clean(n); n != "" {
			parts = append(parts, n)
		}
	}
	if len(parts) > 0 {
		m.setStatus(strings.Join(parts, " · "), false)
		m.notesUntil = m.now().Add(notesHold)
	}
}

func (m *model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.tick(), tea.RequestBackgroundColor}
	if m.events != nil {
		cmds = append(cmds, waitEvent(m.events))
	}
	if startup := m.opt.Startup; startup != nil {
		cmds = append(cmds, m.call(func(ctx context.Context) tea.Msg {
			notes, keyring := startup(ctx)
			return startupDoneMsg{notes, keyring}
		}))
	}
	return tea.Batch(cmds...)
}

func tickCmd() tea.Cmd {
	return tea.Tick(time.Second, func(time.Time) tea.Msg { return tickMsg{} })
}

// waitEvent blocks on the backend's event channel in a command and is re-armed
// after each event.
func waitEvent(ch <-chan session.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsClosedMsg{}
		}
		return eventMsg{ev}
	}
}

// newBar is the progress bar of token lifetimes, in the palette's accent.
func newBar(st Styles) progress.Model {
	opts := []progress.Option{progress.WithoutPercentage(), progress.WithFillCharacters('█', '░')}
	if !st.NoColor {
		opts = append(opts, progress.WithColors(st.ProgressFull))
	}
	bar := progress.New(opts...)
	if st.NoColor {
		bar.FullColor, bar.EmptyColor = nil, nil
	}
	return bar
}

// restyler is a component that keeps styled parts of its own (text
// inputs, a table) to repaint when the palette changes.
type restyler interface{ restyle() }

// restyle switches to the palette of the terminal's background, which
// Bubble Tea reports after start; with NO_COLOR both are colourless.
func (m *model) restyle() {
	st := NewStyles(m.opt.NoColor, m.darkBG)
	m.styles = st
	m.help.Styles = st.Help
	m.spin.Style = st.Busy
	m.bar = newBar(st)
	for _, s := range m.screens() {
		if r, ok := s.(restyler); ok {
			r.restyle()
		}
	}
	if r, ok := m.dialog.(restyler); ok {
		r.restyle()
	}
}

// active is the screen in front.
func (m *model) active() screenModel {
	switch m.screen {
	case screenLogin:
		return m.login
	case screenDetails:
		return m.details
	case screenToken:
		return m.token
	case screenGrant:
		return m.grant
	}
	return m.home
}

func (m *model) screens() []screenModel {
	return []screenModel{m.home, m.login, m.details, m.token, m.grant}
}

// broadcast hands a message to every screen: each acts only on its own
// answers and ticks, whether or not it is in front.
func (m *model) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for _, s := range m.screens() {
		cmds = append(cmds, s.Update(msg))
	}
	return tea.Batch(cmds...)
}

// startSpin starts the spinner's tick chain unless it is already running.
func (m *model) startSpin() tea.Cmd {
	if m.spinning {
		return nil
	}
	m.spinning = true
	return m.spin.Tick
}

func (m *model) busy() bool {
	if m.dialog != nil && m.dialog.Busy() {
		return true
	}
	return m.active().Busy()
}

// reloadAccounts reads the accounts snapshot again; the list's cursor stays
// on its account when others come or go.
func (m *model) reloadAccounts() {
	sel, ok := m.home.selected()
	m.accounts = m.b.Accounts()
	sortAccounts(m.accounts)
	m.home.accountsChanged(sel.UserID, ok)
	for _, a := range m.accounts {
		m.noteExpiry(a.UserID, a.Status.ExpiresAt)
	}
}

// applyStatus puts an event's status into its row. An event carries the
// session's whole status, so with many accounts refreshing this avoids
// rebuilding every row per event; the 1 Hz tick reloads them all anyway.
// An account not on the list (or on another device) reloads everything.
func (m *model) applyStatus(st session.Status) {
	for i := range m.accounts {
		a := &m.accounts[i]
		if a.UserID != st.Account.UserID {
			continue
		}
		if a.DeviceID != st.Account.DeviceID {
			break
		}
		a.Status = st
		m.noteExpiry(a.UserID, st.ExpiresAt)
		return
	}
	m.reloadAccounts()
}

func (m *model) tooSmall() bool { return m.width < minWidth || m.height < minHeight }

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m.fatal != nil {
		return m, tea.Quit
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.SetWidth(max(0, msg.Width-2))
		for _, s := range m.screens() {
			s.SetSize(msg.Width, msg.Height)
		}
		if m.dialog != nil {
			m.dialog.SetSize(msg.Width, msg.Height)
		}
		return m, nil
	case tea.BackgroundColorMsg:
		if dark := msg.IsDark(); dark != m.darkBG {
			m.darkBG = dark
			m.restyle()
		}
		return m, nil
	case tickMsg:
		m.reloadAccounts()
		return m, tea.Batch(m.broadcast(msg), m.tick())
	case spinner.TickMsg:
		if !m.busy() {
			m.spinning = false
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	case eventMsg:
		m.onEvent(msg.ev)
		return m, waitEvent(m.events)
	case eventsClosedMsg:
		m.events = nil
		return m, nil
	case startupDoneMsg:
		m.setNotes(msg.notes)
		if msg.keyring != nil {
			m.opt.Keyring = msg.keyring
		}
		m.reloadAccounts()
		return m, nil
	case panicMsg:
		m.fatal = fmt.Errorf("ui: internal error: %v", msg.v)
		return m, tea.Quit
	case tea.KeyPressMsg:
		cmd := m.onKey(msg)
		return m, tea.Batch(cmd, m.spinIfBusy())
	case tea.PasteMsg:
		if m.dialog != nil {
			return m, m.dialog.Update(msg)
		}
		return m, m.active().Update(msg)
	case tea.ClipboardMsg:
		if m.dialog != nil {
			m.dialog.Update(msg)
		}
		return m, tea.Batch(m.token.Update(msg), m.grant.Update(msg))
	case refreshDoneMsg:
		m.reloadAccounts()
		if msg.err != nil {
			m.setStatus("refresh of "+msg.userID+" failed: "+describe(msg.err), false)
		} else {
			m.setStatus("refreshed "+msg.userID, true)
		}
		return m, m.spinIfBusy()
	case signOutDoneMsg:
		m.signOutDone(msg)
		return m, m.spinIfBusy()
	case linkOpenedMsg:
		return m, m.linkOpened(msg)
	}
	cmd := m.broadcast(msg)
	return m, tea.Batch(cmd, m.spinIfBusy())
}

func (m *model) spinIfBusy() tea.Cmd {
	if m.busy() {
		return m.startSpin()
	}
	return nil
}

func (m *model) onEvent(ev session.Event) {
	m.applyStatus(ev.Status)
	if m.now().Before(m.notesUntil) {
		return // the rows show the new state; the notes keep the status line
	}
	u := matrix.Sanitize(ev.Status.Account.UserID)
	ok := false
	var s string
	switch ev.Kind {
	case session.EventRefreshed:
		s, ok = "refreshed "+u, true
	case session.EventRecovered:
		s, ok = u+" is working again", true
	case session.EventRetrying:
		s = u + ": refresh failed, retrying"
		if !ev.Status.RetryAt.IsZero() {
			s += " at " + m.clock(ev.Status.RetryAt)
		}
	case session.EventNeedsSignIn:
		s = u + " needs sign-in · press s"
	case session.EventSignedOut:
		s = u + " signed out by the server · press s"
	case session.EventLocked:
		s = u + " locked by the server administrator"
	case session.EventStoreProblem:
		return // the keyring banner says it, with advice
	default:
		s = u + ": " + ev.Kind.String()
	}
	if p := matrix.Sanitize(ev.Status.Problem); p != "" && !ok {
		s += " (" + p + ")"
	}
	at := ev.At
	if at.IsZero() {
		at = m.now()
	}
	m.setStatus(m.clock(at)+" "+s, ok)
}

func (m *model) onKey(k tea.KeyPressMsg) tea.Cmd {
	if key.Matches(k, m.keys.ForceQuit) {
		return tea.Quit
	}
	if m.tooSmall() {
		if key.Matches(k, m.keys.Quit) {
			return tea.Quit
		}
		return nil
	}
	if m.dialog != nil {
		return m.dialog.Update(k)
	}
	return m.active().Update(k)
}

// signOutDone ends the sign-out dialog, or says why it failed in it.
func (m *model) signOutDone(msg signOutDoneMsg) {
	m.reloadAccounts()
	if c := m.confirmation(); c != nil && c.userID == msg.userID {
		if msg.err != nil {
			c.busy = false
			c.err = describe(msg.err)
			return
		}
		m.dialog = nil
	}
	if msg.err != nil {
		m.setStatus("sign-out of "+msg.userID+" failed: "+describe(msg.err), false)
		return
	}
	m.setStatus("signed out "+msg.userID, true)
	if m.screen == screenDetails && m.details.userID == msg.userID {
		m.show(screenHome)
	}
}

// show brings a screen to the front, with the short help.
func (m *model) show(s screen) {
	m.screen = s
	m.showHelp = false
}

func (m *model) openLogin(reauth *app.Account) tea.Cmd {
	m.login = newLoginScreen(m.common)
	m.login.SetSize(m.width, m.height)
	cmd := m.login.open(reauth)
	m.show(screenLogin)
	return cmd
}

func (m *model) openDetails(userID string) tea.Cmd {
	m.show(screenDetails)
	return m.details.open(userID)
}

func (m *model) openToken(a app.Account) tea.Cmd {
	from := screenHome
	if m.screen == screenDetails || (m.screen == screenToken && m.token.from == screenDetails) {
		from = screenDetails
	}
	m.show(screenToken)
	return m.token.open(a, from)
}

// openGrant starts an OAuth sign-in on its own screen; esc there goes back
// to the form.
func (m *model) openGrant(p oauthParams) tea.Cmd {
	m.grant.SetSize(m.width, m.height)
	cmd := m.grant.start(p)
	m.show(screenGrant)
	return cmd
}

// signedIn shows the new account on the list, selected, with the news.
func (m *model) signedIn(a app.Account) {
	m.reloadAccounts()
	m.home.reveal(a)
	m.keyringRecovered = true
	m.setStatus("signed in as "+clean(a.UserID)+" on device "+clean(a.DeviceID), true)
	m.show(screenHome)
}

func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "mxauth"
	return v
}

func (m *model) render() string {
	if m.width == 0 || m.height == 0 {
		return ""
	}
	if m.tooSmall() {
		msg := m.styles.Warn.Render(fmt.Sprintf("terminal too small (need %dx%d)", minWidth, minHeight)) +
			"\n" + m.styles.Muted.Render(fmt.Sprintf("now %dx%d · ctrl+c quits", m.width, m.height))
		return lipgloss.Place(m.width, m.height, lipgloss.Center, lipgloss.Center, msg)
	}
	base := m.frame()
	if m.dialog != nil {
		base = m.overlay(base, m.dialog.View())
	}
	return base
}

// frame lays out header, demo banner, the screen body, status line and help.
func (m *model) frame() string {
	w := m.width
	scr := m.active()
	left := m.styles.Title.Render("mxauth") + m.styles.Muted.Render(" · ") + m.styles.Header.Render(scr.Title())
	// The store's name gives way, at whole words, before anything is cut.
	room := w - 3 - lipgloss.Width(left)
	right := m.styles.StoreName.Render(fitWords("keyring: "+matrix.Sanitize(m.b.StoreName()), room))
	if k, bad := m.keyringIssue(); bad {
		word := keyringWord(k)
		right = m.styles.Warn.Render(word)
		if name := fitWords("("+matrix.Sanitize(m.b.StoreName())+")", room-lipgloss.Width(word)-1); lipgloss.Width(word)+4 < room {
			right += m.styles.StoreName.Render(" " + name)
		}
	}
	header := " " + left + spaces(w-2-lipgloss.Width(left)-lipgloss.Width(right)) + right
	header = truncate(header, w)

	top := []string{header}
	if d := m.b.Demo(); d != nil {
		top = append(top, m.demoBanner(d))
	}
	if kb := m.keyringBanner(); kb != "" {
		top = append(top, kb)
	}

	helpView := " " + strings.ReplaceAll(m.helpView(w-2), "\n", "\n ")

	statusLine := ""
	if m.status != "" {
		st := m.styles.Status
		if !m.statusOK {
			st = m.styles.Warn
		}
		lines := statusLines(m.status, w-2)
		for i, l := range lines {
			lines[i] = " " + st.Render(l)
		}
		statusLine = strings.Join(lines, "\n")
	}

	topH := lipgloss.Height(strings.Join(top, "\n"))
	bodyH := m.height - topH - 1 - lipgloss.Height(helpView) - lipgloss.Height(statusLine)
	compact := m.dialog == nil && ((m.screen == screenToken && m.token.needsRoom(bodyH)) ||
		(m.screen == screenGrant && m.grant.needsRoom(bodyH)))
	if compact {
		bodyH += 2 // no spacer, no status line: the QR code comes first
	}
	bodyH = max(1, bodyH)
	scr.SetSize(w, bodyH)
	body := fitBox(scr.View(), w, bodyH)

	if compact {
		return strings.Join(append(top, body, helpView), "\n")
	}
	return strings.Join(append(top, "", body, statusLine, helpView), "\n")
}

// helpView renders the help bar. The short form drops bindings from the
// middle until it fits, keeping help and quit at the end reachable.
func (m *model) helpView(w int) string {
	km := m.keys
	km.canOpen = m.openURL != nil
	if m.dialog != nil {
		km.mode = m.dialog.HelpMode()
	} else {
		m.active().HelpContext(&km)
	}
	h := m.help
	if m.showHelp {
		h.ShowAll = true
		full := h.View(km)
		return fitBox(full, w, lipgloss.Height(full))
	}
	h.ShowAll = false
	h.SetWidth(0) // width is handled here, by dropping whole entries
	bindings := km.ShortHelp()
	out := h.ShortHelpView(bindings)
	for lipgloss.Width(out) > w && len(bindings) > 2 {
		cut := max(0, len(bindings)-3)
		bindings = append(bindings[:cut:cut], bindings[cut+1:]...)
		out = h.ShortHelpView(bindings)
	}
	return truncate(out, w)
}

func (m *model) demoBanner(d *app.DemoInfo) string {
	var in, add []string
	for _, u := range d.Users {
		cred := matrix.Sanitize(u.UserID) + " / " + matrix.Sanitize(u.Password)
		if u.SignedIn {
			in = append(in, cred)
		} else {
			add = append(add, cred)
		}
	}
	text := "Demo: nothing is saved · homeserver " + matrix.Sanitize(d.Homeserver)
	if len(in) > 0 {
		text += " · signed in: " + strings.Join(in, ", ")
	}
	if c := d.Crowd; c != nil {
		text += fmt.Sprintf(" · %s … %s (%d, signed in) share password %s",
			matrix.Sanitize(c.First), matrix.Sanitize(c.Last), c.Count, matrix.Sanitize(c.Password))
	}
	if len(add) > 0 {
		text += " · press a to add " + strings.Join(add, ", ")
	}
	if o := d.OAuth; o != nil {
		var users []string
		for _, u := range o.Users {
			users = append(users, matrix.Sanitize(u.UserID)+" / "+matrix.Sanitize(u.Password))
		}
		text += " · OAuth 2.0 homeserver " + matrix.Sanitize(o.Homeserver)
		if len(users) > 0 {
			text += ": add " + strings.Join(users, ", ")
		}
		if o.ApprovalURL != "" {
			text += ", approve at " + matrix.Sanitize(o.ApprovalURL)
		}
	}
	return m.styles.Banner.Width(m.width).Render(text)
}

// overlay draws box centred over base as a separate layer.
func (m *model) overlay(base, box string) string {
	bw, bh := lipgloss.Width(box), lipgloss.Height(box)
	x := max(0, (m.width-bw)/2)
	y := max(0, (m.height-bh)/2)
	c := lipgloss.NewCompositor(
		lipgloss.NewLayer(base),
		lipgloss.NewLayer(box).X(x).Y(y).Z(1),
	)
	return c.Render()
}

// spaces is a run of n blanks, at least one, between two parts of a line.
func spaces(n int) string {
	return strings.Repeat(" ", max(1, n))
}

// fitBox pads or cuts s to exactly h lines, each cut to w cells (by display
// width, so wide characters count as the two cells they take).
func fitBox(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		lines[i] = truncate(l, w)
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// maxStatusLines bounds the status line: long messages (a keyring problem
// with its advice) wrap instead of losing their end, but never push the
// screen off.
const maxStatusLines = 3

// statusLines word-wraps a status message into at most maxStatusLines lines
// of width w, cutting the last one with an ellipsis if it is still too long.
func statusLines(s string, w int) []string {
	lines := strings.Split(ansi.Wordwrap(s, max(1, w), ""), "\n")
	if len(lines) > maxStatusLines {
		lines = lines[:maxStatusLines]
		// The ellipsis goes after the last whole word that leaves room for it.
		last := lines[maxStatusLines-1]
		if lipgloss.Width(last)+2 <= w {
			last += " …"
		} else {
			last = fitWords(last, w)
		}
		lines[maxStatusLines-1] = last
	}
	for i := range lines {
		lines[i] = truncate(lines[i], w)
	}
	return lines
}

// truncate cuts styled text to w cells, marking the cut with an ellipsis.
func truncate(s string, w int) string {
	return ansi.Truncate(s, w, "…")
}
