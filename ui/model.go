package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"mxauth/matrix"
	"mxauth/matrix/session"
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
// accounts snapshot) and routes messages to the screen in front.
type model struct {
	ctx    context.Context
	b      Backend
	opt    RunOptions
	now    func() time.Time
	styles Styles
	keys   KeyMap
	help   help.Model
	spin   spinner.Model
	bar    progress.Model

	width, height int
	darkBG        bool
	spinning      bool
	fatal         error

	screen   screen
	accounts []AccountView // every account, in user-ID order
	cursor   int           // in shown(): the accounts the filter lets through
	status   string        // last background event or action result
	statusOK bool
	showHelp bool
	confirm  *confirmDialog
	modal    *uiaModal

	// filter narrows a long list (/); filtering while it is being typed.
	filter    textinput.Model
	filtering bool
	pageRows  int // accounts one screen holds, from the last layout: PgUp/PgDn move that far

	login   loginForm
	details detailsScreen
	token   tokenScreen

	tick       func() tea.Cmd // the 1 Hz clock; tests drive ticks by hand
	seq        int            // numbers requests so late answers for a screen left behind are dropped
	events     <-chan session.Event
	lastExpiry map[string]expirySeen
	notesUntil time.Time // start-up notes stay in the status line until then
	// keyringRecovered: a sign-in worked since start, so the start-up
	// keyring problem is over.
	keyringRecovered bool
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
	st := NewStyles(opt.NoColor)
	m := &model{
		ctx:        ctx,
		b:          b,
		opt:        opt,
		now:        now,
		styles:     st,
		keys:       DefaultKeyMap(),
		help:       help.New(),
		darkBG:     true,
		lastExpiry: map[string]expirySeen{},
		tick:       tickCmd,
	}
	m.help.Styles = st.Help
	m.spin = spinner.New(spinner.WithSpinner(spinner.MiniDot), spinner.WithStyle(st.Busy))
	popts := []progress.Option{progress.WithoutPercentage(), progress.WithFillCharacters('█', '░')}
	if !opt.NoColor {
		popts = append(popts, progress.WithColors(st.ProgressFull))
	}
	m.bar = progress.New(popts...)
	if opt.NoColor {
		m.bar.FullColor, m.bar.EmptyColor = nil, nil
	}
	m.events = b.Events()
	m.accounts = b.Accounts()
	sortAccounts(m.accounts)
	m.filter = newFilterInput(st)
	m.login = newLoginForm(st, opt.Hostname)
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

// call runs a backend call in a command with a deadline, turning a panic in
// it into a message so the program can exit cleanly.
func (m *model) call(f func(ctx context.Context) tea.Msg) tea.Cmd {
	parent := m.ctx
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

func (m *model) nextSeq() int {
	m.seq++
	return m.seq
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
	if m.modal != nil && m.modal.busy {
		return true
	}
	switch m.screen {
	case screenLogin:
		return m.login.busy || m.login.resolving
	case screenDetails:
		return m.details.infoLoading || m.details.devLoading || m.details.revealLoading || m.details.deleting
	case screenToken:
		return m.token.phase == tokenChecking || m.token.phase == tokenMinting
	}
	return m.confirm != nil && m.confirm.busy
}

func (m *model) setStatus(s string, ok bool) {
	m.status, m.statusOK = s, ok
}

func (m *model) reloadAccounts() {
	sel, ok := m.selected()
	m.accounts = m.b.Accounts()
	sortAccounts(m.accounts)
	if ok {
		m.selectUser(sel.UserID) // the cursor stays on its account when others come or go
	}
	m.clampCursor()
	now := m.now()
	for _, a := range m.accounts {
		exp := a.Status.ExpiresAt
		if seen, ok := m.lastExpiry[a.UserID]; !ok || !seen.expiresAt.Equal(exp) {
			m.lastExpiry[a.UserID] = expirySeen{expiresAt: exp, seenAt: now}
		}
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
		if seen, ok := m.lastExpiry[a.UserID]; !ok || !seen.expiresAt.Equal(st.ExpiresAt) {
			m.lastExpiry[a.UserID] = expirySeen{expiresAt: st.ExpiresAt, seenAt: m.now()}
		}
		return
	}
	m.reloadAccounts()
}

func (m *model) account(userID string) (AccountView, bool) {
	for _, a := range m.accounts {
		if a.UserID == userID {
			return a, true
		}
	}
	return AccountView{}, false
}

func (m *model) selected() (AccountView, bool) {
	shown := m.shown()
	if m.cursor < 0 || m.cursor >= len(shown) {
		return AccountView{}, false
	}
	return shown[m.cursor], true
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
		m.login.setWidth(msg.Width)
		if m.modal != nil {
			m.modal.input.SetWidth(modalInputWidth(msg.Width))
		}
		return m, nil
	case tea.BackgroundColorMsg:
		m.darkBG = msg.IsDark()
		return m, nil
	case tickMsg:
		return m, tea.Batch(m.onTick(), m.tick())
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
		return m, m.onPaste(msg)
	case tea.ClipboardMsg:
		m.clipboardRead(msg)
		return m, nil
	}
	cmd := m.onResult(msg)
	return m, tea.Batch(cmd, m.spinIfBusy())
}

func (m *model) spinIfBusy() tea.Cmd {
	if m.busy() {
		return m.startSpin()
	}
	return nil
}

// onTick drives every countdown from the one 1 Hz clock.
func (m *model) onTick() tea.Cmd {
	m.reloadAccounts()
	now := m.now()
	var cmds []tea.Cmd
	m.details.tick(now)
	cmds = append(cmds, m.tokenTick(now))
	if !m.login.retryAt.IsZero() && !now.Before(m.login.retryAt) {
		m.login.retryAt = time.Time{}
		if m.login.errKind == errRateLimited {
			m.login.setError(errOther, "You can try again now.", fieldPassword)
		}
	}
	return tea.Batch(cmds...)
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

// clock formats a wall time in the clock's own location, so a pinned clock
// gives the same text everywhere.
func (m *model) clock(t time.Time) string {
	return t.In(m.now().Location()).Format("15:04:05")
}

func (m *model) onKey(k tea.KeyPressMsg) tea.Cmd {
	if k.String() == "ctrl+c" {
		return tea.Quit
	}
	if m.tooSmall() {
		if k.String() == "q" {
			return tea.Quit
		}
		return nil
	}
	if m.modal != nil {
		return m.modalKey(k)
	}
	if m.confirm != nil {
		return m.confirmKey(k)
	}
	switch m.screen {
	case screenLogin:
		return m.loginKey(k)
	case screenDetails:
		return m.detailsKey(k)
	case screenToken:
		return m.tokenKey(k)
	}
	return m.homeKey(k)
}

func (m *model) onPaste(p tea.PasteMsg) tea.Cmd {
	if m.modal != nil && !m.modal.busy {
		var cmd tea.Cmd
		m.modal.input, cmd = m.modal.input.Update(p)
		return cmd
	}
	if m.screen == screenLogin && !m.login.busy {
		return m.login.updateFocused(p)
	}
	return nil
}

// onResult routes the answers of backend calls.
func (m *model) onResult(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case loginDoneMsg:
		return m.loginDone(msg)
	case resolveDoneMsg:
		return m.resolveDone(msg)
	case refreshDoneMsg:
		m.reloadAccounts()
		if msg.err != nil {
			m.setStatus("refresh of "+msg.userID+" failed: "+describe(msg.err), false)
		} else {
			m.setStatus("refreshed "+msg.userID, true)
		}
	case signOutDoneMsg:
		return m.signOutDone(msg)
	case serverInfoMsg, devicesMsg, accessTokenMsg, deleteDeviceMsg:
		return m.detailsResult(msg)
	case checkTokenMsg, mintMsg:
		return m.tokenResult(msg)
	}
	return nil
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
	if m.confirm != nil {
		base = m.overlay(base, m.confirmView())
	}
	if m.modal != nil {
		base = m.overlay(base, m.modalView())
	}
	return base
}

// frame lays out header, demo banner, the screen body, status line and help.
func (m *model) frame() string {
	w := m.width
	title := "Accounts"
	switch m.screen {
	case screenLogin:
		title = m.login.title()
	case screenDetails:
		title = "Account details"
	case screenToken:
		title = "Login token"
	}
	left := m.styles.Title.Render("mxauth") + m.styles.Muted.Render(" · ") + m.styles.Header.Render(title)
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
	header := " " + left + gap(w-2-lipgloss.Width(left)-lipgloss.Width(right)) + right
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
	compact := m.needsRoom(bodyH)
	if compact {
		bodyH += 2 // no spacer, no status line: the QR code comes first
	}
	body := m.body(w, max(1, bodyH))
	body = fit(body, w, max(1, bodyH))

	if compact {
		return strings.Join(append(top, body, helpView), "\n")
	}
	return strings.Join(append(top, "", body, statusLine, helpView), "\n")
}

// needsRoom says whether the login token's QR code only fits once the
// spacer and status line give up their rows.
func (m *model) needsRoom(bodyH int) bool {
	t := &m.token
	return m.screen == screenToken && m.modal == nil && t.phase == tokenShown && t.qr != nil && qrRows(t.qr) > bodyH
}

// body renders the screen in front into w x h cells.
func (m *model) body(w, h int) string {
	switch m.screen {
	case screenLogin:
		return m.loginView(w, h)
	case screenDetails:
		return m.detailsView(w, h)
	case screenToken:
		return m.tokenView(w, h)
	}
	return m.homeView(w, h)
}

// helpView renders the help bar. The short form drops bindings from the
// middle until it fits, keeping help and quit at the end reachable.
func (m *model) helpView(w int) string {
	km := m.keys
	km.mode = m.helpMode()
	km.tokenPhase = m.token.phase
	switch m.screen {
	case screenHome:
		a, ok := m.selected()
		km.needsSignIn = ok && canSignInAgain(a.Status.State)
		km.noTokens = ok && a.Status.TokensUnknown
		km.longList = len(m.shown()) > m.pageRows || m.filter.Value() != ""
	case screenDetails:
		a, ok := m.account(m.details.userID)
		km.needsSignIn = ok && canSignInAgain(a.Status.State)
		km.noTokens = ok && a.Status.TokensUnknown
	}
	h := m.help
	if m.showHelp {
		h.ShowAll = true
		full := h.View(km)
		return fit(full, w, lipgloss.Height(full))
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

func (m *model) helpMode() helpMode {
	if m.modal != nil {
		if m.modal.fallbackURL != "" {
			return helpFallback
		}
		return helpModal
	}
	if m.confirm != nil {
		return helpConfirm
	}
	switch m.screen {
	case screenLogin:
		return helpLogin
	case screenDetails:
		return helpDetails
	case screenToken:
		return helpToken
	}
	if m.filtering {
		return helpFilter
	}
	if len(m.accounts) == 0 {
		return helpHomeEmpty
	}
	return helpHome
}

func (m *model) demoBanner(d *DemoInfo) string {
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

func gap(n int) string {
	if n < 1 {
		return " "
	}
	return strings.Repeat(" ", n)
}

// fit pads or cuts s to exactly h lines, each cut to w cells.
func fit(s string, w, h int) string {
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

func truncate(s string, w int) string {
	if lipgloss.Width(s) <= w {
		return s
	}
	return ansiTruncate(s, w)
}
