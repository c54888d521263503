package ui

import (
	"context"
	"errors"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"rsc.io/qr"

	"mxauth/matrix"
	"mxauth/ui/app"
	"mxauth/ui/qrcode"
)

// grantPhase is where an OAuth sign-in stands on its screen.
type grantPhase int

const (
	grantIdle     grantPhase = iota // no sign-in on this screen
	grantStarting                   // discovery, registration, the device or browser request
	grantWaiting                    // the code (or address) is shown; waiting for approval
	grantDenied
	grantExpired
	grantFailed
)

// browserWait bounds a browser sign-in: the loopback listener is not left
// open for a page nobody will finish.
const browserWait = 15 * time.Minute

type (
	grantStartedMsg struct {
		seq   int
		login oauthSignIn
		err   error
	}
	grantPollMsg struct {
		seq  int
		poll matrix.DevicePoll
		next tea.Cmd // waits for the next poll
	}
	grantDoneMsg struct {
		seq  int
		acct app.Account
		err  error
	}
	// openedMsg is the answer of the browser opener, for the screen that asked.
	openedMsg struct {
		seq int
		err error
	}
)

// grantScreen is the OAuth 2.0 sign-in: the device grant's code in large
// type with its page, a QR code and a countdown, or the browser sign-in's
// address, while the service waits for the approval.
type grantScreen struct {
	*common
	w, h   int
	seq    int
	params oauthParams
	phase  grantPhase
	login  oauthSignIn // the sign-in under way, nil while it starts
	info   oauthGrant
	stop   context.CancelFunc // ends the wait
	qr     *qr.Code           // of the page; nil when it fits no code
	poll   matrix.DevicePoll  // the last answer while waiting
	polled bool
	// opened: the browser was asked to open the address; openErr says why it could not.
	opened  bool
	openErr string
	errText string
	copy    copyState
	copied  string // what c or u sent to the clipboard
}

func newGrantScreen(c *common) *grantScreen { return &grantScreen{common: c} }

func (g *grantScreen) Title() string { return "OAuth sign-in" }

func (g *grantScreen) Busy() bool { return g.phase == grantStarting || g.phase == grantWaiting }

func (g *grantScreen) SetSize(w, h int) { g.w, g.h = w, h }

func (g *grantScreen) HelpContext(km *KeyMap) {
	km.mode = helpGrant
	km.grantPhase = g.phase
	km.grantBrowser = g.params.Browser
	km.canOpen = g.openURL != nil
}

// start begins a sign-in with p, ending any other this screen had.
func (g *grantScreen) start(p oauthParams) tea.Cmd {
	g.end()
	*g = grantScreen{common: g.common, w: g.w, h: g.h, seq: g.nextSeq(), params: p, phase: grantStarting}
	if g.oauth == nil {
		g.phase, g.errText = grantFailed, errNoOAuth.Error()
		return nil
	}
	seq, ob := g.seq, g.oauth
	return g.call(func(ctx context.Context) tea.Msg {
		l, err := ob.startOAuth(ctx, p)
		return grantStartedMsg{seq, l, err}
	})
}

// end stops the sign-in under way, if any: its answers are dropped from now on.
func (g *grantScreen) end() {
	g.seq = g.nextSeq()
	if g.stop != nil {
		g.stop()
		g.stop = nil
	}
	if g.login != nil {
		g.login.close()
		g.login = nil
	}
}

func (g *grantScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return g.onKey(msg)
	case tea.ClipboardMsg:
		if g.screen == screenGrant && g.copy == copySent && g.copied != "" && msg.Content == g.copied {
			g.copy = copyConfirmed
		}
	case grantStartedMsg:
		return g.started(msg)
	case grantPollMsg:
		if msg.seq != g.seq {
			return nil
		}
		if g.phase == grantWaiting {
			g.poll, g.polled = msg.poll, true
		}
		return msg.next
	case grantDoneMsg:
		return g.done(msg)
	case openedMsg:
		if msg.seq == g.seq {
			g.opened = msg.err == nil
			if msg.err != nil {
				g.openErr = clean(msg.err.Error())
			}
		}
	}
	return nil
}

func (g *grantScreen) onKey(k tea.KeyPressMsg) tea.Cmd {
	km := g.keys
	switch {
	case key.Matches(k, km.Cancel):
		cancelled := g.phase == grantStarting || g.phase == grantWaiting
		g.end()
		g.phase = grantIdle
		g.nav.show(screenLogin)
		if cancelled {
			g.setStatus("sign-in cancelled", false)
		}
		return nil
	case key.Matches(k, km.Help):
		g.showHelp = !g.showHelp
		return nil
	}
	switch g.phase {
	case grantWaiting:
		return g.waitingKey(k)
	case grantDenied, grantExpired, grantFailed:
		switch {
		case key.Matches(k, km.NewCode):
			return g.start(g.params)
		case g.switchKey(k):
			return g.switchFlow()
		}
	}
	return nil
}

// switchKey says k asks for the other way of signing in.
func (g *grantScreen) switchKey(k tea.KeyPressMsg) bool {
	if g.params.Browser {
		return key.Matches(k, g.keys.DeviceCode)
	}
	return key.Matches(k, g.keys.Browser)
}

func (g *grantScreen) waitingKey(k tea.KeyPressMsg) tea.Cmd {
	km := g.keys
	info := g.info
	switch {
	case g.switchKey(k):
		return g.switchFlow()
	case g.params.Browser && key.Matches(k, km.CopyURL):
		return g.copyText(info.AuthURL)
	case g.params.Browser && key.Matches(k, km.OpenPage):
		return g.openCmd(info.AuthURL)
	case !g.params.Browser && key.Matches(k, km.CopyCode):
		return g.copyText(info.UserCode)
	case !g.params.Browser && key.Matches(k, km.CopyLink):
		return g.copyText(info.qrText())
	case !g.params.Browser && key.Matches(k, km.OpenPage):
		return g.openCmd(info.qrText())
	}
	return nil
}

// switchFlow goes from the device grant to the browser sign-in or back.
func (g *grantScreen) switchFlow() tea.Cmd {
	p := g.params
	p.Browser = !p.Browser
	return g.start(p)
}

func (g *grantScreen) copyText(s string) tea.Cmd {
	if s == "" {
		return nil
	}
	g.copy, g.copied = copySent, s
	return copyCmd(s)
}

// openCmd opens addr in this computer's browser, if it has one.
func (g *grantScreen) openCmd(addr string) tea.Cmd {
	open := g.openURL
	if open == nil || addr == "" {
		return nil
	}
	seq := g.seq
	return g.call(func(context.Context) tea.Msg { return openedMsg{seq, open(addr)} })
}

func (g *grantScreen) started(msg grantStartedMsg) tea.Cmd {
	if msg.seq != g.seq {
		if msg.login != nil {
			msg.login.close() // cancelled while it started: nothing may stay open
		}
		return nil
	}
	if msg.err != nil {
		g.failed(msg.err)
		return nil
	}
	g.login, g.info, g.phase = msg.login, msg.login.grant(), grantWaiting
	g.poll = matrix.DevicePoll{Interval: g.info.Interval}
	if !g.params.Browser {
		g.qr, _ = qr.Encode(g.info.qrText(), qr.L) // nil when too long: the text alone is shown
	}
	limit := browserWait
	if !g.params.Browser {
		// The wait ends on its own when the code expires; this is only a backstop.
		limit = 30 * time.Minute
		if !g.info.ExpiresAt.IsZero() {
			limit = max(0, g.info.ExpiresAt.Sub(g.now())) + time.Minute
		}
	}
	ctx, stop := context.WithTimeout(g.ctx, limit)
	g.stop = stop
	cmds := []tea.Cmd{g.waitCmd(ctx)}
	if g.params.Browser {
		cmds = append(cmds, g.openCmd(g.info.AuthURL))
	}
	return tea.Batch(cmds...)
}

// waitCmd waits for the sign-in to finish, passing each poll answer on.
func (g *grantScreen) waitCmd(ctx context.Context) tea.Cmd {
	polls := make(chan matrix.DevicePoll, 4)
	seq, login := g.seq, g.login
	onPoll := func(p matrix.DevicePoll) {
		select {
		case polls <- p:
		default: // the screen is behind; a later answer says the same
		}
	}
	var nextPoll tea.Cmd
	nextPoll = func() tea.Msg {
		p, ok := <-polls
		if !ok {
			return nil
		}
		return grantPollMsg{seq, p, nextPoll}
	}
	wait := g.callCtx(ctx, func(ctx context.Context) tea.Msg {
		defer close(polls)
		acct, err := login.wait(ctx, onPoll)
		return grantDoneMsg{seq, acct, err}
	})
	return tea.Batch(wait, nextPoll)
}

func (g *grantScreen) done(msg grantDoneMsg) tea.Cmd {
	if msg.seq != g.seq {
		return nil
	}
	if g.stop != nil {
		g.stop()
		g.stop = nil
	}
	if g.login != nil {
		g.login.close()
		g.login = nil
	}
	if msg.err != nil {
		g.failed(msg.err)
		return nil
	}
	g.phase = grantIdle
	g.nav.signedIn(msg.acct)
	return nil
}

// failed says how the sign-in ended.
func (g *grantScreen) failed(err error) {
	switch {
	case errors.Is(err, context.DeadlineExceeded) && g.params.Browser:
		g.phase, g.errText = grantFailed, "The browser sign-in was not finished within "+countdown(browserWait)+"."
		return
	}
	switch grantEndOf(err) {
	case grantEndDenied:
		g.phase = grantDenied
	case grantEndExpired:
		g.phase = grantExpired
	default:
		g.phase, g.errText = grantFailed, "Sign-in failed: "+describe(err)
	}
}

// server names where the sign-in goes, as the user gave it until the server answered.
func (g *grantScreen) server() string {
	if g.info.BaseURL != "" {
		return g.info.BaseURL
	}
	return g.params.Homeserver
}

// needsRoom says whether the QR code only fits once the spacer and status
// line give up their rows.
func (g *grantScreen) needsRoom(bodyH int) bool {
	return g.phase == grantWaiting && !g.params.Browser && g.qr != nil && qrcode.Rows(g.qr) > bodyH
}

func (g *grantScreen) View() string {
	s := g.styles
	ww := max(20, min(72, g.w-4))
	who := s.Header.Render("Sign in to ") + clean(g.server())
	if u := g.params.User; u != "" {
		who += s.Muted.Render(" as ") + s.UserID.Render(clean(u))
	}
	msg := func(lines ...string) string {
		return indent(truncate(who, g.w-2)+"\n\n"+strings.Join(lines, "\n"), "  ")
	}
	switch g.phase {
	case grantStarting:
		what := "asking the server for a sign-in code…"
		if g.params.Browser {
			what = "preparing the browser sign-in…"
		}
		return msg(g.spin.View() + " " + what)
	case grantDenied:
		return msg(s.Warn.Render(wrap("The sign-in was refused on the approval page, so no account was added.", ww)), "",
			s.Muted.Render(wrap("n starts again · esc goes back", ww)))
	case grantExpired:
		return msg(s.Warn.Render(wrap("The code expired before the sign-in was approved. Nothing was added.", ww)), "",
			s.Muted.Render(wrap("n gets a new code · esc goes back", ww)))
	case grantFailed:
		other := "b signs in with a browser instead"
		if g.params.Browser {
			other = "b signs in with a code instead"
		}
		return msg(s.Error.Render(wrap(g.errText, ww)), "", s.Muted.Render(wrap("n tries again · "+other+" · esc goes back", ww)))
	}
	if g.params.Browser {
		return g.browserView(who)
	}
	return g.deviceView(who)
}

// urlLines shows an address whole, broken across lines when it is long: an
// address cut short would lead nowhere.
func urlLines(u string, w int) string {
	return ansi.Hardwrap(matrix.SanitizeLimit(u, maxURLRunes), max(10, w), false)
}

// maxURLRunes bounds an address on screen. A browser sign-in's address
// (PKCE challenge, state, scope, redirect) is longer than a message.
const maxURLRunes = 4096

// copyLine says what became of the last copy, or how to copy.
func (g *grantScreen) copyLine(hint string, w int) []string {
	s := g.styles
	switch g.copy {
	case copyConfirmed:
		return []string{s.OK.Render(copyNotes[copyConfirmed])}
	case copySent:
		var out []string
		for _, l := range wrapLines(copyNotes[copySent], w) {
			out = append(out, s.Warn.Render(l))
		}
		return out
	}
	return []string{s.Muted.Render(fitWords(hint, w))}
}

// waitLine is the spinner with the countdown to the code's expiry.
func (g *grantScreen) waitLine(w int) []string {
	s := g.styles
	now := g.now()
	line := g.spin.View() + " waiting for approval"
	if exp := g.info.ExpiresAt; !exp.IsZero() {
		if left := exp.Sub(now); left > 0 {
			if long := line + " · expires in " + countdown(left); lipgloss.Width(long) <= w {
				line = long
			} else {
				line = g.spin.View() + " code expires in " + countdown(left) // narrow: the countdown counts most
			}
		} else {
			line = s.Warn.Render("the code has expired")
		}
	}
	out := []string{truncate(line, w)}
	if iv := g.poll.Interval; iv > 0 {
		text := "checking every " + countdown(iv)
		switch {
		case g.poll.SlowDown:
			out = append(out, s.Warn.Render(fitWords("The server asked mxauth to slow down: now "+text+".", w)))
		case g.polled:
			out = append(out, s.Muted.Render(fitWords("not approved yet · "+text, w)))
		default:
			out = append(out, s.Muted.Render(fitWords(text, w)))
		}
	}
	return out
}

func (g *grantScreen) deviceView(who string) string {
	s := g.styles
	w, h := g.w, g.h
	info := g.info
	var qrText string
	qrW, qrH := 0, 0
	if g.qr != nil {
		qrText, qrW = qrcode.Draw(g.qr, s.QR, qrcode.InkLight(s.NoColor, g.darkBG))
		qrH = lipgloss.Height(qrText)
	}
	const minCol = 36
	showQR := g.qr != nil && qrH <= h && qrW+4+minCol <= w
	colW := w - 4
	if showQR {
		colW = w - qrW - 5
	}
	code := matrix.Sanitize(info.UserCode)
	lines := []string{truncate(who, colW), ""}
	page := "Open this page on any device, your phone or a laptop:"
	if showQR {
		page = "Scan the QR code, or open this page:"
	}
	lines = append(lines, s.Label.Render(fitWords(page, colW)), s.Value.Render(urlLines(info.VerificationURI, colW)))
	if big, ok := bigText(code, colW); ok {
		lines = append(lines, s.Label.Render(fitWords("and enter the code:", colW)), "", s.Code.Render(big), "",
			s.Label.Render("code ")+s.Code.Render(code))
	} else {
		lines = append(lines, s.Label.Render(fitWords("and enter the code:", colW)), s.Code.Render(ansi.Hardwrap(code, colW, false)))
	}
	if info.VerificationURIComplete != "" && showQR {
		lines = append(lines, s.Muted.Render(fitWords("(the QR code fills the code in for you)", colW)))
	}
	lines = append(lines, g.copyLine("c copies the code · u the address", colW)...)
	lines = append(lines, "")
	lines = append(lines, g.waitLine(colW)...)
	if g.openErr != "" {
		lines = append(lines, s.Warn.Render(fitWords("Could not open a browser: "+g.openErr, colW)))
	}
	col := strings.Join(lines, "\n")
	if extra := "b signs in with a browser on this computer instead."; lipgloss.Height(col)+2 <= h {
		if g.qr != nil && !showQR {
			extra = "Make the terminal larger to see a QR code. " + extra
		}
		col += "\n\n" + s.Muted.Render(wrap(extra, colW))
	}
	if !showQR {
		return indent(col, "  ")
	}
	return lipgloss.JoinHorizontal(lipgloss.Top, " "+strings.ReplaceAll(qrText, "\n", "\n "), "   ", col)
}

func (g *grantScreen) browserView(who string) string {
	s := g.styles
	colW := max(20, g.w-4)
	lines := []string{truncate(who, colW), ""}
	switch {
	case g.opened:
		lines = append(lines, wrap("Your browser was opened at the server's sign-in page. Finish there; this screen goes on by itself.", min(colW, 72)))
	case g.openErr != "":
		lines = append(lines, s.Warn.Render(fitWords("Could not open a browser: "+g.openErr, colW)),
			wrap("Open this address in a browser on this computer:", min(colW, 72)))
	default:
		lines = append(lines, wrap("Open this address in a browser on this computer:", min(colW, 72)))
	}
	lines = append(lines, "", s.Value.Render(urlLines(g.info.AuthURL, colW)), "")
	lines = append(lines, g.copyLine("c copies the address", colW)...)
	lines = append(lines, "", truncate(g.spin.View()+" waiting for the browser sign-in…", colW), "",
		s.Muted.Render(wrap("The page returns to mxauth on this computer (127.0.0.1), so the browser must run here. Over SSH or on another device, b signs in with a code instead.", min(colW, 72))))
	return indent(strings.Join(lines, "\n"), "  ")
}
