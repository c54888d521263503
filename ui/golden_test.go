package ui

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"mxauth/matrix"
	"mxauth/ui/app"
)

// Golden files of every screen, run through a real Bubble Tea program.
// Regenerate with: go test ./ui -update

type goldenScreen struct {
	name  string
	setup func(f *fakeBackend)
	drive func(t *testing.T, tm *teatest.TestModel, p probe)
	wait  []string // texts on screen once the state is reached
	// still: the spinner stays on its first frame, so a screen that waits
	// draws the same every time.
	still bool
}

func send(tm *teatest.TestModel, keys ...string) {
	for _, k := range keys {
		tm.Send(kp(k))
	}
}

func goldenDevices(f *fakeBackend) {
	f.devices = []matrix.Device{
		{DeviceID: "ALICEDEV", DisplayName: "mxauth on testhost"},
		{DeviceID: "PHONE", DisplayName: "Element Android", LastSeenIP: "192.0.2.7", LastSeenTS: ptr(t0.Add(-2 * time.Hour).UnixMilli())},
	}
}

func ptr[T any](v T) *T { return &v }

var goldenScreens = []goldenScreen{
	{name: "home_empty", wait: []string{"No accounts yet"}},
	{name: "home_accounts", setup: withAccounts, wait: []string{"@carol:other.example"}},
	{name: "demo", setup: func(f *fakeBackend) {
		withAccounts(f)
		f.store = "memory (demo: nothing is saved)"
		f.demo = &app.DemoInfo{Homeserver: "http://127.0.0.1:8008", Users: []app.DemoUser{{UserID: "@alice:localhost", Password: "alice", SignedIn: true}, {UserID: "@bob:localhost", Password: "bob"}}}
	}, wait: []string{"Demo: nothing"}},
	{name: "add_account", drive: func(t *testing.T, tm *teatest.TestModel, p probe) {
		send(tm, "a")
		tm.Type("matrix.example.org")
	}, wait: []string{"matrix.example.org"}},
	{name: "details", setup: func(f *fakeBackend) { withAccounts(f); goldenDevices(f) }, drive: func(t *testing.T, tm *teatest.TestModel, p probe) {
		send(tm, "enter")
	}, wait: []string{"Element Android", "login tokens"}},
	{name: "modal", setup: withAccountsAndMint, drive: func(t *testing.T, tm *teatest.TestModel, p probe) {
		send(tm, "t")
	}, wait: []string{"Confirm it"}},
	{name: "token", setup: withAccountsAndMint, drive: func(t *testing.T, tm *teatest.TestModel, p probe) {
		send(tm, "t")
		waitText(t, p, "Confirm it")
		tm.Type("right")
		send(tm, "enter")
	}, wait: []string{"c copies it"}},
	{name: "help", setup: withAccounts, drive: func(t *testing.T, tm *teatest.TestModel, p probe) {
		send(tm, "?")
	}, wait: []string{"sign in again"}},
	{name: "keyring_locked", setup: func(f *fakeBackend) { f.accounts = lockedAccounts() }, wait: []string{"Keyring locked: unlock it"}},
	{name: "keyring_locked_details", setup: func(f *fakeBackend) { f.accounts = lockedAccounts() }, drive: func(t *testing.T, tm *teatest.TestModel, p probe) {
		send(tm, "enter")
	}, wait: []string{"Refresh token", "unknown", "login tokens", "Devices (0)"}}, // loaded: versions and devices
	{name: "device_grant", setup: func(f *fakeBackend) { oauthServer(f, matrix.AuthOAuthOnly) }, still: true, drive: func(t *testing.T, tm *teatest.TestModel, p probe) {
		send(tm, "a")
		waitText(t, p, "Add a Matrix account")
		tm.Type("matrix.example.org")
		send(tm, "tab")
		waitText(t, p, "OAuth 2.0 server")
		send(tm, "enter")
	}, wait: []string{"QX7R2M", "expires in 20m 00s"}},
	{name: "long_list_filter", setup: func(f *fakeBackend) { f.accounts = shuffledAccounts(40) }, drive: func(t *testing.T, tm *teatest.TestModel, p probe) {
		send(tm, "/")
		tm.Type("user01")
	}, wait: []string{"10 of 40"}},
}

func withAccounts(f *fakeBackend) { f.accounts = sampleAccounts() }

func withAccountsAndMint(f *fakeBackend) {
	withAccounts(f)
	uiaMint(f, func() (*matrix.GetLoginTokenResponse, error) { return tokenResp(testToken, 120000), nil })
}

func TestGolden(t *testing.T) {
	for _, sc := range goldenScreens {
		for _, size := range [][2]int{{80, 24}, {120, 40}} {
			for _, noColor := range []bool{false, true} {
				name := fmt.Sprintf("%s/%dx%d", sc.name, size[0], size[1])
				if noColor {
					name += "_nocolor"
				}
				t.Run(name, func(t *testing.T) {
					runGolden(t, sc, size[0], size[1], noColor)
				})
			}
		}
	}
	for _, size := range [][2]int{{59, 24}, {80, 19}, {40, 10}} {
		t.Run(fmt.Sprintf("too_small/%dx%d", size[0], size[1]), func(t *testing.T) {
			runGolden(t, goldenScreen{name: "too_small", setup: withAccounts, wait: []string{"too small"}}, size[0], size[1], false)
		})
	}
}

func runGolden(t *testing.T, sc goldenScreen, w, h int, noColor bool) {
	f := newFake()
	if sc.setup != nil {
		sc.setup(f)
	}
	p := newProbe(New(f, RunOptions{NoColor: noColor, Hostname: "testhost", Now: func() time.Time { return t0 }}))
	p.still = sc.still
	tm := teatest.NewTestModel(t, p, teatest.WithInitialTermSize(w, h))
	waitText(t, p, "") // wait for the first frame: the program is running
	if sc.drive != nil {
		sc.drive(t, tm, p)
	}
	waitText(t, p, sc.wait...)
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(probe).Model.(*model)
	if final.width != w || final.height != h {
		t.Fatalf("model saw %dx%d, want %dx%d", final.width, final.height, w, h)
	}
	teatest.RequireEqualOutput(t, []byte(final.View().Content))
}

var _ tea.Model = (*model)(nil)

// probe records the latest frame the program drew, so tests wait on what is
// on screen rather than on the renderer's byte stream, in which the diffing
// renderer may split a phrase across cursor moves.
type probe struct {
	tea.Model
	mu    *sync.Mutex
	last  *string
	still bool // spinner frames are dropped
}

func newProbe(m tea.Model) probe { return probe{Model: m, mu: new(sync.Mutex), last: new(string)} }

func (p probe) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if _, ok := msg.(spinner.TickMsg); ok && p.still {
		return p, nil
	}
	var cmd tea.Cmd
	p.Model, cmd = p.Model.Update(msg)
	return p, cmd
}

func (p probe) View() tea.View {
	v := p.Model.View()
	p.mu.Lock()
	*p.last = stripANSI(v.Content)
	p.mu.Unlock()
	return v
}

func (p probe) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.last
}

// waitText waits until every text is on screen.
func waitText(t *testing.T, p probe, texts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		scr := p.screen()
		ok := scr != ""
		for _, w := range texts {
			if !strings.Contains(scr, w) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q; screen:\n%s", texts, scr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
