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

type tokenPhase int

const (
	tokenChecking tokenPhase = iota
	tokenUnsupported
	tokenMinting
	tokenAuth // the password modal is open
	tokenShown
	tokenExpired
	tokenRateLimited
	tokenFailed
	tokenCancelled
)

type (
	checkTokenMsg struct {
		seq    int
		userID string
		check  app.LoginTokenCheck
		err    error
	}
	mintMsg struct {
		seq    int
		userID string
		resp   *matrix.GetLoginTokenResponse
		err    error
	}
)

// copyState is how far a copy through the terminal (OSC 52) got. Terminals
// do not acknowledge writes; a read-back that returns the token is the only
// confirmation, and most terminals refuse reads.
type copyState int

const (
	copyNone      copyState = iota
	copySent                // written to the terminal; it may have ignored it
	copyConfirmed           // the terminal's clipboard read back as the token
)

// copyNotes are the words for each copy state, shared by every screen that copies.
var copyNotes = [...]string{
	copySent:      "sent to the terminal's clipboard (OSC 52); your terminal may not support it",
	copyConfirmed: "copied ✓ (the terminal's clipboard holds it)",
}

// copyCmd writes text to the terminal's clipboard, then asks for it back.
func copyCmd(text string) tea.Cmd {
	return tea.Sequence(tea.SetClipboard(text), tea.ReadClipboard)
}

// tokenScreen mints a single-use login token and shows it as text and QR code.
type tokenScreen struct {
	*common
	w, h       int
	seq        int
	userID     string
	homeserver string
	phase      tokenPhase
	reason     string
	errText    string
	token      matrix.Secret
	issuedAt   time.Time
	expiresAt  time.Time
	retryAt    time.Time
	flow       *app.UIAFlow // this token's request: its UIA session, tries and waits
	copy       copyState
	from       screen   // where esc goes back to
	qr         *qr.Code // encoded once per token; nil when it does not fit a code
	// On a server without login tokens: the account page where a device
	// signed in with its own client is checked, and its QR code.
	accountURL string
	accountQR  *qr.Code
}

// open checks whether a's server can mint login tokens, then mints one.
func (t *tokenScreen) open(a app.Account, from screen) tea.Cmd {
	*t = tokenScreen{common: t.common, w: t.w, h: t.h, seq: t.nextSeq(), userID: a.UserID, homeserver: a.Homeserver, phase: tokenChecking, from: from}
	seq, u, b := t.seq, a.UserID, t.b
	return t.call(func(ctx context.Context) tea.Msg {
		c, err := b.CheckLoginToken(ctx, u)
		return checkTokenMsg{seq, u, c, err}
	})
}

func (t *tokenScreen) Title() string { return "Login token" }

func (t *tokenScreen) Busy() bool { return t.phase == tokenChecking || t.phase == tokenMinting }

func (t *tokenScreen) SetSize(w, h int) { t.w, t.h = w, h }

func (t *tokenScreen) HelpContext(km *KeyMap) {
	km.mode = helpToken
	km.tokenPhase = t.phase
	km.accountPage = t.phase == tokenUnsupported && t.accountURL != ""
}

// needsRoom says whether the QR code only fits once the spacer and status
// line give up their rows.
func (t *tokenScreen) needsRoom(bodyH int) bool {
	return t.phase == tokenShown && t.qr != nil && qrcode.Rows(t.qr) > bodyH
}

func (t *tokenScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return t.onKey(msg)
	case tickMsg:
		return t.tick(t.now())
	case tea.ClipboardMsg:
		t.clipboardRead(msg)
	case checkTokenMsg, mintMsg:
		return t.onResult(msg)
	}
	return nil
}

// mintCmd asks for a token; auth is nil for the first request of a UIA session.
func (t *tokenScreen) mintCmd(auth *matrix.AuthData) tea.Cmd {
	if t.uia() == nil {
		t.phase = tokenMinting
	}
	seq, u, b := t.seq, t.userID, t.b
	return t.call(func(ctx context.Context) tea.Msg {
		r, err := b.MintLoginToken(ctx, u, auth)
		return mintMsg{seq, u, r, err}
	})
}

func (t *tokenScreen) newToken() tea.Cmd {
	t.seq = t.nextSeq()
	t.token, t.copy, t.errText, t.qr = "", copyNone, "", nil
	t.expiresAt, t.retryAt = time.Time{}, time.Time{}
	return t.firstMint()
}

// firstMint starts a new request, with its own UIA flow.
func (t *tokenScreen) firstMint() tea.Cmd {
	t.flow = app.NewUIAFlow(t.userID)
	return t.mintCmd(nil)
}

func (t *tokenScreen) onKey(k tea.KeyPressMsg) tea.Cmd {
	km := t.keys
	switch {
	case key.Matches(k, km.Back):
		t.nav.show(t.from)
		*t = tokenScreen{common: t.common, w: t.w, h: t.h, seq: t.nextSeq()} // forget the token
	case key.Matches(k, km.Quit):
		return tea.Quit
	case key.Matches(k, km.Help):
		t.showHelp = !t.showHelp
	case t.phase == tokenUnsupported && t.accountURL != "" && key.Matches(k, km.AccountPage):
		return t.openPage(t.accountURL, "the account page", "Account page",
			"Check the new device here once it is signed in with its own client.", nil)
	case t.phase == tokenUnsupported && t.accountURL != "" && key.Matches(k, km.CopyURL):
		t.copy = copySent
		return copyCmd(t.accountURL)
	case key.Matches(k, km.Copy):
		if t.phase == tokenShown && !t.token.IsZero() {
			t.copy = copySent
			// OSC 52: the token travels through the terminal, so only on this key.
			return copyCmd(t.token.Reveal())
		}
	case key.Matches(k, km.NewToken):
		switch t.phase {
		case tokenUnsupported:
			if a, ok := t.account(t.userID); ok {
				return t.nav.openToken(a)
			}
		case tokenShown, tokenExpired, tokenFailed, tokenCancelled:
			return t.newToken()
		}
	}
	return nil
}

func (t *tokenScreen) onResult(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case checkTokenMsg:
		if msg.seq != t.seq || t.screen != screenToken {
			return nil
		}
		switch {
		case msg.err != nil:
			t.phase, t.errText = tokenFailed, "Could not check the server: "+describe(msg.err)
		case !msg.check.Supported:
			t.phase, t.reason = tokenUnsupported, clean(msg.check.Reason)
			if u := msg.check.AccountURL; u != "" && matrix.Sanitize(u) == u {
				t.accountURL = u
				t.accountQR, _ = qr.Encode(u, qr.L) // nil when too long: the address alone
			}
		default:
			return t.firstMint()
		}
	case mintMsg:
		if msg.seq != t.seq || t.screen != screenToken {
			return nil
		}
		if t.flow == nil {
			t.flow = app.NewUIAFlow(t.userID)
		}
		step := t.flow.Next(msg.err)
		switch step.Kind {
		case app.UIAPassword, app.UIABrowser:
			t.phase = tokenAuth
			t.showChallenge(uiaRequest{purpose: modalMintToken, userID: t.userID, flow: t.flow, resend: t.mintCmd, onCancel: t.cancelled}, step.Challenge)
			return nil
		case app.UIAWait:
			t.closeUIA()
			t.phase, t.retryAt = tokenRateLimited, t.now().Add(step.Wait)
			return nil
		}
		if step.Err != nil {
			// A failure the dialog can retry keeps it open; one that ends the
			// flow (its passwords used up, a long rate limit) ends it.
			if md := t.uia(); md != nil && !errors.Is(step.Err, app.ErrWrongPassword) && !matrix.IsLimitExceeded(step.Err) {
				md.fail(describe(step.Err))
				return nil
			}
			t.closeUIA()
			t.phase, t.errText = tokenFailed, "Could not mint a token: "+describe(step.Err)
			return nil
		}
		t.closeUIA()
		r := msg.resp
		base := r.ReceivedAt
		if base.IsZero() {
			base = t.now()
		}
		t.phase, t.token, t.copy = tokenShown, r.LoginToken, copyNone
		t.qr, _ = qr.Encode(r.LoginToken.Reveal(), qr.L) // too long for any code: shown as text only
		t.issuedAt, t.expiresAt = base, time.Time{}
		if r.ExpiresInMS > 0 {
			t.expiresAt = base.Add(time.Duration(r.ExpiresInMS) * time.Millisecond)
		}
	}
	return nil
}

// clipboardRead confirms a copy when the terminal's clipboard reads back as
// what was sent.
func (t *tokenScreen) clipboardRead(msg tea.ClipboardMsg) {
	if t.screen == screenToken && t.copy == copySent && !t.token.IsZero() && msg.Content == t.token.Reveal() {
		t.copy = copyConfirmed
	}
	if t.screen == screenToken && t.copy == copySent && t.accountURL != "" && msg.Content == t.accountURL {
		t.copy = copyConfirmed
	}
}

// cancelled follows the password dialog's esc: no token, and an answer
// still on its way is dropped.
func (t *tokenScreen) cancelled() {
	t.seq = t.nextSeq()
	t.phase = tokenCancelled
	t.flow = nil
}

// closeUIA closes the password dialog once the server has answered for good.
func (t *tokenScreen) closeUIA() {
	if t.uia() != nil {
		t.dialog = nil
	}
}

// tokenTick expires a shown token and resends after a rate limit.
func (t *tokenScreen) tick(now time.Time) tea.Cmd {
	switch t.phase {
	case tokenShown:
		if !t.expiresAt.IsZero() && !now.Before(t.expiresAt) {
			t.phase, t.token, t.copy, t.qr = tokenExpired, "", copyNone, nil
		}
	case tokenRateLimited:
		if !now.Before(t.retryAt) {
			// The password stage, if any, is already done in the flow's session.
			return t.mintCmd(t.flow.Resend())
		}
	}
	return nil
}

func (t *tokenScreen) View() string {
	w, h := t.w, t.h
	s := t.styles
	who := s.UserID.Render(clean(t.userID)) + s.Muted.Render(" on ") + clean(t.homeserver)
	msg := func(lines ...string) string {
		return "  " + who + "\n\n" + indent(strings.Join(lines, "\n"), "  ")
	}
	now := t.now()
	ww := min(72, w-4)
	switch t.phase {
	case tokenChecking:
		return msg(t.spin.View() + " checking whether the server can mint login tokens…")
	case tokenUnsupported:
		if t.accountURL != "" {
			return t.accountPageView(who)
		}
		lines := []string{s.Warn.Render("This server cannot mint login tokens for this account.")}
		if t.reason != "" {
			lines = append(lines, "", wrap(t.reason, ww))
		}
		lines = append(lines, "", s.Muted.Render(wrap("Sign the new device in with your password instead. n checks again · esc goes back.", ww)))
		return msg(lines...)
	case tokenMinting:
		return msg(t.spin.View() + " asking the server for a login token…")
	case tokenAuth:
		return msg(s.Muted.Render("Waiting for your password…"))
	case tokenRateLimited:
		return msg(s.Warn.Render("The server is rate limiting login tokens."),
			"Trying again in "+app.FormatWait(t.retryAt.Sub(now))+"…")
	case tokenFailed:
		return msg(s.Error.Render(wrap(t.errText, ww)), "", s.Muted.Render("n tries again · esc goes back"))
	case tokenCancelled:
		return msg("No token was minted.", "", s.Muted.Render("n starts again · esc goes back"))
	case tokenExpired:
		return msg(s.Warn.Render("The token has expired — press n for a new one."))
	}
	return t.shownView(w, h)
}

// tokenShownView puts the QR code beside the token so both fit in 80x24;
// secondary text goes first when space runs out.
func (t *tokenScreen) shownView(w, h int) string {
	s := t.styles
	now := t.now()
	var qrText string
	qrW, qrH := 0, 0
	if t.qr != nil {
		qrText, qrW = qrcode.Draw(t.qr, s.QR, qrcode.InkLight(s.NoColor, t.darkBG))
		qrH = lipgloss.Height(qrText)
	}
	showQR := t.qr != nil && qrH <= h && qrW+2+28 <= w

	colW := w - 2
	if showQR {
		colW = w - qrW - 4
	}
	tok := t.token.Reveal()
	inner := max(8, colW-4)
	box := s.Token.Render(ansi.Hardwrap(tok, inner, false))

	left := t.expiresAt.Sub(now)
	bar := t.bar
	bar.SetWidth(max(10, min(lipgloss.Width(box), colW)))
	pct := 0.0
	if total := t.expiresAt.Sub(t.issuedAt); total > 0 && left > 0 {
		pct = float64(left) / float64(total)
	}
	expiry := "expires in " + countdown(left)
	if t.expiresAt.IsZero() {
		expiry, pct = "the server gave no expiry", 1
	}

	lines := []string{
		s.Label.Render("Login token for"),
		s.UserID.Render(truncate(clean(t.userID), colW)),
		truncate(s.Muted.Render("on ")+clean(t.homeserver), colW),
		box,
		expiry,
		bar.ViewAs(pct),
	}
	switch t.copy {
	case copyConfirmed:
		lines = append(lines, s.OK.Render(copyNotes[copyConfirmed]))
	case copySent:
		for _, l := range wrapLines(copyNotes[copySent], colW) {
			lines = append(lines, s.Warn.Render(l))
		}
	default:
		lines = append(lines, s.Muted.Render("c copies it"))
	}
	col := strings.Join(lines, "\n")
	extra := "Single use. Type it, or scan the code, on the device you are signing in."
	if !showQR {
		extra = "Single use. Type it on the device you are signing in. Make the terminal larger to see a QR code."
		if t.qr == nil {
			extra = "Single use. Type it on the device you are signing in (it is too long for a QR code)."
		}
	}
	if extra = wrap(extra, colW); lipgloss.Height(col)+1+lipgloss.Height(extra) <= h {
		col += "\n\n" + extra
	}
	if !showQR {
		return indent(col, "  ")
	}
	return lipgloss.JoinHorizontal(lipgloss.Top, " "+strings.ReplaceAll(qrText, "\n", "\n "), "   ", col)
}

// accountPageView is the handoff on a server without login tokens (one that
// delegates sign-in): the new device signs in with its own client, and the
// account page, here with its QR code, is where it is checked and approved.
func (t *tokenScreen) accountPageView(who string) string {
	s := t.styles
	w, h := t.w, t.h
	var qrText string
	qrW, qrH := 0, 0
	if t.accountQR != nil {
		qrText, qrW = qrcode.Draw(t.accountQR, s.QR, qrcode.InkLight(s.NoColor, t.darkBG))
		qrH = lipgloss.Height(qrText)
	}
	showQR := t.accountQR != nil && qrH <= h && qrW+5+36 <= w
	colW := w - 4
	if showQR {
		colW = w - qrW - 5
	}
	ww := min(72, colW)
	lines := []string{truncate(who, colW), "", s.Warn.Render(wrap("This server cannot mint login tokens.", ww))}
	if t.reason != "" {
		// The service's reason says why and what to do instead.
		lines = append(lines, wrap(t.reason+".", ww), "", s.Header.Render("Your account page:"))
	} else {
		lines = append(lines, "", s.Header.Render("To sign in a new device:"),
			wrap("1. Sign it in with its own client (mxauth login on another computer shows a code to approve).", ww),
			wrap("2. Check or approve it on your account page:", ww))
	}
	lines = append(lines, s.Value.Render(urlLines(t.accountURL, colW)))
	switch t.copy {
	case copyConfirmed:
		lines = append(lines, s.OK.Render(wrap("Address "+copyNotes[copyConfirmed]+".", ww)))
	case copySent:
		lines = append(lines, s.Warn.Render(wrap("Address "+copyNotes[copySent]+".", ww)))
	}
	hint := "c copies the address · esc goes back"
	if t.openURL != nil {
		hint = "o opens the page · " + hint
	}
	if showQR {
		hint = "Or scan the code with your phone. " + hint
	}
	lines = append(lines, "", s.Muted.Render(wrap(hint, ww)))
	col := strings.Join(lines, "\n")
	if !showQR {
		return indent(col, "  ")
	}
	return lipgloss.JoinHorizontal(lipgloss.Top, " "+strings.ReplaceAll(qrText, "\n", "\n "), "   ", col)
}
