package main

import (
	"io"
	"os"

	"github.com/charmbracelet/colorprofile"

	"mxauth/ui"
)

// writeQR prints text as a QR code with the same renderer as the full-screen
// app. With colour it is black on white, so it scans on dark terminal themes
// too; the colours are fitted to what the terminal supports.
func writeQR(w io.Writer, text string, colour bool) error {
	out, err := ui.RenderQR(text, !colour)
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
