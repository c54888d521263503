package ui

import (
	"context"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"

	"mxauth/matrix"
	"mxauth/matrix/matrixtest/clocktest"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// t0 is the pinned clock every test starts from.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fakeBackend records calls and answers with whatever the test set.
type fakeBackend struct {
	mu sync.Mutex

	accounts []app.Account
	events   chan session.Event
	store    string
	demo     *app.DemoInfo

	resolve  func(input string) (string, error)
	login    func(p app.LoginParams) (app.Account, error)
	logins   []app.LoginParams
	resolved []string

	refreshErr error
	refreshed  []string
	signOutErr error
	signedOut  []string

	info     app.ServerInfo
	infoErr  error
	token    matrix.Secret
	tokenErr error
	devices  []matrix.Device
	// deviceLists counts the device-list calls.
	deviceLists int

	deleteDevice func(auth *matrix.AuthData) error
	deleteAuths  []*matrix.AuthData

	check    app.LoginTokenCheck
	checkErr error
	mint     func(auth *matrix.AuthData) (*matrix.GetLoginTokenResponse, error)
	mintAuth []*matrix.AuthData

	panicStore bool

	// OAuth: probe answers for the server (nil: a legacy server at resolve's
	// address); each sign-in started is announced on signIns.
	probe       func(hs, user string) (authProbe, error)
	probes      []string
	oauthStart  func(p oauthParams) (*fakeSignIn, error)
	oauthParams []oauthParams
	signIns     chan *fakeSignIn
}

func newFake() *fakeBackend {
	return &fakeBackend{
		store:  "Secret Service",
		events: make(chan session.Event, 8),
		resolve: func(input string) (string, error) {
			return "https://matrix.example.org", nil
		},
		info:    app.ServerInfo{Versions: []string{"r0.6.1", "v1.1", "v1.12"}, RefreshTokens: true, GetLoginToken: true},
		token:   "syt_secret_access_token_value",
		check:   app.LoginTokenCheck{Supported: true, Path: "/_matrix/client/v1/login/get_token"},
		signIns: make(chan *fakeSignIn, 8),
	}
}

func (f *fakeBackend) probeAuth(ctx context.Context, hs, user string) (authProbe, error) {
	f.mu.Lock()
	f.probes = append(f.probes, hs+"|"+user)
	fn := f.probe
	f.mu.Unlock()
	if fn != nil {
		return fn(hs, user)
	}
	input := hs
	if input == "" {
		input = user
	}
	u, err := f.Resolve(ctx, input)
	return authProbe{BaseURL: u, Kind: matrix.AuthLegacy}, err
}

func (f *fakeBackend) startOAuth(_ context.Context, p oauthParams) (oauthSignIn, error) {
	f.mu.Lock()
	f.oauthParams = append(f.oauthParams, p)
	fn := f.oauthStart
	f.mu.Unlock()
	var s *fakeSignIn
	if fn != nil {
		var err error
		if s, err = fn(p); err != nil {
			return nil, err
		}
	} else {
		s = newFakeSignIn(sampleGrant(p))
	}
	f.signIns <- s
	return s, nil
}

// sampleGrant is what a MAS-like server hands out for p.
func sampleGrant(p oauthParams) oauthGrant {
	if p.Browser {
		return oauthGrant{BaseURL: "https://matrix.example.org", Issuer: "https://auth.example.org/", Browser: true,
			AuthURL: "https://auth.example.org/authorize?client_id=R83E67N3AZDZW3QXFJNBV998YN&code_challenge=ZHG6EbmKxuusdcJdfD6Y0BKEOX2bQgzoU6AKNyJdlxU" +
				"&code_challenge_method=S256&redirect_uri=http%3A%2F%2F127.0.0.1%3A42241%2Fcallback&response_mode=query&response_type=code" +
				"&scope=urn%3Amatrix%3Aclient%3Aapi%3A%2A+urn%3Amatrix%3Aclient%3Adevice%3AQ2W3E4R5T6Y7&state=Yk3Jw8sKq1nVb5tFzR0pXc2LhD7uAeM9oGiWjNyS4bE"}
	}
	return oauthGrant{BaseURL: "https://matrix.example.org", Issuer: "https://auth.example.org/",
		VerificationURI: "https://auth.example.org/link", UserCode: "QX7R2M",
		ExpiresAt: t0.Add(20 * time.Minute), Interval: 5 * time.Second}
}

// fakeSignIn is an OAuth sign-in the test drives: polls and the outcome go
// in through its channels.
type fakeSignIn struct {
	g       oauthGrant
	polls   chan matrix.DevicePoll
	outcome chan fakeOutcome
	closed  chan struct{}
	once    sync.Once
	waiting chan struct{} // closed once wait runs
	wonce   sync.Once
}

type fakeOutcome struct {
	acct app.Account
	err  error
}

func newFakeSignIn(g oauthGrant) *fakeSignIn {
	return &fakeSignIn{g: g, polls: make(chan matrix.DevicePoll), outcome: make(chan fakeOutcome, 1),
		closed: make(chan struct{}), waiting: make(chan struct{})}
}

func (s *fakeSignIn) grant() oauthGrant { return s.g }

func (s *fakeSignIn) wait(ctx context.Context, onPoll func(matrix.DevicePoll)) (app.Account, error) {
	s.wonce.Do(func() { close(s.waiting) })
	for {
		select {
		case p := <-s.polls:
			onPoll(p)
		case o := <-s.outcome:
			return o.acct, o.err
		case <-s.closed:
			return app.Account{}, context.Canceled
		case <-ctx.Done():
			return app.Account{}, ctx.Err()
		}
	}
}

func (s *fakeSignIn) close() { s.once.Do(func() { close(s.closed) }) }

func (s *fakeSignIn) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

func (f *fakeBackend) Accounts() []app.Account {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]app.Account(nil), f.accounts...)
}

func (f *fakeBackend) Events() <-chan session.Event { return f.events }

func (f *fakeBackend) Resolve(_ context.Context, input string) (string, error) {
	f.mu.Lock()
	f.resolved = append(f.resolved, input)
	f.mu.Unlock()
	return f.resolve(input)
}

func (f *fakeBackend) Login(_ context.Context, p app.LoginParams) (app.Account, error) {
	f.mu.Lock()
	f.logins = append(f.logins, p)
	fn := f.login
	f.mu.Unlock()
	if fn != nil {
		return fn(p)
	}
	a := app.Account{UserID: "@alice:example.org", DeviceID: "NEWDEV", Homeserver: p.Homeserver,
		Status: session.Status{State: session.StateActive}}
	f.mu.Lock()
	f.accounts = append(f.accounts, a)
	f.mu.Unlock()
	return a, nil
}

func (f *fakeBackend) Refresh(_ context.Context, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshed = append(f.refreshed, userID)
	return f.refreshErr
}

func (f *fakeBackend) SignOut(_ context.Context, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signedOut = append(f.signedOut, userID)
	return f.signOutErr
}

func (f *fakeBackend) ServerInfo(context.Context, string) (app.ServerInfo, error) {
	return f.info, f.infoErr
}

func (f *fakeBackend) AccessToken(context.Context, string) (matrix.Secret, error) {
	return f.token, f.tokenErr
}

func (f *fakeBackend) Devices(context.Context, string) ([]matrix.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deviceLists++
	return append([]matrix.Device(nil), f.devices...), nil
}

func (f *fakeBackend) DeleteDevice(_ context.Context, _, _ string, auth *matrix.AuthData) error {
	f.mu.Lock()
	f.deleteAuths = append(f.deleteAuths, auth)
	fn := f.deleteDevice
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(auth)
}

func (f *fakeBackend) CheckLoginToken(context.Context, string) (app.LoginTokenCheck, error) {
	return f.check, f.checkErr
}

func (f *fakeBackend) MintLoginToken(_ context.Context, _ string, auth *matrix.AuthData) (*matrix.GetLoginTokenResponse, error) {
	f.mu.Lock()
	f.mintAuth = append(f.mintAuth, auth)
	fn := f.mint
	f.mu.Unlock()
	return fn(auth)
}

func (f *fakeBackend) FallbackURL(_, stage, session string) string {
	return "https://matrix.example.org/_matrix/client/v3/auth/" + stage + "/fallback/web?session=" + session
}

func (f *fakeBackend) StoreName() string {
	if f.panicStore {
		panic("store name exploded")
	}
	return f.store
}

func (f *fakeBackend) Demo() *app.DemoInfo { return f.demo }

// testModel builds a model at 80x24 with a pinned clock.
func testModel(t *testing.T, f *fakeBackend) (*model, *clocktest.Clock) {
	t.Helper()
	clk := clocktest.New(t0)
	m := newModel(context.Background(), f, RunOptions{Hostname: "testhost", Now: clk.Now})
	m.tick = func() tea.Cmd { return nil } // tests deliver ticks themselves
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	return m, clk
}

// drain runs cmd and feeds every message it produces back into the model,
// as the program would. Commands that do not answer in time (the event
// wait) are dropped, and spinner frames are not fed back, so tests only
// see the backend's answers. It returns every message seen.
func drain(m *model, cmd tea.Cmd) []tea.Msg {
	var seen []tea.Msg
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		ch := make(chan tea.Msg, 1)
		go func() { ch <- c() }()
		var msg tea.Msg
		select {
		case msg = <-ch:
		case <-time.After(2 * time.Second):
			continue
		}
		switch msg := msg.(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case spinner.TickMsg:
		case tea.QuitMsg:
			seen = append(seen, msg) // the program would stop here
		default:
			seen = append(seen, msg)
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
	return seen
}

// kp builds a key press the way the terminal reports it.
func kp(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "home":
		return tea.KeyPressMsg{Code: tea.KeyHome}
	case "end":
		return tea.KeyPressMsg{Code: tea.KeyEnd}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// press sends keys one by one and runs what each returns.
func press(m *model, keys ...string) []tea.Msg {
	var seen []tea.Msg
	for _, k := range keys {
		_, cmd := m.Update(kp(k))
		seen = append(seen, drain(m, cmd)...)
	}
	return seen
}

// typeText types s into whatever has focus.
func typeText(m *model, s string) {
	for _, r := range s {
		_, cmd := m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
		drain(m, cmd)
	}
}

// tick advances the clock and delivers the 1 Hz tick.
func tick(m *model, clk *clocktest.Clock, d time.Duration) []tea.Msg {
	clk.Advance(d)
	_, cmd := m.Update(tickMsg{})
	return drain(m, cmd)
}

func content(m *model) string { return m.View().Content }

func sampleAccounts() []app.Account {
	return []app.Account{
		{UserID: "@alice:example.org", DeviceID: "ALICEDEV", Homeserver: "https://matrix.example.org", DisplayName: "Alice",
			IsDefault: true,
			Status: session.Status{State: session.StateActive, ExpiresAt: t0.Add(4*time.Minute + 12*time.Second),
				HasRefreshToken: true, LastRefresh: t0.Add(-time.Minute), NextRefresh: t0.Add(3 * time.Minute)}},
		{UserID: "@bob:example.org", DeviceID: "BOBDEV", Homeserver: "https://matrix.example.org",
			Status: session.Status{State: session.StateNeedsSignIn}},
		{UserID: "@carol:other.example", DeviceID: "CAROLDEV", Homeserver: "https://other.example",
			Status: session.Status{State: session.StateNonExpiring}},
	}
}
