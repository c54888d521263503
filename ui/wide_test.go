package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"mxauth/matrix"
)

// Wide characters (CJK, emoji) take two cells each: lines are cut and
// columns lined up by display width, never by counting runes or bytes.
func TestWideCharactersKeepTheLayout(t *testing.T) {
	f := newFake()
	f.accounts = sampleAccounts()
	f.accounts[0].DisplayName = "山田太郎 🎉 テスト用アカウントのとても長い表示名がここまで続きます"
	seen := t0.Add(-2 * time.Hour).UnixMilli()
	f.devices = []matrix.Device{
		{DeviceID: "ALICEDEV", DisplayName: "山田のスマホ📱", LastSeenIP: "192.0.2.7", LastSeenTS: &seen},
		{DeviceID: "PHONE", DisplayName: "Element Android", LastSeenIP: "192.0.2.8", LastSeenTS: &seen},
		{DeviceID: "端末", DisplayName: "とても長い端末の名前がここに続きますとても長い端末の名前がここに続きます", LastSeenIP: "192.0.2.9", LastSeenTS: &seen},
	}
	m, _ := testModel(t, f)
	fitsWidth := func(view string) {
		t.Helper()
		for _, l := range strings.Split(view, "\n") {
			if w := ansi.StringWidth(l); w > 80 {
				t.Fatalf("a line is %d cells wide on an 80-cell terminal:\n%s", w, stripANSI(view))
			}
		}
	}
	home := content(m)
	fitsWidth(home)
	mustContain(t, home, "(山田太郎 🎉", "…")

	press(m, "enter")
	details := content(m)
	fitsWidth(details)
	mustContain(t, details, "(山田太郎 🎉", "山田のスマホ📱", "Element Android", "とても長い端末の名前")
	// Every device's "last seen" starts in the same column.
	col := map[string]int{}
	for _, l := range strings.Split(stripANSI(details), "\n") {
		for _, ip := range []string{"192.0.2.7", "192.0.2.8", "192.0.2.9"} {
			if i := strings.Index(l, ip); i >= 0 {
				col[ip] = ansi.StringWidth(l[:i])
			}
		}
	}
	if len(col) != 3 || col["192.0.2.7"] != col["192.0.2.8"] || col["192.0.2.8"] != col["192.0.2.9"] {
		t.Fatalf("last-seen columns at cells %v, want one column:\n%s", col, stripANSI(details))
	}
}
