package ui

import (
	"context"
	"errors"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// revealFor is how long a revealed access token stays on screen.
const revealFor = 10 * time.Second

type (
	serverInfoMsg struct {
		seq    int
		userID string
		info   app.ServerInfo
		err    error
	}
	devicesMsg struct {
		seq     int
		userID  string
		devices []matrix.Device
		err     error
	}
	accessTokenMsg struct {
		seq    int
		userID string
		token  matrix.Secret
		err    error
	}
	deleteDeviceMsg struct {
		userID, deviceID string
		err              error
	}
	// deleteResendMsg ends a rate-limit wait of the deletion that flow is.
	deleteResendMsg struct {
		flow             *app.UIAFlow
		userID, deviceID string
	}
)

// detailsScreen shows one account in full, its server and its devices.
type detailsScreen struct {
	*common
	w, h   int
	seq    int
	userID string

	info        *app.ServerInfo
	infoErr     string
	infoLoading bool

	devices    []matrix.Device
	devErr     string
	devLoading bool
	table      table.Model // the devices; its cursor is the selected device
	deleting   bool
	delFlow    *app.UIAFlow // the device deletion under way: its UIA session, tries and waits

	revealed      matrix.Secret
	revealUntil   time.Time
	revealLoading bool
	revealErr     string

	note string
}

func (d *detailsScreen) hide() {
	d.revealed, d.revealUntil = "", time.Time{}
}

// tick hides a revealed token once its time is up.
func (d *detailsScreen) tick(now time.Time) {
	if !d.revealed.IsZero() && !now.Before(d.revealUntil) {
		d.hide()
	}
}

// open shows userID's details and starts loading its server and devices.
func (d *detailsScreen) open(userID string) tea.Cmd {
	*d = detailsScreen{common: d.common, w: d.w, h: d.h, seq: d.nextSeq(), userID: userID, infoLoading: true, devLoading: true,
		table: newDeviceTable(d.common)}
	return tea.Batch(d.serverInfoCmd(), d.devicesCmd())
}

func (d *detailsScreen) Title() string { return "Account details" }

func (d *detailsScreen) Busy() bool {
	return d.infoLoading || d.devLoading || d.revealLoading || d.deleting
}

func (d *detailsScreen) SetSize(w, h int) {
	if w != d.w {
		d.w = w
		d.syncRows()
	}
	d.h = h
}

func (d *detailsScreen) HelpContext(km *KeyMap) {
	km.mode = helpDetails
	a, ok := d.account(d.userID)
	km.needsSignIn = ok && canSignInAgain(a.Status.State)
	km.noTokens = ok && a.Status.TokensUnknown
	km.accountPage = ok && a.AccountURL != ""
}

func (d *detailsScreen) serverInfoCmd() tea.Cmd {
	seq, u, b := d.seq, d.userID, d.b
	return d.call(func(ctx context.Context) tea.Msg {
		info, err := b.ServerInfo(ctx, u)
		return serverInfoMsg{seq, u, info, err}
	})
}

func (d *detailsScreen) devicesCmd() tea.Cmd {
	seq, u, b := d.seq, d.userID, d.b
	d.devLoading = true
	return d.call(func(ctx context.Context) tea.Msg {
		ds, err := b.Devices(ctx, u)
		return devicesMsg{seq, u, ds, err}
	})
}

func (d *detailsScreen) deleteDeviceCmd(userID, deviceID string, auth *matrix.AuthData) tea.Cmd {
	b := d.b
	d.deleting = true
	return d.call(func(ctx context.Context) tea.Msg {
		return deleteDeviceMsg{userID, deviceID, b.DeleteDevice(ctx, userID, deviceID, auth)}
	})
}

func (d *detailsScreen) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return d.onKey(msg)
	case tickMsg:
		d.tick(d.now())
	case serverInfoMsg, devicesMsg, accessTokenMsg, deleteDeviceMsg, deleteResendMsg:
		return d.onResult(msg)
	}
	return nil
}

func (d *detailsScreen) onKey(k tea.KeyPressMsg) tea.Cmd {
	km := d.keys
	switch {
	case key.Matches(k, km.Back):
		d.hide()
		d.nav.show(screenHome)
	case key.Matches(k, km.Quit):
		return tea.Quit
	case key.Matches(k, km.Help):
		d.showHelp = !d.showHelp
	case key.Matches(k, km.Reveal):
		if !d.revealed.IsZero() {
			d.hide()
			return nil
		}
		if d.revealLoading {
			return nil
		}
		d.revealLoading, d.revealErr = true, ""
		seq, u, b := d.seq, d.userID, d.b
		return d.call(func(ctx context.Context) tea.Msg {
			t, err := b.AccessToken(ctx, u)
			return accessTokenMsg{seq, u, t, err}
		})
	case key.Matches(k, km.Refresh):
		// Refresh the session and reload what this screen shows of it.
		return tea.Batch(d.refreshCmd(d.userID), d.devicesCmd())
	case key.Matches(k, km.Up, km.Down):
		var cmd tea.Cmd
		d.table, cmd = d.table.Update(k)
		d.syncRows()
		return cmd
	case key.Matches(k, km.Token):
		if a, ok := d.account(d.userID); ok {
			return d.nav.openToken(a)
		}
	case key.Matches(k, km.SignIn):
		if a, ok := d.account(d.userID); ok && canSignInAgain(a.Status.State) {
			d.hide()
			return d.nav.openLogin(&a)
		}
	case key.Matches(k, km.AccountPage):
		if a, ok := d.account(d.userID); ok && a.AccountURL != "" {
			return d.openPage(a.AccountURL, "the account page of "+clean(a.UserID), "Account page",
				"The server manages "+clean(a.UserID)+" on this page: its devices, sessions and profile.", nil)
		}
	case key.Matches(k, km.DeleteDevice):
		i := d.table.Cursor()
		if d.deleting || i < 0 || i >= len(d.devices) {
			return nil
		}
		dev := d.devices[i]
		if a, ok := d.account(d.userID); ok && a.DeviceID == dev.DeviceID {
			d.note = "That is this session's own device: sign out with x on the accounts screen."
			return nil
		}
		d.note = ""
		userID := d.userID
		start := func() tea.Cmd {
			d.delFlow = app.NewUIAFlow(userID)
			return d.deleteDeviceCmd(userID, dev.DeviceID, nil)
		}
		if a, ok := d.account(userID); ok && a.OAuth {
			// Nothing is deleted from here: the server's account page does it,
			// and asks there.
			return start()
		}
		d.dialog = newDeleteDeviceDialog(d.common, userID, dev.DeviceID, dev.DisplayName, start)
	}
	return nil
}

func (d *detailsScreen) onResult(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case serverInfoMsg:
		if msg.seq != d.seq {
			return nil
		}
		d.infoLoading = false
		if msg.err != nil {
			d.infoErr = describe(msg.err)
			return nil
		}
		info := msg.info
		d.info = &info
	case devicesMsg:
		if msg.seq != d.seq {
			return nil
		}
		d.devLoading = false
		if msg.err != nil {
			d.devErr = describe(msg.err)
			return nil
		}
		d.devErr = ""
		d.devices = msg.devices
		d.syncRows()
	case accessTokenMsg:
		if msg.seq != d.seq {
			return nil
		}
		d.revealLoading = false
		if msg.err != nil {
			d.revealErr = describe(msg.err)
			return nil
		}
		d.revealed = msg.token
		d.revealUntil = d.now().Add(revealFor)
	case deleteDeviceMsg:
		return d.deleteDeviceDone(msg)
	case deleteResendMsg:
		if msg.flow != d.delFlow {
			return nil // cancelled during the wait
		}
		return d.deleteDeviceCmd(msg.userID, msg.deviceID, msg.flow.Resend())
	}
	return nil
}

func (d *detailsScreen) deleteDeviceDone(msg deleteDeviceMsg) tea.Cmd {
	d.deleting = false
	var page *app.AccountPageError
	if errors.As(msg.err, &page) {
		return d.deleteOnPage(msg.userID, page)
	}
	flow := d.delFlow
	if flow == nil || flow.UserID != msg.userID {
		flow = app.NewUIAFlow(msg.userID)
		d.delFlow = flow
	}
	step := flow.Next(msg.err)
	switch step.Kind {
	case app.UIAWait:
		// Sit the rate limit out, then resend on the same UIA session.
		d.deleting = true
		if md := d.uia(); md != nil {
			md.busy = true
		}
		r := deleteResendMsg{flow, msg.userID, msg.deviceID}
		return tea.Tick(step.Wait, func(time.Time) tea.Msg { return r })
	case app.UIAPassword, app.UIABrowser:
		d.showChallenge(uiaRequest{
			purpose: modalDeleteDevice, userID: msg.userID, deviceID: msg.deviceID, flow: flow,
			resend: func(auth *matrix.AuthData) tea.Cmd {
				return d.deleteDeviceCmd(msg.userID, msg.deviceID, auth)
			},
			onCancel: func() {
				d.deleting, d.delFlow = false, nil
				d.note = "Device not deleted."
			},
		}, step.Challenge)
		return nil
	}
	if step.Err != nil {
		text := "Could not delete the device: " + describe(step.Err)
		switch dl := d.dialog.(type) {
		case *uiaModal:
			if errors.Is(step.Err, app.ErrWrongPassword) || matrix.IsLimitExceeded(step.Err) {
				d.dialog = nil // the flow is over: its passwords are used up, or the wait is too long
				d.setStatus(text, false)
				break
			}
			dl.fail(text)
		case *confirmDialog:
			dl.fail(text)
		default:
			d.setStatus(text, false)
		}
		return nil
	}
	d.dialog = nil
	d.setStatus("deleted device "+clean(msg.deviceID), true)
	if d.screen == screenDetails && d.userID == msg.userID {
		return d.devicesCmd()
	}
	return nil
}

// deleteOnPage sends the user to the server's account page, which signs
// devices of an OAuth 2.0 account out; the devices are listed again after.
func (d *detailsScreen) deleteOnPage(userID string, page *app.AccountPageError) tea.Cmd {
	d.delFlow = nil
	if d.confirmation() != nil || d.uia() != nil {
		d.dialog = nil
	}
	what, text := "the account page", "This server signs other devices out on its account page. Open it and sign the devices out there."
	if page.DeviceID != "" {
		what = "the account page to sign out " + clean(page.DeviceID)
		text = "This server signs devices out on its account page, not through mxauth. Open it to sign out device " +
			clean(page.DeviceID) + "; the list here is read again after."
	}
	reload := func() tea.Cmd {
		if d.screen == screenDetails && d.userID == userID {
			return d.devicesCmd()
		}
		return nil
	}
	return d.openPage(page.URL, what, "Sign out on the account page", text, reload)
}

func (d *detailsScreen) View() string {
	w, h := d.w, d.h
	s := d.styles
	a, ok := d.account(d.userID)
	if !ok {
		return "  " + s.Muted.Render("This account is no longer in the list. esc goes back.")
	}
	now := d.now()
	row := func(label, value string) string {
		return "  " + s.Label.Render(padRight(label, 14)) + value
	}
	var lines []string
	title := "  " + s.UserID.Render(clean(a.UserID))
	if a.DisplayName != "" {
		title += s.Muted.Render(" (" + clean(a.DisplayName) + ")")
	}
	lines = append(lines, title)
	state, stStyle := d.stateText(a.Status, now)
	lines = append(lines, row("State", stStyle.Render(fitWords(state, w-16))))
	lines = append(lines, row("Device", clean(a.DeviceID)))
	lines = append(lines, row("Homeserver", clean(a.Homeserver)))
	if how := signInWords(a); how != "" {
		lines = append(lines, truncate(row("Sign-in", how), w))
	}

	tok := s.Muted.Render(mask) + s.Muted.Render("  v reveals")
	switch {
	case d.revealLoading:
		tok = d.spin.View() + " fetching…"
	case !d.revealed.IsZero():
		// Shown only because the user pressed v; it hides itself.
		tok = s.Secret.Render(d.revealed.Reveal()) + s.Muted.Render("  hides in "+countdown(d.revealUntil.Sub(now)))
	case d.revealErr != "":
		tok = s.Error.Render(d.revealErr)
	}
	lines = append(lines, truncate(row("Access token", tok), w))

	switch exp := a.Status.ExpiresAt; {
	case a.Status.State == session.StateLoading:
		lines = append(lines, row("Expires", "unknown"+s.Muted.Render(" · still reading the keyring")))
	case a.Status.TokensUnknown:
		lines = append(lines, row("Expires", "unknown"+s.Muted.Render(" · the keyring could not be read")))
	case exp.IsZero() && (a.Status.State == session.StateNeedsSignIn || a.Status.State == session.StateSignedOut):
		lines = append(lines, row("Expires", "no session"))
	case !exp.IsZero():
		left := exp.Sub(now)
		start := d.lifetimeStart(a)
		pct := 0.0
		if total := exp.Sub(start); total > 0 && left > 0 {
			pct = float64(left) / float64(total)
		}
		bar := d.bar
		bar.SetWidth(min(30, max(10, w-44)))
		text := "expired"
		if left > 0 {
			text = "in " + countdown(left)
		}
		lines = append(lines, row("Expires", bar.ViewAs(min(1, pct))+" "+text+s.Muted.Render(" · "+exp.In(now.Location()).Format("15:04:05"))))
	default:
		lines = append(lines, row("Expires", "never"))
	}
	refresh := "no"
	switch {
	case a.Status.TokensUnknown, a.Status.State == session.StateLoading:
		refresh = "unknown"
	case a.Status.HasRefreshToken:
		refresh = "yes"
	}
	if t := a.Status.LastRefresh; !t.IsZero() {
		refresh += " · last " + d.clock(t)
	}
	if t := a.Status.NextRefresh; !t.IsZero() && !a.Status.TokensUnknown {
		refresh += " · next " + d.clock(t)
	}
	lines = append(lines, truncate(row("Refresh token", refresh), w))

	// The banner advises on a locked or missing keyring; any other keyring
	// error is spelt out here.
	if a.Status.State == session.StateStoreProblem && a.Status.Keyring == session.KeyringFailed && a.Status.Problem != "" {
		for i, l := range problemLines(a.Status.Problem, w-18) {
			label := ""
			if i == 0 {
				label = "Problem"
			}
			lines = append(lines, row(label, s.Warn.Render(l)))
		}
	}
	switch {
	case d.infoLoading:
		lines = append(lines, row("Server", d.spin.View()+" asking the server…"))
	case d.infoErr != "":
		label := "Server"
		for _, l := range wrapLines(d.infoErr, w-16) {
			lines = append(lines, row(label, s.Error.Render(l)))
			label = ""
		}
	case d.info != nil:
		versions, supports := serverSummary(*d.info)
		lines = append(lines, truncate(row("Versions", versions), w), truncate(row("Supports", supports), w))
		if d.info.Note != "" {
			lines = append(lines, row("", s.Muted.Render(fitWords(clean(d.info.Note), w-16))))
		}
	}
	if d.note != "" {
		for _, l := range wrapLines(d.note, w-4) {
			lines = append(lines, "  "+s.Warn.Render(l))
		}
	}
	lines = append(lines, "")
	lines = append(lines, d.devicesView(w, h-len(lines), a)...)
	return strings.Join(lines, "\n")
}

// signInWords says how the account signed in and what kind its server is,
// or nothing for an older entry that recorded neither.
func signInWords(a app.Account) string {
	if a.OAuth {
		if a.Kind == matrix.AuthOAuthPasswordCompat {
			return "OAuth 2.0 (the server also takes passwords)"
		}
		return "OAuth 2.0"
	}
	switch a.Kind {
	case matrix.AuthLegacy:
		return "password (legacy server)"
	case matrix.AuthOAuthOnly, matrix.AuthOAuthPasswordCompat:
		return "password, through the compatibility layer of an OAuth 2.0 server"
	}
	return ""
}

func serverSummary(info app.ServerInfo) (versions, supports string) {
	versions = "unknown"
	if n := len(info.Versions); n > 0 {
		versions = clean(info.Versions[0])
		if n > 1 {
			versions += " – " + clean(info.Versions[n-1]) + " (" + itoa(n) + " versions)"
		}
	}
	yn := func(b bool) string {
		if b {
			return "✓"
		}
		return "✗"
	}
	return versions, "refresh tokens " + yn(info.RefreshTokens) + " · login tokens " + yn(info.GetLoginToken)
}

func (d *detailsScreen) devicesView(w, h int, a app.Account) []string {
	s := d.styles
	head := "  " + s.Section.Render("Devices")
	switch {
	case d.devLoading && len(d.devices) == 0:
		return []string{head + " " + d.spin.View()}
	case d.devErr != "":
		out := []string{head}
		for _, l := range wrapLines(d.devErr, w-4) {
			out = append(out, "  "+s.Error.Render(l))
		}
		return out
	}
	head += s.Muted.Render(" (" + itoa(len(d.devices)) + ")")
	if d.deleting {
		head += " " + d.spin.View() + " deleting…"
	}
	if len(d.devices) == 0 {
		return []string{head}
	}
	d.table.SetHeight(max(2, h-1))
	return append([]string{head}, strings.Split(indent(trimLines(d.table.View()), "  "), "\n")...)
}

// newDeviceTable is the bubbles table the devices are listed in, moved
// with mxauth's own up and down keys (its others are not bound).
func newDeviceTable(c *common) table.Model {
	s := c.styles
	t := table.New(table.WithFocused(true), table.WithKeyMap(table.KeyMap{LineUp: c.keys.Up, LineDown: c.keys.Down}))
	t.SetStyles(deviceTableStyles(s))
	return t
}

// deviceTableStyles: column names as labels, one blank after each column;
// the selected row has a marker rather than a colour of its own.
func deviceTableStyles(s Styles) table.Styles {
	return table.Styles{Header: s.Label.PaddingRight(1), Cell: lipgloss.NewStyle().PaddingRight(1), Selected: lipgloss.NewStyle()}
}

func (d *detailsScreen) restyle() {
	d.table.SetStyles(deviceTableStyles(d.styles))
	d.syncRows()
}

// syncRows puts the devices into the table: a marker on the selected one,
// its ID, its name (and whether it is this session) and when it was last seen.
func (d *detailsScreen) syncRows() {
	s := d.styles
	a, _ := d.account(d.userID)
	cur := d.table.Cursor()
	rows := make([]table.Row, len(d.devices))
	seenW := 0 // the widest "last seen", plus its padding
	for i, dev := range d.devices {
		marker := ""
		if i == cur {
			marker = s.Selected.Render("▸")
		}
		name := clean(dev.DisplayName)
		if dev.DeviceID == a.DeviceID {
			name += s.OK.Render(" (this session)")
		}
		var seen []string
		if dev.LastSeenTS != nil && *dev.LastSeenTS > 0 {
			seen = append(seen, time.UnixMilli(*dev.LastSeenTS).In(d.now().Location()).Format("2006-01-02 15:04"))
		}
		if dev.LastSeenIP != "" {
			seen = append(seen, clean(dev.LastSeenIP))
		}
		seenText := ""
		if len(seen) > 0 {
			seenText = strings.Join(seen, " ")
			seenW = max(seenW, ansi.StringWidth(seenText)+1)
			seenText = s.Muted.Render(seenText)
		}
		rows[i] = table.Row{marker, clean(dev.DeviceID), name, seenText}
	}
	// Widths include the one cell of padding after each column.
	w := max(minWidth, d.w) - 2
	idW := 13
	seenW = min(seenW, max(0, (w-15)/2))
	cols := []table.Column{
		{Title: "", Width: 1}, {Title: "Device", Width: idW - 1},
		{Title: "Name", Width: max(8, w-2-idW-seenW) - 1}, {Title: "Last seen", Width: max(0, seenW-1)},
	}
	d.table.SetColumns(cols)
	d.table.SetWidth(w)
	d.table.SetRows(rows)
	if cur < 0 && len(rows) > 0 {
		d.table.SetCursor(0)
		d.syncRows()
	}
}
