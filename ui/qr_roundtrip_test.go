package ui

import (
	"strings"
	"testing"

	"rsc.io/qr"
)

// TestQRRoundTrip reads the half-block drawing back into modules and compares
// every one with the encoder's bitmap, quiet zone included: what the terminal
// shows is exactly the code a scanner needs.
func TestQRRoundTrip(t *testing.T) {
	for _, tok := range []string{testToken, "syl_olrIJvhn02JfT7podVyJxkQs9RVZz6ql", strings.Repeat("x", 120)} {
		code, err := qr.Encode(tok, qr.L)
		if err != nil {
			t.Fatal(err)
		}
		drawn, n, err := renderQR(tok, NewStyles(true, true).QR, false)
		if err != nil {
			t.Fatal(err)
		}
		rows := strings.Split(stripANSI(drawn), "\n")
		for y := 0; y < n; y++ {
			row := []rune(rows[y/2])
			for x := 0; x < n; x++ {
				var cell rune = ' '
				if x < len(row) {
					cell = row[x]
				}
				top := cell == '█' || cell == '▀'
				bottom := cell == '█' || cell == '▄'
				got := top
				if y%2 == 1 {
					got = bottom
				}
				cx, cy := x-qrQuiet, y-qrQuiet
				want := cx >= 0 && cy >= 0 && cx < code.Size && cy < code.Size && code.Black(cx, cy)
				if got != want {
					t.Fatalf("%d-char token: module (%d,%d) drawn dark=%v, encoder says %v", len(tok), x, y, got, want)
				}
			}
		}
	}
}
