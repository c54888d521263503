package ui

import (
	"image/color"

	"mxauth/ui/qrcode"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// Styles is every look in the interface, named by meaning rather than by
// colour, so screens never pick colours themselves.
type Styles struct {
	NoColor bool

	Header    lipgloss.Style // top bar
	Title     lipgloss.Style
	StoreName lipgloss.Style
	Banner    lipgloss.Style // demo banner
	Alert     lipgloss.Style // keyring banner

	Label    lipgloss.Style
	Value    lipgloss.Style
	Muted    lipgloss.Style
	UserID   lipgloss.Style
	Selected lipgloss.Style // marker of the selected row
	Section  lipgloss.Style

	OK    lipgloss.Style
	Warn  lipgloss.Style
	Bad   lipgloss.Style
	Busy  lipgloss.Style
	Error lipgloss.Style

	Status lipgloss.Style // status line for background events
	Token  lipgloss.Style // the login token, bold and boxed
	Code   lipgloss.Style // an OAuth user code, large and plain
	Secret lipgloss.Style // a revealed access token
	Modal  lipgloss.Style // box around dialogs
	QR     lipgloss.Style // explicit black on white so codes scan on dark themes

	FieldFocused lipgloss.Style
	FieldBlurred lipgloss.Style

	ProgressFull  color.Color
	ProgressEmpty color.Color

	Help  help.Styles
	Input textinput.Styles
}

// palette is the colours of one terminal background, by meaning.
type palette struct {
	accent, label, muted, user, section, ok, warn, bad, status, barEmpty string
}

// darkPalette suits a dark terminal background, lightPalette a light one:
// the same meanings, with each colour dark or bright enough to read.
var (
	darkPalette = palette{
		accent: "#7D56F4", label: "#8A8A8A", muted: "#767676", user: "#5FAFFF", section: "#AF87FF",
		ok: "#5FD75F", warn: "#FFAF00", bad: "#FF5F5F", status: "#AFAFAF", barEmpty: "#4E4E4E",
	}
	lightPalette = palette{
		accent: "#5A3FC0", label: "#5F5F5F", muted: "#6C6C6C", user: "#005FAF", section: "#7845C8",
		ok: "#00875F", warn: "#AF5F00", bad: "#D70000", status: "#4E4E4E", barEmpty: "#C6C6C6",
	}
)

// NewStyles builds the styles for a dark or a light terminal background;
// noColor keeps only text attributes (bold, faint, reverse), as NO_COLOR
// asks, whatever the background.
func NewStyles(noColor, darkBG bool) Styles {
	p := lightPalette
	if darkBG {
		p = darkPalette
	}
	c := func(s lipgloss.Style, fg string) lipgloss.Style {
		if noColor {
			return s
		}
		return s.Foreground(lipgloss.Color(fg))
	}
	n := lipgloss.NewStyle
	s := Styles{NoColor: noColor}
	s.Header = n().Bold(true)
	s.Title = c(n().Bold(true), p.accent)
	s.StoreName = c(n().Faint(noColor), p.label)
	s.Banner = n().Bold(true).Padding(0, 1)
	if noColor {
		s.Banner = s.Banner.Reverse(true)
	} else {
		s.Banner = s.Banner.Foreground(lipgloss.Color("#1C1C1C")).Background(lipgloss.Color("#FFD75F"))
	}
	s.Alert = n().Bold(true).Padding(0, 1)
	if noColor {
		s.Alert = s.Alert.Reverse(true)
	} else {
		s.Alert = s.Alert.Foreground(lipgloss.Color("#FFFFFF")).Background(lipgloss.Color("#AF0000"))
	}
	s.Label = c(n(), p.label)
	s.Value = n()
	s.Muted = c(n().Faint(noColor), p.muted)
	s.UserID = c(n().Bold(true), p.user)
	s.Selected = c(n().Bold(true), p.accent)
	s.Section = c(n().Bold(true), p.section)
	s.OK = c(n(), p.ok)
	s.Warn = c(n(), p.warn)
	s.Bad = c(n().Bold(noColor), p.bad)
	s.Busy = c(n(), p.user)
	s.Error = c(n().Bold(noColor), p.bad)
	s.Status = c(n(), p.status)
	s.Token = n().Bold(true).Border(lipgloss.RoundedBorder()).Padding(0, 1)
	if !noColor {
		s.Token = s.Token.BorderForeground(lipgloss.Color(p.accent))
	}
	s.Code = c(n().Bold(true), p.accent)
	s.Secret = c(n().Reverse(noColor), p.warn)
	s.Modal = n().Border(lipgloss.RoundedBorder()).Padding(0, 2)
	if !noColor {
		s.Modal = s.Modal.BorderForeground(lipgloss.Color(p.accent))
	}
	s.QR = qrcode.Style(noColor)
	s.FieldFocused = c(n().Bold(true), p.accent)
	s.FieldBlurred = c(n(), p.label)
	if !noColor {
		s.ProgressFull = lipgloss.Color(p.accent)
		s.ProgressEmpty = lipgloss.Color(p.barEmpty)
	}

	s.Help = help.DefaultStyles(darkBG)
	if noColor {
		s.Help = help.Styles{
			Ellipsis: n(), ShortKey: n().Bold(true), ShortDesc: n(), ShortSeparator: n(),
			FullKey: n().Bold(true), FullDesc: n(), FullSeparator: n(),
		}
	}

	s.Input = textinput.DefaultStyles(darkBG)
	// A steady cursor: blinking would make every frame different.
	s.Input.Cursor.Blink = false
	if noColor {
		plain := textinput.StyleState{Placeholder: n().Faint(true), Suggestion: n().Faint(true), Prompt: n(), Text: n()}
		s.Input.Focused, s.Input.Blurred = plain, plain
		s.Input.Cursor.Color = nil
	}
	s.Input.Cursor.Shape = tea.CursorBlock
	return s
}
