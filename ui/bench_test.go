package ui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"mxauth/matrix/matrixtest/clocktest"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// Benchmarks of the accounts screen with many accounts. Run with:
//
//	go test ./ui -run '^$' -bench . -benchmem

// manyAccounts is n accounts in a mix of states, most of them counting down.
func manyAccounts(n int) []app.Account {
	out := make([]app.Account, n)
	for i := range out {
		st := session.Status{State: session.StateActive, HasRefreshToken: true,
			ExpiresAt: t0.Add(time.Duration(5+i%300) * time.Second), LastRefresh: t0.Add(-25 * time.Second)}
		switch i % 10 {
		case 7:
			st = session.Status{State: session.StateRetrying, RetryAt: t0.Add(9 * time.Second), Problem: "cannot reach the server"}
		case 8:
			st = session.Status{State: session.StateNeedsSignIn}
		case 9:
			st = session.Status{State: session.StateNonExpiring}
		}
		out[i] = app.Account{
			UserID:     fmt.Sprintf("@user%04d:matrix.example.org", i),
			DeviceID:   fmt.Sprintf("DEV%04d", i),
			Homeserver: "https://matrix.example.org",
			Status:     st,
			IsDefault:  i == 0,
		}
	}
	return out
}

// benchModel is the home screen with n accounts at w x h, the cursor in the middle.
func benchModel(b *testing.B, n, w, h int) *model {
	b.Helper()
	f := newFake()
	f.accounts = manyAccounts(n)
	clk := clocktest.New(t0)
	m := newModel(b.Context(), f, RunOptions{Now: clk.Now})
	m.tick = func() tea.Cmd { return nil } // no timers: only the model's own work is measured
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	m.home.list.Select(n / 2)
	if v := stripANSI(m.View().Content); !strings.Contains(v, fmt.Sprintf("@user%04d", n/2)) {
		b.Fatalf("selected account not on screen:\n%s", v)
	}
	return m
}

func benchView(b *testing.B, n, w, h int) {
	m := benchModel(b, n, w, h)
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}

func BenchmarkHomeView1000At120x40(b *testing.B) { benchView(b, 1000, 120, 40) }
func BenchmarkHomeView1000At80x24(b *testing.B)  { benchView(b, 1000, 80, 24) }
func BenchmarkHomeView3At120x40(b *testing.B)    { benchView(b, 3, 120, 40) }

// BenchmarkTick1000 is one 1 Hz clock tick with 1,000 accounts: the snapshot
// reload and every countdown, then the frame that follows it.
func BenchmarkTick1000(b *testing.B) {
	m := benchModel(b, 1000, 120, 40)
	b.ReportAllocs()
	for b.Loop() {
		m.Update(tickMsg{})
	}
}

func BenchmarkTickAndView1000(b *testing.B) {
	m := benchModel(b, 1000, 120, 40)
	b.ReportAllocs()
	for b.Loop() {
		m.Update(tickMsg{})
		_ = m.View()
	}
}

// TestHomeViewCostIndependentOfAccounts guards the windowed rendering: the
// accounts screen draws only the rows that fit, so 1,000 accounts cost about
// what a screenful does.
func TestHomeViewCostIndependentOfAccounts(t *testing.T) {
	allocs := func(n int) float64 {
		f := newFake()
		f.accounts = manyAccounts(n)
		m := newModel(t.Context(), f, RunOptions{Now: func() time.Time { return t0 }})
		m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
		m.home.list.Select(n / 2)
		return testing.AllocsPerRun(5, func() { _ = m.View() })
	}
	small, big := allocs(20), allocs(2000)
	if big > 2*small {
		t.Fatalf("view of 2,000 accounts makes %.0f allocations, of 20 accounts %.0f: rows off screen are being drawn", big, small)
	}
}

// BenchmarkEvent1000 is one background event (a refresh) with 1,000 accounts.
func BenchmarkEvent1000(b *testing.B) {
	m := benchModel(b, 1000, 120, 40)
	a := m.accounts[500]
	st := a.Status
	st.Account = session.AccountKey{UserID: a.UserID, DeviceID: a.DeviceID}
	ev := session.Event{Kind: session.EventRefreshed, Status: st, At: t0}
	b.ReportAllocs()
	for b.Loop() {
		m.Update(eventMsg{ev})
	}
}
