package ui

import (
	"strings"

	"charm.land/lipgloss/v2"
	"rsc.io/qr"
)

// qrQuiet is the light margin around the code, in modules; scanners need one.
const qrQuiet = 2

// renderQR draws text as a QR code with half blocks: each character cell
// holds two modules stacked (▀ ▄ █ or space). With colour, dark modules are
// drawn black on white whatever the terminal theme. Without colour, ink is
// the terminal's foreground, so on a dark background the light modules are
// the ones drawn (inkLight) to keep the code dark-on-light.
func renderQR(text string, style lipgloss.Style, inkLight bool) (string, int, error) {
	code, err := qr.Encode(text, qr.L)
	if err != nil {
		return "", 0, err
	}
	out, n := renderCode(code, style, inkLight)
	return out, n, nil
}

// qrInkLight is the one rule, shared by the full-screen app and
// login-token --qr, for which modules are drawn: with colour the code is
// painted black on white; without, ink is the terminal's foreground, so on a
// dark background the light modules (quiet zone included) are the ones drawn.
func qrInkLight(noColor, darkBG bool) bool { return noColor && darkBG }

// RenderQR draws text as a QR code in half blocks for printing outside the
// full-screen app (mxauth login-token --qr), one line per row with a
// trailing newline, with the same polarity and quiet zone as the app. With
// colour the code is black on white, as true colour (pass it through a
// colorprofile writer to fit the terminal); without, darkBG says whether the
// terminal's background is dark (false for paper and files).
func RenderQR(text string, noColor, darkBG bool) (string, error) {
	out, _, err := renderQR(text, NewStyles(noColor, darkBG).QR, qrInkLight(noColor, darkBG))
	if err != nil {
		return "", err
	}
	return out + "\n", nil
}

// qrRows is how many terminal rows a code takes.
func qrRows(code *qr.Code) int { return (code.Size + 2*qrQuiet + 1) / 2 }

// renderCode draws an encoded code; it returns the rows and the width in cells.
func renderCode(code *qr.Code, style lipgloss.Style, inkLight bool) (string, int) {
	n := code.Size + 2*qrQuiet
	dark := func(x, y int) bool {
		x, y = x-qrQuiet, y-qrQuiet
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
