// Package qrcode draws QR codes in terminal half blocks, one renderer for the
// full-screen app's token view and for mxauth login-token --qr, so both draw
// the same code with the same polarity and quiet zone.
package qrcode

import (
	"strings"

	"charm.land/lipgloss/v2"
	"rsc.io/qr"
)

// Quiet is the light margin around the code, in modules; scanners need one.
const Quiet = 2

// Style is how a code is painted: explicit black on white with colour, so it
// scans on dark themes too; the terminal's own colours without.
func Style(noColor bool) lipgloss.Style {
	if noColor {
		return lipgloss.NewStyle()
	}
	return lipgloss.NewStyle().Foreground(lipgloss.Color("#000000")).Background(lipgloss.Color("#FFFFFF"))
}

// Render draws text as a QR code with half blocks: each character cell
// holds two modules stacked (▀ ▄ █ or space). With colour, dark modules are
// drawn black on white whatever the terminal theme. Without colour, ink is
// the terminal's foreground, so on a dark background the light modules are
// the ones drawn (inkLight) to keep the code dark-on-light. It returns the
// rows and the width in cells.
func Render(text string, style lipgloss.Style, inkLight bool) (string, int, error) {
	code, err := qr.Encode(text, qr.L)
	if err != nil {
		return "", 0, err
	}
	out, n := Draw(code, style, inkLight)
	return out, n, nil
}

// InkLight is the one rule, shared by the full-screen app and
// login-token --qr, for which modules are drawn: with colour the code is
// painted black on white; without, ink is the terminal's foreground, so on a
// dark background the light modules (quiet zone included) are the ones drawn.
func InkLight(noColor, darkBG bool) bool { return noColor && darkBG }

// ForPrinting draws text as a QR code in half blocks for printing outside the
// full-screen app (mxauth login-token --qr), one line per row with a
// trailing newline, with the same polarity and quiet zone as the app. With
// colour the code is black on white, as true colour (pass it through a
// colorprofile writer to fit the terminal); without, darkBG says whether the
// terminal's background is dark (false for paper and files).
func ForPrinting(text string, noColor, darkBG bool) (string, error) {
	out, _, err := Render(text, Style(noColor), InkLight(noColor, darkBG))
	if err != nil {
		return "", err
	}
	return out + "\n", nil
}

// Rows is how many terminal rows a code takes.
func Rows(code *qr.Code) int { return (code.Size + 2*Quiet + 1) / 2 }

// Draw draws an encoded code; it returns the rows and the width in cells.
func Draw(code *qr.Code, style lipgloss.Style, inkLight bool) (string, int) {
	n := code.Size + 2*Quiet
	dark := func(x, y int) bool {
		x, y = x-Quiet, y-Quiet
		if x < 0 || y < 0 || x >= code.Size || y >= code.Size {
			return false
		}
		return code.Black(x, y)
	}
	ink := func(x, y int) bool {
		if y >= n {
			return false // below the code: never ink
		}
		return dark(x, y) != inkLight
	}
	var rows []string
	var b strings.Builder
	for y := 0; y < n; y += 2 {
		b.Reset()
		for x := 0; x < n; x++ {
			top, bot := ink(x, y), ink(x, y+1)
			switch {
			case top && bot:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bot:
				b.WriteRune('▄')
			default:
				b.WriteRune(' ')
			}
		}
		rows = append(rows, style.Render(b.String()))
	}
	return strings.Join(rows, "\n"), n
}
