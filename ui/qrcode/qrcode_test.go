package qrcode

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
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
		drawn, n, err := Render(tok, Style(true), false)
		if err != nil {
			t.Fatal(err)
		}
		rows := strings.Split(ansi.Strip(drawn), "\n")
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
				cx, cy := x-Quiet, y-Quiet
				want := cx >= 0 && cy >= 0 && cx < code.Size && cy < code.Size && code.Black(cx, cy)
				if got != want {
					t.Fatalf("%d-char token: module (%d,%d) drawn dark=%v, encoder says %v", len(tok), x, y, got, want)
				}
			}
		}
	}
}

func TestRenderQRShape(t *testing.T) {
	qr, n, err := Render(testToken, Style(true), false)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(qr, "\n")
	if len(rows) != (n+1)/2 {
		t.Fatalf("%d rows for %d modules", len(rows), n)
	}
	if n != 25+2*Quiet {
		t.Fatalf("a 32-character token should be a version 2 code, got %d modules", n-2*Quiet)
	}
	// The quiet zone is blank, then the finder pattern's top edge starts.
	if strings.TrimRight(rows[0], " ") != "" {
		t.Fatalf("first row should be quiet zone: %q", rows[0])
	}
	if !strings.HasPrefix(rows[1], "  █▀▀▀▀▀█") {
		t.Fatalf("finder pattern missing: %q", rows[1])
	}
	inv, _, _ := Render(testToken, Style(true), true)
	if inv == qr {
		t.Fatal("light-ink rendering must differ")
	}
}

// testToken is a 32-character login token, as the app's tests use.
const testToken = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
