package ui

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// shuffledAccounts makes n signed-in accounts, shuffled as parallel sign-ins
// leave them.
func shuffledAccounts(n int) []app.Account {
	as := make([]app.Account, n)
	for i := range as {
		as[i] = app.Account{UserID: fmt.Sprintf("@user%03d:localhost", i+1), DeviceID: "D", Homeserver: "http://127.0.0.1:8008",
			Status: session.Status{State: session.StateActive, ExpiresAt: t0.Add(30 * time.Second)}}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { as[i], as[j] = as[j], as[i] })
	return as
}

func TestAccountsListedInStableOrder(t *testing.T) {
	f := newFake()
	f.accounts = shuffledAccounts(5)
	m, clk := testModel(t, f)
	view := stripANSI(content(m))
	last := -1
	for i := 1; i <= 5; i++ {
		at := strings.Index(view, fmt.Sprintf("@user%03d", i))
		if at < last {
			t.Fatalf("accounts not in user-ID order:\n%s", view)
		}
		last = at
	}
	press(m, "down", "down") // on user003
	// Another process adds an account that sorts first: the cursor stays on user003.
	f.mu.Lock()
	f.accounts = append(f.accounts, app.Account{UserID: "@aaron:localhost", DeviceID: "A", Status: session.Status{State: session.StateActive}})
	f.mu.Unlock()
	tick(m, clk, time.Second)
	if a, _ := m.home.selected(); a.UserID != "@user003:localhost" {
		t.Fatalf("the cursor moved to %s when another account came", a.UserID)
	}
}

func TestLongListPagesAndEnds(t *testing.T) {
	f := newFake()
	f.accounts = shuffledAccounts(100)
	m, _ := testModel(t, f)
	content(m) // lay out once: the page size comes from the layout
	page := m.home.pageRows()
	if page < 2 || page >= 100 {
		t.Fatalf("page size %d", page)
	}
	bar := helpBar(m)
	mustContain(t, bar, "/ filter")
	mustContain(t, stripANSI(content(m)), "pgup/pgdn home/end")
	press(m, "end")
	if a, _ := m.home.selected(); a.UserID != "@user100:localhost" {
		t.Fatalf("end selects %s", a.UserID)
	}
	mustContain(t, stripANSI(content(m)), "@user100:localhost", "100/100")
	press(m, "home")
	if m.home.list.Index() != 0 {
		t.Fatal("home goes to the first account")
	}
	press(m, "pgdown")
	if m.home.list.Index() != page {
		t.Fatalf("pgdown moved to %d, want %d", m.home.list.Index(), page)
	}
	mustContain(t, stripANSI(content(m)), fmt.Sprintf("@user%03d:localhost", page+1))
	press(m, "pgup")
	if m.home.list.Index() != 0 {
		t.Fatalf("pgup moved to %d", m.home.list.Index())
	}
}

func TestFilterNarrowsTheList(t *testing.T) {
	f := newFake()
	f.accounts = append(shuffledAccounts(100), sampleAccounts()...)
	m, _ := testModel(t, f)
	press(m, "/")
	if !m.home.filtering() {
		t.Fatal("/ starts a filter")
	}
	mustContain(t, helpBar(m), "enter keep filter", "esc clear filter")
	typeText(m, "user05")
	view := stripANSI(content(m))
	mustContain(t, view, "@user050:localhost", "@user051:localhost", "10 of 103")
	mustNotContain(t, view, "@user049:localhost", "@alice")
	press(m, "enter") // keep the filter, back to moving
	press(m, "down", "enter")
	if m.screen != screenDetails || m.details.userID != "@user051:localhost" {
		t.Fatalf("details of %q, want the second match", m.details.userID)
	}
	press(m, "esc", "esc") // back home, then drop the filter
	if m.home.list.FilterValue() != "" || len(m.home.shown()) != 103 {
		t.Fatal("esc clears the filter")
	}
	if a, _ := m.home.selected(); a.UserID != "@user051:localhost" {
		t.Fatalf("clearing the filter keeps the selection, got %s", a.UserID)
	}
}

func TestDemoBannerSaysWhoIsSignedInAndWhereThePasswordsAre(t *testing.T) {
	f := newFake()
	f.accounts = shuffledAccounts(3)
	f.demo = &app.DemoInfo{Homeserver: "http://127.0.0.1:8008",
		Users: []app.DemoUser{{UserID: "@alice:localhost", Password: "apw", SignedIn: true}, {UserID: "@bob:localhost", Password: "bpw"}},
		Crowd: &app.DemoCrowd{First: "@user001:localhost", Last: "@user003:localhost", Count: 3, Password: "cpw"}}
	m, _ := testModel(t, f)
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	flat := strings.Join(strings.Fields(stripANSI(content(m))), " ")
	mustContain(t, flat, "signed in: @alice:localhost / apw", "press a to add @bob:localhost / bpw",
		"@user001:localhost … @user003:localhost (3, signed in) share password cpw")
}
