package ui

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

const (
	fieldHomeserver = iota
	fieldUser
	fieldPassword
	fieldDevice
	fieldCount
)

// loginErr classifies why a sign-in failed, so tests and the view agree on it.
type loginErr int

const (
	errNone loginErr = iota
	errValidation
	errWrongPassword
	errDeactivated
	errLocked
	errRateLimited
	errUnreachable
	errDiscovery
	errUnsupported
	errKeyring
	errOther
)

type (
	resolveDoneMsg struct {
		seq     int
		input   string
		baseURL string
		probe   *authProbe // the server's kind, when the backend can tell
		err     error
	}
	loginDoneMsg struct {
		seq        int
		input      string // what was resolved, if anything
		baseURL    string
		probe      *authProbe
		resolveErr error
		// stopped: the call only looked at the server; the form decides
		// what comes next (the OAuth sign-in, or asking for a password).
		stopped bool
		acct    app.Account
		err     error
	}
)

// loginScreen is the add-account and sign-in-again form.
type loginScreen struct {
	*common
	w, h     int
	inputs   [fieldCount]textinput.Model
	focus    int
	reauth   *app.Account // set when signing an existing account in again
	busy     bool         // signing in: the form is locked
	busyText string
	// resolving: discovery started on leaving the homeserver field; the form
	// stays editable meanwhile.
	resolving  bool
	resolveSeq int
	// resolvedFor is the homeserver text whose base URL is known, so submit
	// does not run discovery twice.
	resolvedFor string
	resolvedURL string
	// probe is the kind of the server at resolvedURL, when known.
	probe authProbe
	// usePassword: the user chose the password on a server that takes both.
	usePassword bool
	errText     string
	errKind     loginErr
	errField    int
	retryAt     time.Time // rate limited until then
	seq         int
}

func newLoginScreen(c *common) *loginScreen {
	f := &loginScreen{common: c}
	placeholders := [fieldCount]string{
		"matrix.example.org or @you:example.org", "your user name", "", "mxauth on " + hostOr(c.opt.Hostname),
	}
	for i := range f.inputs {
		in := textinput.New()
		in.Prompt = ""
		in.Placeholder = placeholders[i]
		in.CharLimit = 256
		in.SetStyles(c.styles.Input)
		in.SetVirtualCursor(true)
		f.inputs[i] = in
	}
	f.inputs[fieldPassword].EchoMode = textinput.EchoPassword
	f.inputs[fieldPassword].EchoCharacter = '•'
	return f
}

func hostOr(h string) string {
	if h == "" {
		return "this computer"
	}
	return h
}

func (f *loginScreen) Title() string {
	if f.reauth != nil {
		return "Sign in again"
	}
	return "Add account"
}

func (f *loginScreen) value(i int) string { return strings.TrimSpace(f.inputs[i].Value()) }

func (f *loginScreen) setFocus(i int) tea.Cmd {
	from := f.focus
	f.focus = (i + fieldCount) % fieldCount
	if f.focus == fieldPassword && f.oauthMode() {
		// No password on an OAuth sign-in: the field is skipped in the
		// direction the focus was moving.
		f.focus = fieldDevice
		if from == fieldDevice {
			f.focus = fieldUser
		}
	}
	var cmd tea.Cmd
	for j := range f.inputs {
		if j == f.focus {
			cmd = f.inputs[j].Focus()
		} else {
			f.inputs[j].Blur()
		}
	}
	return cmd
}

func (f *loginScreen) setError(kind loginErr, text string, field int) {
	f.errKind, f.errText, f.errField = kind, text, field
}

func (f *loginScreen) clearError() { f.setError(errNone, "", 0) }

// updateFocused passes a key or paste to the focused field. An error about
// that field is stale once the field changes, so it goes.
func (f *loginScreen) updateFocused(msg tea.Msg) tea.Cmd {
	before := f.inputs[f.focus].Value()
	var cmd tea.Cmd
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	if f.inputs[f.focus].Value() != before && f.errText != "" && f.errField == f.focus && f.errKind != errRateLimited {
		f.clearError()
	}
	return cmd
}

// open fills the form: empty for a new account, or pre-filled to sign an
// existing one in again (reusing its device when the server kept it).
func (f *loginScreen) open(reauth *app.Account) tea.Cmd {
	f.seq = f.nextSeq()
	f.inputs[fieldDevice].SetValue("mxauth on " + hostOr(f.opt.Hostname))
	cmd := f.setFocus(fieldHomeserver)
	if reauth != nil {
		a := *reauth
		f.reauth = &a
		f.inputs[fieldHomeserver].SetValue(a.Homeserver)
		f.resolvedFor, f.resolvedURL = a.Homeserver, a.Homeserver
		f.inputs[fieldUser].SetValue(a.UserID)
		if a.DisplayName != "" {
			f.inputs[fieldDevice].SetValue(a.DisplayName)
		}
		if a.OAuth {
			// Signed in through OAuth: again through OAuth, on the same
			// server, with a new code to approve.
			kind := a.Kind
			if kind != matrix.AuthOAuthPasswordCompat {
				kind = matrix.AuthOAuthOnly
			}
			f.probe = authProbe{BaseURL: a.Homeserver, Kind: kind}
			f.syncPlaceholders()
		}
		cmd = f.setFocus(fieldPassword)
	}
	return cmd
}

func (f *loginScreen) restyle() {
	for i := range f.inputs {
		f.inputs[i].SetStyles(f.styles.Input)
	}
}

func (f *loginScreen) Busy() bool { return f.busy || f.resolving }

func (f *loginScreen) HelpContext(km *KeyMap) {
	km.mode = helpLogin
	km.formOAuth = f.oauthMode()
	km.formCompat = f.compat()
}

// known says the server in the homeserver field has been looked at.
func (f *loginScreen) known() bool {
	return f.resolvedURL != "" && f.value(fieldHomeserver) == f.resolvedFor
}

// oauthMode says the form signs in through OAuth 2.0: the server is
// OAuth-aware and the user did not ask for the password instead.
func (f *loginScreen) oauthMode() bool {
	return f.oauth != nil && f.known() && f.probe.oauth() && !(f.usePassword && f.compat())
}

// compat says the server takes both OAuth and passwords, so the form can switch.
func (f *loginScreen) compat() bool {
	return f.oauth != nil && f.known() && f.probe.Kind == matrix.AuthOAuthPasswordCompat
}

func (f *loginScreen) SetSize(w, h int) {
	f.w, f.h = w, h
	if w > 0 {
		f.setWidth(w)
	}
}

// reset empties the form once it is left.
func (f *loginScreen) reset() {
	*f = *newLoginScreen(f.common)
}

func (f *loginScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return f.onKey(msg)
	case tea.PasteMsg:
		if !f.busy {
			return f.updateFocused(msg)
		}
	case tickMsg:
		f.tick(f.now())
	case loginDoneMsg:
		return f.loginDone(msg)
	case resolveDoneMsg:
		return f.resolveDone(msg)
	}
	return nil
}

// tick ends a rate limit's countdown.
func (f *loginScreen) tick(now time.Time) {
	if !f.retryAt.IsZero() && !now.Before(f.retryAt) {
		f.retryAt = time.Time{}
		if f.errKind == errRateLimited {
			f.setError(errOther, "You can try again now.", fieldPassword)
		}
	}
}

func (f *loginScreen) setWidth(w int) {
	iw := min(48, max(20, w-22))
	for i := range f.inputs {
		f.inputs[i].SetWidth(iw)
	}
}

func (f *loginScreen) onKey(k tea.KeyPressMsg) tea.Cmd {
	km := f.keys
	if key.Matches(k, km.Back) {
		if f.busy {
			// The call finishes in the background; its answer is dropped.
			f.nextSeq()
		}
		f.nav.show(screenHome)
		f.reset()
		return nil
	}
	if f.busy {
		return nil
	}
	switch {
	case f.compat() && ((f.usePassword && key.Matches(k, km.UseOAuth)) || (!f.usePassword && key.Matches(k, km.UsePassword))):
		f.usePassword = !f.usePassword
		f.clearError()
		if f.usePassword {
			f.syncPlaceholders()
			return f.setFocus(fieldPassword)
		}
		f.inputs[fieldPassword].SetValue("")
		f.syncPlaceholders()
		return f.setFocus(f.focus)
	case key.Matches(k, km.Next):
		return tea.Batch(f.leaveField(), f.setFocus(f.focus+1))
	case key.Matches(k, km.Prev):
		return tea.Batch(f.leaveField(), f.setFocus(f.focus-1))
	case key.Matches(k, km.Submit):
		return f.submitLogin()
	}
	return f.updateFocused(k)
}

// leaveField starts discovery when the user leaves a homeserver field holding
// something new, so the form can show what it found before submit.
// A full Matrix ID typed into the user field with no homeserver is looked
// up the same way.
func (f *loginScreen) leaveField() tea.Cmd {
	input := f.value(fieldHomeserver)
	if f.focus == fieldUser && input == "" && strings.HasPrefix(f.value(fieldUser), "@") && f.oauth != nil {
		input = f.value(fieldUser)
	} else if f.focus != fieldHomeserver {
		return nil
	}
	if input == "" || input == f.resolvedFor || f.reauth != nil {
		return nil
	}
	f.resolving, f.resolveSeq = true, f.nextSeq()
	f.clearError()
	seq := f.resolveSeq
	look := f.lookUp(input)
	return f.call(func(ctx context.Context) tea.Msg {
		u, pr, err := look(ctx)
		return resolveDoneMsg{seq: seq, input: input, baseURL: u, probe: pr, err: err}
	})
}

// lookUp finds the homeserver for input (a URL, a server name or a Matrix
// ID) and, when the backend can tell, the way it signs in.
func (f *loginScreen) lookUp(input string) func(ctx context.Context) (string, *authProbe, error) {
	b, ob := f.b, f.oauth
	return func(ctx context.Context) (string, *authProbe, error) {
		if ob == nil {
			u, err := b.Resolve(ctx, input)
			return u, nil, err
		}
		hs, user := input, ""
		if strings.HasPrefix(input, "@") {
			hs, user = "", input
		}
		pr, err := ob.probeAuth(ctx, hs, user)
		if err != nil {
			return "", nil, err
		}
		return pr.BaseURL, &pr, nil
	}
}

func (f *loginScreen) resolveDone(msg resolveDoneMsg) tea.Cmd {
	if f.screen != screenLogin || msg.seq != f.resolveSeq || !f.resolving {
		return nil
	}
	f.resolving = false
	if f.value(fieldHomeserver) != msg.input {
		return nil // edited since; the next submit or tab discovers again
	}
	if msg.err != nil {
		// The user may be typing elsewhere (a password, even): the error is
		// shown, the focus stays where the user put it.
		f.setLoginError(msg.err, msg.input, true, false)
		return nil
	}
	f.applyResolved(msg.input, msg.baseURL, msg.probe)
	if f.focus == fieldPassword && f.oauthMode() {
		return f.setFocus(fieldDevice) // the field the user was in is gone
	}
	return nil
}

func (f *loginScreen) applyResolved(input, baseURL string, probe *authProbe) {
	if f.value(fieldHomeserver) == input || f.value(fieldHomeserver) == "" {
		f.inputs[fieldHomeserver].SetValue(baseURL)
	}
	f.resolvedFor, f.resolvedURL = baseURL, baseURL
	f.probe = authProbe{BaseURL: baseURL}
	if probe != nil {
		f.probe = *probe
	}
	if f.oauthMode() {
		f.inputs[fieldPassword].SetValue("") // not sent anywhere: not kept either
	}
	f.syncPlaceholders()
	if strings.HasPrefix(input, "@") && f.value(fieldUser) == "" {
		f.inputs[fieldUser].SetValue(input)
	}
}

func (f *loginScreen) submitLogin() tea.Cmd {
	now := f.now()
	if !f.retryAt.IsZero() && now.Before(f.retryAt) {
		return nil // the countdown is already on screen
	}
	hs, user, pw := f.value(fieldHomeserver), f.value(fieldUser), f.inputs[fieldPassword].Value()
	device := f.value(fieldDevice)
	if device == "" {
		device = "mxauth on " + hostOr(f.opt.Hostname)
	}
	if hs == "" && strings.HasPrefix(user, "@") {
		hs = user // a full Matrix ID names its server
	}
	if strings.HasPrefix(hs, "@") && user == "" {
		user = hs
		f.inputs[fieldUser].SetValue(user)
	}
	if hs == "" {
		f.setError(errValidation, "Enter a homeserver, or your full Matrix ID like @alice:example.org.", fieldHomeserver)
		return f.setFocus(fieldHomeserver)
	}
	needResolve := hs != f.resolvedFor
	if !needResolve && f.oauthMode() {
		return f.startOAuth(user, device)
	}
	// Until the server has been looked at, the form cannot tell whether it
	// needs a password at all: it looks first, then asks for what is missing.
	lookFirst := needResolve && f.oauth != nil && (user == "" || pw == "")
	switch {
	case lookFirst:
	case user == "":
		f.setError(errValidation, "Enter your user name.", fieldUser)
		return f.setFocus(fieldUser)
	case pw == "":
		f.setError(errValidation, "Enter your password.", fieldPassword)
		return f.setFocus(fieldPassword)
	}
	p := app.LoginParams{User: user, Password: matrix.Secret(pw), DeviceName: device}
	if f.reauth != nil && f.reauth.Status.State == session.StateNeedsSignIn {
		p.DeviceID = f.reauth.DeviceID // soft logout keeps the device
	}
	f.resolving, f.resolveSeq = false, f.nextSeq() // the sign-in call discovers itself
	input, base := hs, f.resolvedURL
	f.busy, f.busyText = true, "signing in…"
	if needResolve {
		f.busyText = "discovering " + clean(hs) + "…"
	}
	f.clearError()
	seq := f.seq
	b := f.b
	look := f.lookUp(input)
	usePassword := f.usePassword
	return f.call(func(ctx context.Context) tea.Msg {
		out := loginDoneMsg{seq: seq}
		if needResolve {
			u, pr, err := look(ctx)
			if err != nil {
				out.input, out.resolveErr = input, err
				return out
			}
			out.input, out.probe, base = input, pr, u
			if lookFirst || (pr != nil && pr.oauth() && !(usePassword && pr.Kind == matrix.AuthOAuthPasswordCompat)) {
				out.baseURL, out.stopped = u, true
				return out
			}
		}
		out.baseURL = base
		p.Homeserver = base
		out.acct, out.err = b.Login(ctx, p)
		return out
	})
}

func (f *loginScreen) loginDone(msg loginDoneMsg) tea.Cmd {
	if f.screen != screenLogin || msg.seq != f.seq {
		return nil
	}
	f.busy = false
	if msg.resolveErr != nil {
		f.setLoginError(msg.resolveErr, msg.input, true, true)
		return nil
	}
	if msg.input != "" {
		f.applyResolved(msg.input, msg.baseURL, msg.probe)
	}
	if msg.stopped {
		if f.known() {
			return f.submitLogin() // now the form knows what the server needs
		}
		return nil
	}
	if msg.err != nil {
		f.setLoginError(msg.err, msg.baseURL, false, true)
		return nil
	}
	f.nav.signedIn(msg.acct)
	f.reset()
	return nil
}

// startOAuth hands the sign-in to the OAuth screen; esc there comes back here.
func (f *loginScreen) startOAuth(user, device string) tea.Cmd {
	f.clearError()
	return f.nav.openGrant(oauthParams{Homeserver: f.resolvedURL, User: user, DeviceName: device})
}

// setLoginError says precisely what went wrong. After a submit (the form was
// locked, so no key was typed meanwhile) it puts the cursor where the user can
// fix it; after a background check it leaves the cursor alone.
func (f *loginScreen) setLoginError(err error, where string, resolving, moveFocus bool) {
	where = clean(where)
	defer func() {
		if moveFocus && f.errField != f.focus && f.errKind != errOther {
			f.setFocus(f.errField)
		}
	}()
	var de *matrix.DiscoveryError
	var sp session.StoreProblem
	switch {
	case errors.As(err, &de):
		reason := clean(de.Reason)
		text := "Could not find the homeserver for " + where + " automatically"
		if de.Outcome == matrix.DiscoveryFailError {
			text = where + " does not lead to a working homeserver"
		}
		if reason != "" {
			text += " (" + reason + ")"
		}
		text += "."
		switch {
		case timedOut(err):
			text = "Looking up the homeserver for " + where + " timed out."
		case matrix.IsTransient(err):
			text += " The server may be unreachable."
		}
		f.setError(errDiscovery, text+" Enter its URL, for example https://matrix.example.org.", fieldHomeserver)
		f.resolvedFor, f.resolvedURL, f.probe = "", "", authProbe{}
	case matrix.IsUserDeactivated(err):
		f.setError(errDeactivated, "This account has been deactivated on the server; it cannot sign in.", fieldUser)
	case matrix.IsUserLocked(err):
		f.setError(errLocked, "This account is locked by the server administrator.", fieldUser)
	case matrix.IsLimitExceeded(err):
		d, ok := matrix.RetryAfter(err)
		if !ok || d <= 0 {
			d = 10 * time.Second
		}
		f.retryAt = f.now().Add(d)
		f.setError(errRateLimited, "Too many attempts.", fieldPassword)
	case matrix.IsForbidden(err):
		f.setError(errWrongPassword, "Wrong user name or password.", fieldPassword)
		f.inputs[fieldPassword].SetValue("")
	case matrix.IsUnsupported(err):
		text := "This server does not offer password login (it may only offer single sign-on or OAuth), so mxauth cannot sign in here."
		if resolving {
			text = "No Matrix homeserver answers at " + where + ". Check the URL."
			f.setError(errDiscovery, text, fieldHomeserver)
			return
		}
		f.setError(errUnsupported, text, fieldHomeserver)
	case errors.As(err, &sp) && sp.StoreUnavailable():
		// The error says whether the server was asked and what, if anything, was lost.
		f.setError(errKeyring, "The keyring is locked or unavailable: "+clean(err.Error()), fieldPassword)
	case matrix.IsTransient(err):
		if where == "" {
			where = "the server"
		}
		if timedOut(err) {
			f.setError(errUnreachable, where+" did not answer: the request timed out. Check the address and your connection, then try again.", fieldHomeserver)
			return
		}
		f.setError(errUnreachable, "Cannot reach "+where+". Check the address and your connection, then try again.", fieldHomeserver)
	default:
		if resolving {
			// The look-up failed: the server's answer about how it signs in.
			f.setError(errDiscovery, "Could not tell how "+where+" signs in: "+describe(err), fieldHomeserver)
			f.resolvedFor, f.resolvedURL, f.probe = "", "", authProbe{}
			return
		}
		f.setError(errOther, "Sign-in failed: "+describe(err), f.focus)
	}
}

func (f *loginScreen) View() string {
	w := f.w
	s := f.styles
	var b strings.Builder
	if f.reauth != nil {
		b.WriteString("  Sign in again as " + s.UserID.Render(clean(f.reauth.UserID)))
		if f.reauth.Status.State == session.StateNeedsSignIn {
			b.WriteString(s.Muted.Render(" · device " + clean(f.reauth.DeviceID) + " is kept"))
		}
	} else {
		b.WriteString("  " + s.Header.Render("Add a Matrix account"))
	}
	b.WriteString("\n\n")
	labels := [fieldCount]string{"Homeserver", "User", "Password", "Device name"}
	for i := range f.inputs {
		label := padRight(labels[i], 12)
		marker := "  "
		if i == f.focus {
			label = s.FieldFocused.Render(label)
			marker = s.FieldFocused.Render("› ")
		} else {
			label = s.FieldBlurred.Render(label)
		}
		field := f.inputs[i].View()
		if i == fieldPassword && f.oauthMode() {
			field = s.Muted.Render("not needed: you approve the sign-in on the server's page")
		}
		b.WriteString(truncate(marker+label+" "+field, w) + "\n")
		if i == fieldHomeserver {
			hint := "a URL, a server name, or your Matrix ID"
			if f.known() {
				hint = "✓ homeserver found"
				if k := f.kindText(); k != "" {
					hint += " · " + k
				}
			}
			b.WriteString(strings.Repeat(" ", 15) + s.Muted.Render(fitWords(hint, max(10, w-17))) + "\n")
		}
	}
	b.WriteString("\n")
	switch {
	case f.busy:
		b.WriteString("  " + f.spin.View() + " " + f.busyText)
	case f.resolving:
		b.WriteString("  " + f.spin.View() + " discovering " + clean(f.value(fieldHomeserver)) + "…")
	case f.errKind == errRateLimited && !f.retryAt.IsZero():
		b.WriteString("  " + s.Error.Render("Too many attempts. Try again in "+app.FormatWait(f.retryAt.Sub(f.now()))+"."))
	case f.errText != "":
		b.WriteString(indent(s.Error.Render(wrap(f.errText, min(w-4, 72))), "  "))
	case f.oauthMode():
		hint := "enter shows a code to approve the sign-in with · esc goes back"
		if f.compat() {
			hint = "enter shows a code to approve the sign-in with · ctrl+p uses your password instead · esc goes back"
		}
		b.WriteString(indent(s.Muted.Render(wrap(hint, min(w-4, 72))), "  "))
	case f.compat():
		b.WriteString(indent(s.Muted.Render(wrap("enter signs in with your password · ctrl+p goes back to the OAuth sign-in · esc goes back", min(w-4, 72))), "  "))
	default:
		b.WriteString("  " + s.Muted.Render("enter signs in · tab moves between fields · esc goes back"))
	}
	return b.String()
}

// syncPlaceholders says the user name is optional on an OAuth sign-in: the
// account is the one approved on the server's page.
func (f *loginScreen) syncPlaceholders() {
	f.inputs[fieldUser].Placeholder = "your user name"
	if f.oauthMode() {
		f.inputs[fieldUser].Placeholder = "optional: the account you will approve"
	}
}

// kindText says how the server signs in, once the form knows.
func (f *loginScreen) kindText() string {
	if f.oauth == nil {
		return ""
	}
	switch f.probe.Kind {
	case matrix.AuthLegacy:
		return "legacy server: password sign-in"
	case matrix.AuthOAuthOnly:
		return "OAuth 2.0 server: sign-in on its own page"
	case matrix.AuthOAuthPasswordCompat:
		return "OAuth 2.0 server, also takes passwords"
	}
	return ""
}

// timedOut says whether a call failed because it ran out of time.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// padRight pads s with blanks to n cells of display width.
func padRight(s string, n int) string {
	return s + strings.Repeat(" ", max(0, n-ansi.StringWidth(s)))
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}
