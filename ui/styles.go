package ui

import (
	"image/color"

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

// NewStyles builds the styles; noColor keeps only text attributes (bold,
// faint, reverse), as NO_COLOR asks.
func NewStyles(noColor bool) Styles {
	c := func(s lipgloss.Style, fg string) lipgloss.Style {
		if noColor {
			return s
		}
		return s.Foreground(lipgloss.Color(fg))
	}
	n := lipgloss.NewStyle
	s := Styles{NoColor: noColor}
	s.Header = n().Bold(true)
	s.Title = c(n().Bold(true), "#7D56F4")
	s.StoreName = c(n().Faint(noColor), "#8A8A8A")
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
	s.Label = c(n(), "#8A8A8A")
	s.Value = n()
	s.Muted = c(n().Faint(noColor), "#767676")
	s.UserID = c(n().Bold(true), "#5FAFFF")
	s.Selected = c(n().Bold(true), "#7D56F4")
	s.Section = c(n().Bold(true), "#AF87FF")
	s.OK = c(n(), "#5FD75F")
	s.Warn = c(n(), "#FFAF00")
	s.Bad = c(n().Bold(noColor), "#FF5F5F")
	s.Busy = c(n(), "#5FAFFF")
	s.Error = c(n().Bold(noColor), "#FF5F5F")
	s.Status = c(n(), "#AFAFAF")
	s.Token = n().Bold(true).Border(lipgloss.RoundedBorder()).Padding(0, 1)
	if !noColor {
		s.Token = s.Token.BorderForeground(lipgloss.Color("#7D56F4"))
	}
	s.Secret = c(n().Reverse(noColor), "#FFAF00")
	s.Modal = n().Border(lipgloss.RoundedBorder()).Padding(0, 2)
	if !noColor {
		s.Modal = s.Modal.BorderForeground(lipgloss.Color("#7D56F4"))
	}
	if noColor {
		s.QR = n()
	} else {
		s.QR = n().Foreground(lipgloss.Color("#000000")).Background(lipgloss.Color("#FFFFFF"))
	}
	s.FieldFocused = c(n().Bold(true), "#7D56F4")
	s.FieldBlurred = c(n(), "#8A8A8A")
	if !noColor {
		s.ProgressFull = lipgloss.Color("#7D56F4")
		s.ProgressEmpty = lipgloss.Color("#4E4E4E")
	}

	s.Help = help.DefaultDarkStyles()
	if noColor {
		s.Help = help.Styles{
			Ellipsis: n(), ShortKey: n().Bold(true), ShortDesc: n(), ShortSeparator: n(),
			FullKey: n().Bold(true), FullDesc: n(), FullSeparator: n(),
		}
	}

	s.Input = textinput.DefaultDarkStyles()
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
