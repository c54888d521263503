package cli

import (
	"io"
	"os"

	"mxauth/ui/qrcode"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
	"golang.org/x/term"
)

// writeQR prints text as a QR code with the same renderer, polarity and quiet
// zone as the full-screen app. With colour it is black on white, so it scans
// on dark terminal themes too; the colours are fitted to what the terminal
// supports. Without colour, darkBG says the terminal's background is dark.
func writeQR(w io.Writer, text string, colour, darkBG bool) error {
	out, err := qrcode.ForPrinting(text, !colour, darkBG)
	if err != nil {
		return err
	}
	if colour {
		// The caller already knows this is a colour terminal; an unknown or
		// missing TERM still gets the 16 basic colours rather than none.
		p := max(colorprofile.Detect(w, os.Environ()), colorprofile.ANSI)
		w = &colorprofile.Writer{Forward: w, Profile: p}
	}
	_, err = io.WriteString(w, out)
	return err
}

// terminalIsDark asks the terminal on out for its background, as the
// full-screen app does, and assumes dark, as the app does, when it does not
// answer. Output that is not a terminal (a file, paper) counts as light.
func terminalIsDark(out *os.File) bool {
	if !term.IsTerminal(int(out.Fd())) {
		return false
	}
	return lipgloss.HasDarkBackground(os.Stdin, out)
}

// printQR prints text as a QR code on w (stdout or stderr): in colour on a
// colour terminal, else in the polarity that suits the terminal's background.
func (a *program) printQR(w io.Writer, text string) error {
	out, isFile := w.(*os.File)
	colour := isFile && term.IsTerminal(int(out.Fd())) && a.getenv("NO_COLOR") == ""
	dark := !colour && isFile && terminalIsDark(out) // only matters without colour
	return writeQR(w, text, colour, dark)
}
