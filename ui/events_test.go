package ui

import (
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"mxauth/matrix/matrixtest/clocktest"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// countingBackend counts full account reloads.
type countingBackend struct {
	*fakeBackend
	reloads int
}

func (c *countingBackend) Accounts() []app.Account {
	c.reloads++
	return c.fakeBackend.Accounts()
}

func refreshedEvent(a app.Account, st session.Status) session.Event {
	st.Account = session.AccountKey{UserID: a.UserID, DeviceID: a.DeviceID}
	return session.Event{Kind: session.EventRefreshed, Status: st, At: t0}
}

func TestEventUpdatesItsRowOnly(t *testing.T) {
	f := &countingBackend{fakeBackend: newFake()}
	f.accounts = sampleAccounts()
	clk := clocktest.New(t0)
	m := newModel(t.Context(), f, RunOptions{Now: clk.Now})
	m.tick = func() tea.Cmd { return nil }
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	mustContain(t, content(m), "expires in 4m 12s", "needs sign-in · press s")
	before := f.reloads

	// The event's status reaches alice's row without a reload of every account.
	m.Update(eventMsg{refreshedEvent(f.accounts[0], session.Status{State: session.StateActive, ExpiresAt: t0.Add(10 * time.Minute)})})
	mustContain(t, content(m), "expires in 10m 00s", "refreshed @alice:example.org", "needs sign-in · press s")
	if f.reloads != before {
		t.Fatalf("an event for a listed account reloaded all accounts (%d reloads)", f.reloads-before)
	}
	// The next tick still reloads, so anything else that changed shows up.
	f.mu.Lock()
	f.accounts[1].Status = session.Status{State: session.StateActive, ExpiresAt: t0.Add(time.Hour)}
	f.mu.Unlock()
	tick(m, clk, time.Second)
	mustContain(t, content(m), "expires in 59m 59s")
	mustNotContain(t, content(m), "needs sign-in · press s")
}

func TestEventForUnknownAccountOrDeviceReloads(t *testing.T) {
	f := &countingBackend{fakeBackend: newFake()}
	f.accounts = sampleAccounts()
	m := newModel(t.Context(), f, RunOptions{Now: func() time.Time { return t0 }})
	m.tick = func() tea.Cmd { return nil }
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})

	// Signed in again on a new device: the event names the new device.
	f.mu.Lock()
	f.accounts[1].DeviceID = "BOBNEW"
	f.accounts[1].Status = session.Status{State: session.StateActive}
	newBob := f.accounts[1]
	f.mu.Unlock()
	before := f.reloads
	m.Update(eventMsg{refreshedEvent(newBob, newBob.Status)})
	if f.reloads != before+1 {
		t.Fatalf("an event for another device must reload the accounts (%d reloads)", f.reloads-before)
	}
	mustContain(t, content(m), "BOBNEW")

	// An account the list has not seen yet.
	dave := app.Account{UserID: "@dave:example.org", DeviceID: "DAVEDEV", Homeserver: "https://matrix.example.org"}
	f.mu.Lock()
	f.accounts = append(f.accounts, dave)
	f.mu.Unlock()
	m.Update(eventMsg{refreshedEvent(dave, session.Status{State: session.StateActive})})
	if f.reloads != before+2 {
		t.Fatalf("an event for an unlisted account must reload the accounts (%d reloads)", f.reloads-before)
	}
	mustContain(t, content(m), "@dave:example.org")
}
