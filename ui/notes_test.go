package ui

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"mxauth/matrix/matrixtest/clocktest"
	"mxauth/matrix/session"
)

// statusArea is the bottom of the screen, where the status line sits above the help bar.
func statusArea(m *model) string {
	lines := strings.Split(stripANSI(content(m)), "\n")
	return strings.Join(lines[max(0, len(lines)-3):], "\n")
}

func TestNotesShownAtStart(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	clk := clocktest.New(t0)
	notes := []string{
		"@bob:example.org (device BOBDEV): finished removing the account,\nwhich an earlier run had started",
		"  ",
		"evil\x1b[2Jnote",
	}
	m := newModel(t.Context(), f, RunOptions{Now: clk.Now, Notes: notes})
	m.Update(tea.WindowSizeMsg{Width: 200, Height: 30})
	got := statusArea(m)
	want := "@bob:example.org (device BOBDEV): finished removing the account, which an earlier run had started · evilnote"
	if !strings.Contains(got, want) {
		t.Fatalf("status line lacks the notes on one line:\n%s", got)
	}
	if strings.Contains(content(m), "\x1b[2J") {
		t.Fatal("a note's escape sequence reached the screen")
	}

	// A background event right away leaves the notes in place...
	ev := session.Event{Kind: session.EventRefreshed, At: t0,
		Status: session.Status{Account: session.AccountKey{UserID: "@alice:example.org"}, State: session.StateActive}}
	clk.Advance(2 * time.Second)
	m.Update(eventMsg{ev})
	if got := statusArea(m); !strings.Contains(got, "finished removing") || strings.Contains(got, "refreshed @alice") {
		t.Fatalf("an early event replaced the notes:\n%s", got)
	}
	// ...a later one takes the line over.
	clk.Advance(notesHold)
	m.Update(eventMsg{ev})
	if got := statusArea(m); strings.Contains(got, "finished removing") || !strings.Contains(got, "refreshed @alice") {
		t.Fatalf("the event after the hold is not shown:\n%s", got)
	}
}

func TestNotesGiveWayToActions(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	m := newModel(t.Context(), f, RunOptions{Now: func() time.Time { return t0 }, Notes: []string{"keyring note"}})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	mustContain(t, statusArea(m), "keyring note")
	press(m, "r") // what the user asks for is always reported
	if got := statusArea(m); strings.Contains(got, "keyring note") || !strings.Contains(got, "refreshed @alice:example.org") {
		t.Fatalf("refresh result not shown over the notes:\n%s", got)
	}
}

func TestNoNotesNoStatus(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	for _, notes := range [][]string{nil, {"", " \n "}} {
		m := newModel(t.Context(), f, RunOptions{Now: func() time.Time { return t0 }, Notes: notes})
		if m.status != "" || !m.notesUntil.IsZero() {
			t.Fatalf("notes %q gave status %q", notes, m.status)
		}
	}
}

// TestStatusLinesWrap: a long status wraps to at most three lines that fit the
// width, and says it was cut; a short one stays one line.
func TestStatusLinesWrap(t *testing.T) {
	long := strings.Repeat("keyring advice ", 30)
	lines := statusLines(long, 40)
	if len(lines) != maxStatusLines {
		t.Fatalf("%d lines, want %d: %q", len(lines), maxStatusLines, lines)
	}
	for _, l := range lines {
		if lipgloss.Width(l) > 40 {
			t.Fatalf("line wider than 40: %q", l)
		}
	}
	if !strings.HasSuffix(lines[len(lines)-1], "…") {
		t.Fatalf("a cut message must end with an ellipsis: %q", lines)
	}
	if got := statusLines("refreshed @bob:example.org", 40); len(got) != 1 || got[0] != "refreshed @bob:example.org" {
		t.Fatalf("short status: %q", got)
	}
}
