package ui

import (
	"image/color"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"mxauth/matrix"
	"mxauth/matrix/matrixtest/clocktest"
)

// The palette follows the background colour the terminal reports: a user
// ID is light blue on a dark terminal and dark blue on a light one.
func TestPaletteFollowsTerminalBackground(t *testing.T) {
	const darkBlue, lightBlue = "38;2;0;95;175", "38;2;95;175;255"
	f := newFake()
	f.accounts = sampleAccounts()
	f.devices = []matrix.Device{{DeviceID: "ALICEDEV", DisplayName: "mxauth on testhost"}}
	m, _ := testModel(t, f)
	if v := content(m); !strings.Contains(v, lightBlue) || strings.Contains(v, darkBlue) {
		t.Fatalf("before the terminal answers, the palette should be the dark-background one:\n%q", v)
	}
	m.Update(tea.BackgroundColorMsg{Color: color.White})
	if v := content(m); !strings.Contains(v, darkBlue) || strings.Contains(v, lightBlue) {
		t.Fatalf("on a light background user IDs should be dark blue:\n%q", v)
	}
	press(m, "enter")
	if v := content(m); !strings.Contains(v, darkBlue) || strings.Contains(v, lightBlue) {
		t.Fatalf("details on a light background:\n%q", v)
	}
	m.Update(tea.BackgroundColorMsg{Color: color.Black})
	if v := content(m); !strings.Contains(v, lightBlue) || strings.Contains(v, darkBlue) {
		t.Fatalf("back on a dark background user IDs should be light blue:\n%q", v)
	}
}

// NO_COLOR keeps every screen colourless on either background.
func TestNoColorOnEitherBackground(t *testing.T) {
	for _, bg := range []color.Color{color.White, color.Black} {
		f := newFake()
		f.accounts = sampleAccounts()
		f.devices = []matrix.Device{{DeviceID: "ALICEDEV", DisplayName: "mxauth on testhost"}}
		m := newModel(t.Context(), f, RunOptions{NoColor: true, Hostname: "testhost", Now: clocktest.New(t0).Now})
		m.tick = func() tea.Cmd { return nil }
		m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
		m.Update(tea.BackgroundColorMsg{Color: bg})
		views := []string{content(m)}
		press(m, "enter")
		views = append(views, content(m))
		press(m, "esc", "a")
		views = append(views, content(m))
		for _, v := range views {
			if strings.Contains(v, "38;") || strings.Contains(v, "48;") {
				t.Fatalf("colour with NO_COLOR on %v:\n%q", bg, v)
			}
		}
	}
}
