package ui

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"rsc.io/qr"

	"mxauth/matrix"
	"mxauth/matrix/matrixtest/clocktest"
	"mxauth/matrix/session"
	"mxauth/ui/app"
	"mxauth/ui/qrcode"
)

// --- big letters ---

func TestBigTextDrawsEveryGlyphDistinctly(t *testing.T) {
	seen := map[string]rune{}
	for r, g := range bigFont {
		for y, row := range g {
			if len(row) != bigGlyphWidth {
				t.Fatalf("%q row %d is %d wide", r, y, len(row))
			}
		}
		key := strings.Join(g[:], "|")
		if other, dup := seen[key]; dup {
			t.Fatalf("%q and %q look the same", r, other)
		}
		seen[key] = r
	}
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-" {
		if _, ok := bigFont[c]; !ok {
			t.Fatalf("no glyph for %q", c)
		}
	}
}

func TestBigTextFitsOrRefuses(t *testing.T) {
	big, ok := bigText("QX7R2M", 80)
	if !ok {
		t.Fatal("a six-character code fits 80 cells")
	}
	rows := strings.Split(big, "\n")
	if len(rows) != bigRows || len([]rune(rows[0])) != bigWidth(6, 2) {
		t.Fatalf("%d rows of %d cells:\n%s", len(rows), len([]rune(rows[0])), big)
	}
	// Q's top row, two blanks, X's top row: the letters are drawn in order.
	if !strings.HasPrefix(rows[0], " ███   █   █") {
		t.Fatalf("first row %q", rows[0])
	}
	if big, ok = bigText("QX7R2M", bigWidth(6, 1)); !ok || len([]rune(strings.Split(big, "\n")[0])) != bigWidth(6, 1) {
		t.Fatal("a narrower column gets one blank between letters")
	}
	if _, ok = bigText("QX7R2M", bigWidth(6, 1)-1); ok {
		t.Fatal("a code that cannot fit is not drawn big")
	}
	for _, code := range []string{"qx7r2m", "AB\x1bC", "ÅÄÖ", ""} {
		if _, ok := bigText(code, 80); ok {
			t.Fatalf("%q has characters the font lacks; it must not be drawn as something else", code)
		}
	}
}

// --- the browser opener ---

func TestPlatformOpener(t *testing.T) {
	found := func(name string) (string, error) { return "/usr/bin/" + name, nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	if got := platformOpener("linux", env(nil), found); got != nil {
		t.Fatalf("no graphical session: xdg-open would start a text browser in this terminal, got %v", got)
	}
	if got := platformOpener("linux", env(map[string]string{"WAYLAND_DISPLAY": "wayland-0"}), found); len(got) != 1 || got[0] != "/usr/bin/xdg-open" {
		t.Fatalf("linux with a display: %v", got)
	}
	if got := platformOpener("freebsd", env(map[string]string{"DISPLAY": ":0"}), missing); got != nil {
		t.Fatalf("no xdg-open installed: %v", got)
	}
	if got := platformOpener("darwin", env(nil), found); len(got) != 1 || got[0] != "/usr/bin/open" {
		t.Fatalf("darwin: %v", got)
	}
	if got := platformOpener("windows", env(nil), found); len(got) != 2 || got[1] != "url.dll,FileProtocolHandler" {
		t.Fatalf("windows: %v", got)
	}
	for _, bad := range []string{"-oops", "file:///etc/passwd", "javascript:alert(1)", "https://", "mailto:a@b"} {
		if err := runOpener([]string{"/bin/true"}, bad); err == nil {
			t.Fatalf("%q was passed to the opener", bad)
		}
	}
}

// --- the add form and the device-grant screen, in a running program ---

// oauthServer makes the fake's servers OAuth-aware: kind for every server.
func oauthServer(f *fakeBackend, kind matrix.ServerAuthKind) {
	f.probe = func(hs, user string) (authProbe, error) {
		return authProbe{BaseURL: "https://matrix.example.org", Kind: kind, DeviceGrant: true, Issuer: "https://auth.example.org/"}, nil
	}
}

type grantRun struct {
	t    *testing.T
	f    *fakeBackend
	clk  *clocktest.Clock
	tm   *teatest.TestModel
	p    probe
	open *openedLog
}

// openedLog records what the app asked the browser to open.
type openedLog struct {
	mu    sync.Mutex
	addrs []string
	err   error
}

func (o *openedLog) open(addr string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.addrs = append(o.addrs, addr)
	return o.err
}

func (o *openedLog) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.addrs...)
}

func startGrantRun(t *testing.T, f *fakeBackend, w, h int) *grantRun {
	t.Helper()
	clk := clocktest.New(t0)
	open := &openedLog{}
	p := newProbe(New(f, RunOptions{Hostname: "testhost", Now: clk.Now, OpenURL: open.open}))
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(w, h))
	waitText(t, p, "")
	return &grantRun{t: t, f: f, clk: clk, tm: tm, p: p, open: open}
}

// signIn waits for the next sign-in the app starts.
func (r *grantRun) signIn() *fakeSignIn {
	r.t.Helper()
	select {
	case s := <-r.f.signIns:
		return s
	case <-time.After(10 * time.Second):
		r.t.Fatalf("no sign-in started; screen:\n%s", r.p.screen())
		return nil
	}
}

func (r *grantRun) final() *model {
	r.t.Helper()
	if err := r.tm.Quit(); err != nil {
		r.t.Fatal(err)
	}
	return r.tm.FinalModel(r.t, teatest.WithFinalTimeout(10*time.Second)).(probe).Model.(*model)
}

// toGrant fills the add form for an OAuth server and submits it.
func (r *grantRun) toGrant() *fakeSignIn {
	r.t.Helper()
	send(r.tm, "a")
	waitText(r.t, r.p, "Add a Matrix account")
	r.tm.Type("matrix.example.org")
	send(r.tm, "tab")
	waitText(r.t, r.p, "homeserver found")
	send(r.tm, "enter")
	return r.signIn()
}

func TestAddFormSaysTheServerKind(t *testing.T) {
	for _, tc := range []struct {
		kind  matrix.ServerAuthKind
		says  string
		oauth bool
	}{
		{matrix.AuthLegacy, "legacy server: password sign-in", false},
		{matrix.AuthOAuthOnly, "OAuth 2.0 server: sign-in on its own page", true},
		{matrix.AuthOAuthPasswordCompat, "OAuth 2.0 server, also takes passwords", true},
	} {
		t.Run(tc.kind.Name(), func(t *testing.T) {
			f := newFake()
			oauthServer(f, tc.kind)
			m, _ := testModel(t, f)
			press(m, "a")
			typeText(m, "example.org")
			press(m, "tab")
			v := content(m)
			mustContain(t, v, "homeserver found · "+tc.says)
			if tc.oauth {
				mustContain(t, v, "not needed: you approve the sign-in", "enter shows a code")
				// tab skips the password: there is none to type.
				press(m, "tab")
				if m.login.focus != fieldDevice {
					t.Fatalf("focus %d after user, want the device name", m.login.focus)
				}
				press(m, "shift+tab")
				if m.login.focus != fieldUser {
					t.Fatalf("focus %d back from the device name, want the user", m.login.focus)
				}
			} else {
				mustNotContain(t, v, "not needed")
				mustContain(t, v, "enter signs in")
			}
			bar := helpBar(m)
			if (tc.kind == matrix.AuthOAuthPasswordCompat) != strings.Contains(bar, "ctrl+p use password") {
				t.Fatalf("the password switch is offered exactly where the server takes passwords: %q", bar)
			}
			if len(f.probes) != 1 || f.probes[0] != "example.org|" {
				t.Fatalf("probes %v", f.probes)
			}
		})
	}
}

func TestAddFormCompatServerSwitchesToPassword(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthPasswordCompat)
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "@alice:example.org")
	press(m, "tab") // the Matrix ID is looked up and fills the user field
	if !m.login.oauthMode() || m.login.inputs[fieldUser].Value() != "@alice:example.org" {
		t.Fatalf("oauth mode %v, user %q", m.login.oauthMode(), m.login.inputs[fieldUser].Value())
	}
	if len(f.probes) != 1 || f.probes[0] != "|@alice:example.org" {
		t.Fatalf("a Matrix ID is probed as the user: %v", f.probes)
	}
	_, cmd := m.Update(kpMod('p'))
	drain(m, cmd)
	if m.login.oauthMode() || m.login.focus != fieldPassword {
		t.Fatalf("ctrl+p: oauth mode %v, focus %d", m.login.oauthMode(), m.login.focus)
	}
	mustContain(t, content(m), "enter signs in with your password", "ctrl+p use OAuth")
	typeText(m, "hunter2")
	press(m, "enter")
	if len(f.logins) != 1 || f.logins[0].Password.Reveal() != "hunter2" || len(f.oauthParams) != 0 {
		t.Fatalf("the password sign-in was not used: logins %d, oauth %d", len(f.logins), len(f.oauthParams))
	}
}

func TestAddFormSubmitBeforeLookupAsksTheServerFirst(t *testing.T) {
	// Legacy: the form looks, then asks for the password it needs.
	f := newFake()
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "example.org")
	m.login.setFocus(fieldUser)
	typeText(m, "alice")
	press(m, "enter")
	if len(f.probes) != 1 || m.login.focus != fieldPassword || !strings.Contains(m.login.errText, "Enter your password") {
		t.Fatalf("probes %v, focus %d, error %q", f.probes, m.login.focus, m.login.errText)
	}
	if len(f.logins) != 0 {
		t.Fatal("no sign-in without a password")
	}
}

func TestDeviceGrantScreen(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthOnly)
	r := startGrantRun(t, f, 100, 30)
	si := r.toGrant()
	g := si.grant()
	waitText(t, r.p, "QX7R2M", "https://auth.example.org/link", "expires in 20m 00s", "waiting for approval")
	scr := r.p.screen()
	big, _ := bigText("QX7R2M", 80)
	for _, row := range strings.Split(big, "\n") {
		if !strings.Contains(scr, row) {
			t.Fatalf("the code is not drawn in big letters (row %q):\n%s", row, scr)
		}
	}
	code, err := qr.Encode(g.VerificationURI, qr.L)
	if err != nil {
		t.Fatal(err)
	}
	drawn, _ := qrcode.Draw(code, NewStyles(false, true).QR, false)
	for _, row := range strings.Split(stripANSI(drawn), "\n") {
		if !strings.Contains(scr, row) {
			t.Fatalf("no QR code of the verification page:\n%s", scr)
		}
	}
	mustContain(t, scr, "c copy code", "b sign in with a browser", "esc cancel")

	si.polls <- matrix.DevicePoll{Attempt: 1, Interval: 5 * time.Second}
	waitText(t, r.p, "not approved yet · checking every 5s")
	si.polls <- matrix.DevicePoll{Attempt: 2, Interval: 10 * time.Second, SlowDown: true}
	waitText(t, r.p, "slow down: now checking every 10s")
	r.clk.Advance(65 * time.Second)
	waitText(t, r.p, "expires in 18m 55s") // the 1 Hz tick counts down
	send(r.tm, "c")
	waitText(t, r.p, "sent to the terminal's clipboard")

	acct := app.Account{UserID: "@alice:example.org", DeviceID: "OAUTHDEV12", Homeserver: "https://matrix.example.org",
		Status: session.Status{State: session.StateActive, ExpiresAt: r.clk.Now().Add(5 * time.Minute), HasRefreshToken: true}}
	f.mu.Lock()
	f.accounts = append(f.accounts, acct)
	f.mu.Unlock()
	si.outcome <- fakeOutcome{acct: acct}
	waitText(t, r.p, "signed in as @alice:example.org on device OAUTHDEV12", "expires in 5m 00s")
	m := r.final()
	if m.screen != screenHome || !si.isClosed() {
		t.Fatalf("screen %d, sign-in closed %v", m.screen, si.isClosed())
	}
	want := oauthParams{Homeserver: "https://matrix.example.org", DeviceName: "mxauth on testhost"}
	if len(f.oauthParams) != 1 || f.oauthParams[0] != want {
		t.Fatalf("sign-ins %+v, want one %+v", f.oauthParams, want)
	}
}

func TestDeviceGrantQRHoldsTheCompletePage(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthOnly)
	f.oauthStart = func(p oauthParams) (*fakeSignIn, error) {
		g := sampleGrant(p)
		g.VerificationURIComplete = g.VerificationURI + "?code=QX7R2M"
		return newFakeSignIn(g), nil
	}
	r := startGrantRun(t, f, 100, 30)
	si := r.toGrant()
	waitText(t, r.p, "fills the code in for you")
	code, _ := qr.Encode(si.grant().VerificationURIComplete, qr.L)
	drawn, _ := qrcode.Draw(code, NewStyles(false, true).QR, false)
	if !strings.Contains(r.p.screen(), strings.Split(stripANSI(drawn), "\n")[3]) {
		t.Fatalf("the QR code is not of verification_uri_complete:\n%s", r.p.screen())
	}
	r.final()
}

func TestDeviceGrantEndings(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthOnly)
	r := startGrantRun(t, f, 80, 24)
	si := r.toGrant()
	waitText(t, r.p, "QX7R2M")
	si.outcome <- fakeOutcome{err: &matrix.OAuthError{Code: "access_denied"}}
	waitText(t, r.p, "refused on the approval page", "n start again")
	if !si.isClosed() {
		t.Fatal("a finished sign-in is closed")
	}

	send(r.tm, "n")
	si = r.signIn()
	waitText(t, r.p, "QX7R2M")
	si.outcome <- fakeOutcome{err: &matrix.OAuthError{Code: "expired_token"}}
	waitText(t, r.p, "The code expired before the sign-in was approved")

	send(r.tm, "n")
	si = r.signIn()
	waitText(t, r.p, "QX7R2M")
	si.outcome <- fakeOutcome{err: &matrix.Error{Status: 500, ErrCode: "M_UNKNOWN", Message: "boom\x1b[2J"}}
	waitText(t, r.p, "Sign-in failed:", "n start again")
	mustNotContain(t, r.p.screen(), "\x1b[2J")

	send(r.tm, "n")
	si = r.signIn()
	waitText(t, r.p, "QX7R2M")
	send(r.tm, "esc")
	waitText(t, r.p, "Add a Matrix account", "sign-in cancelled")
	m := r.final()
	if !si.isClosed() || m.screen != screenLogin {
		t.Fatalf("esc: sign-in closed %v, screen %d", si.isClosed(), m.screen)
	}
	if len(f.accounts) != 0 {
		t.Fatal("nothing was added")
	}
}

func TestDeviceGrantSwitchesToBrowser(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthOnly)
	r := startGrantRun(t, f, 100, 30)
	first := r.toGrant()
	waitText(t, r.p, "QX7R2M")
	send(r.tm, "b")
	second := r.signIn()
	waitText(t, r.p, "Your browser was opened", "c copy")
	if !first.isClosed() {
		t.Fatal("the device grant is closed when the browser sign-in starts")
	}
	if got := r.open.list(); len(got) != 1 || got[0] != second.grant().AuthURL {
		t.Fatalf("opened %v", got)
	}
	// The address is shown whole, so it can be typed or copied elsewhere.
	flat := strings.Join(strings.Fields(strings.ReplaceAll(r.p.screen(), "\n  ", "")), "")
	if !strings.Contains(flat, second.grant().AuthURL) {
		t.Fatalf("the address is not shown whole:\n%s", r.p.screen())
	}
	send(r.tm, "b")
	third := r.signIn()
	waitText(t, r.p, "QX7R2M")
	if !second.isClosed() || third.grant().Browser {
		t.Fatal("b goes back to the code")
	}
	m := r.final()
	if len(f.oauthParams) != 3 || !f.oauthParams[1].Browser || f.oauthParams[2].Browser {
		t.Fatalf("sign-ins %+v", f.oauthParams)
	}
	_ = m
}

func TestBrowserSignInWithoutABrowser(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthOnly)
	r := startGrantRun(t, f, 100, 30)
	r.open.err = errors.New("no graphical session")
	r.toGrant()
	waitText(t, r.p, "QX7R2M")
	send(r.tm, "b")
	r.signIn()
	waitText(t, r.p, "Could not open a browser: no graphical session", "Open this address in a browser on this computer")
	r.final()
}

func TestCancelWhileStartingClosesTheLateSignIn(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthOnly)
	release := make(chan struct{})
	f.oauthStart = func(p oauthParams) (*fakeSignIn, error) {
		<-release
		return newFakeSignIn(sampleGrant(p)), nil
	}
	r := startGrantRun(t, f, 80, 24)
	send(r.tm, "a")
	waitText(t, r.p, "Add a Matrix account")
	r.tm.Type("matrix.example.org")
	send(r.tm, "tab")
	waitText(t, r.p, "homeserver found")
	send(r.tm, "enter")
	waitText(t, r.p, "asking the server for a sign-in code")
	send(r.tm, "esc")
	waitText(t, r.p, "Add a Matrix account")
	close(release)
	si := r.signIn()
	deadline := time.Now().Add(10 * time.Second)
	for !si.isClosed() {
		if time.Now().After(deadline) {
			t.Fatal("a sign-in that answered after esc was left open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := r.final(); m.screen != screenLogin {
		t.Fatalf("screen %d", m.screen)
	}
}

func TestGrantStartFailureSaysWhy(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthOnly)
	f.oauthStart = func(oauthParams) (*fakeSignIn, error) {
		return nil, &matrix.Error{Status: 503, ErrCode: "M_UNKNOWN", Message: "maintenance"}
	}
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "example.org")
	press(m, "tab", "enter")
	if m.screen != screenGrant || m.grant.phase != grantFailed {
		t.Fatalf("screen %d phase %d", m.screen, m.grant.phase)
	}
	mustContain(t, content(m), "Sign-in failed:", "maintenance")
	press(m, "esc")
	if m.screen != screenLogin {
		t.Fatal("esc goes back to the form")
	}
}

func TestDemoBannerNamesTheOAuthHomeserver(t *testing.T) {
	f := newFake()
	f.demo = &app.DemoInfo{Homeserver: "http://127.0.0.1:8008",
		Users: []app.DemoUser{{UserID: "@alice:localhost", Password: "alice", SignedIn: true}},
		OAuth: &app.DemoOAuth{Homeserver: "http://127.0.0.1:8009", ApprovalURL: "http://127.0.0.1:8009/auth/link",
			Users: []app.DemoUser{{UserID: "@carol:localhost", Password: "carolpw"}}}}
	m, _ := testModel(t, f)
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 30})
	flat := strings.Join(strings.Fields(stripANSI(content(m))), " ")
	if !strings.Contains(flat, "OAuth 2.0 homeserver http://127.0.0.1:8009: add @carol:localhost / carolpw, approve at http://127.0.0.1:8009/auth/link") {
		t.Fatalf("banner:\n%s", content(m))
	}
}

func TestAddFormSaysWhenTheServerKindCannotBeTold(t *testing.T) {
	f := newFake()
	f.probe = func(hs, user string) (authProbe, error) {
		return authProbe{}, &matrix.AuthMetadataError{Field: "issuer", Reason: "is on another host than its endpoints"}
	}
	m, _ := testModel(t, f)
	press(m, "a")
	typeText(m, "example.org")
	press(m, "tab")
	mustContain(t, content(m), "Could not tell how example.org signs in")
	if m.login.focus != fieldUser || m.login.known() {
		t.Fatalf("a background look-up leaves the focus alone (%d) and knows nothing (%v)", m.login.focus, m.login.known())
	}
	press(m, "enter") // submitting looks again, and says the same
	if len(f.probes) != 2 || m.login.focus != fieldHomeserver || !strings.Contains(m.login.errText, "Could not tell how") {
		t.Fatalf("probes %v, focus %d, error %q", f.probes, m.login.focus, m.login.errText)
	}
}

// The switch between the code and the browser reads both of its keys from the KeyMap.
func TestGrantSwitchKeysComeFromTheKeyMap(t *testing.T) {
	f := newFake()
	oauthServer(f, matrix.AuthOAuthOnly)
	f.oauthStart = func(oauthParams) (*fakeSignIn, error) { return nil, errors.New("unreachable") }
	m, _ := testModel(t, f)
	m.keys.Browser = key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "sign in with a browser"))
	m.keys.DeviceCode = key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "sign in with a code"))
	press(m, "a")
	typeText(m, "example.org")
	press(m, "tab", "enter", "b")
	if len(f.oauthParams) != 1 {
		t.Fatalf("b started a sign-in though the browser key is w: %+v", f.oauthParams)
	}
	press(m, "w", "w")
	if len(f.oauthParams) != 2 || !f.oauthParams[1].Browser {
		t.Fatalf("w switches to the browser once, then is not the key back: %+v", f.oauthParams)
	}
	press(m, "e")
	if len(f.oauthParams) != 3 || f.oauthParams[2].Browser {
		t.Fatalf("e goes back to the code: %+v", f.oauthParams)
	}
}
