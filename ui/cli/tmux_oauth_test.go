package cli

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"rsc.io/qr"

	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
	"mxauth/ui/qrcode"
)

// The device-grant screen is one of the README's screenshots.
func init() { screenshots["device-grant"] = true }

// TestTmuxDemoDeviceGrant drives `mxauth demo` through an OAuth 2.0 device
// grant: carol is added on the demo's OAuth homeserver, the screen shows the
// code (in big letters and as text) and a QR code of the page with the code
// filled in, a person approves on the demo's HTML pages (a cookie jar, over
// HTTP), and carol is then listed with her countdown.
func TestTmuxDemoDeviceGrant(t *testing.T) {
	t.Parallel()
	needTmux(t)
	driveDeviceGrant(t, false)
	if os.Getenv("MXAUTH_UPDATE_ASSETS") == "1" {
		t.Run("colour", func(t *testing.T) { driveDeviceGrant(t, true) })
	}
}

func driveDeviceGrant(t *testing.T, colour bool) {
	name := "grant"
	if colour {
		name = "grant-colour"
	}
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-%s-%d", name, os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	look := "NO_COLOR=1"
	if colour {
		look = "COLORTERM=truecolor"
	}
	launch := fmt.Sprintf("env -i PATH=%q HOME=%q TERM=xterm-256color %s %q demo", os.Getenv("PATH"), t.TempDir(), look, binPath)
	m.must("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", launch)

	screen, _ := m.wait("the demo's first screen", regexp.MustCompile(`(?s)@alice:\S+.*expires in \d+s`))
	flat := strings.Join(strings.Fields(screen), " ")
	banner := regexp.MustCompile(`OAuth 2\.0 homeserver (http://127\.0\.0\.1:\d+): add (@carol:\S+) / ([a-z0-9]+), approve at (http://\S+)`).FindStringSubmatch(flat)
	if banner == nil {
		t.Fatalf("the banner names no OAuth homeserver, user and approval page:\n%s", screen)
	}
	hs, carol, password, approval := banner[1], banner[2], banner[3], banner[4]

	m.keys("a")
	m.wait("the add-account form", regexp.MustCompile(`Add a Matrix account`))
	m.literal(hs)
	m.keys("Tab")
	screen, _ = m.wait("the server's kind", regexp.MustCompile(`homeserver found · OAuth 2\.0 server`))
	if !strings.Contains(screen, "not needed") {
		t.Fatalf("an OAuth server needs no password in the form:\n%s", screen)
	}
	m.keys("Enter")
	screen, sub := m.wait("the device grant", regexp.MustCompile(`(?s)code (\w{6})\s.*waiting for approval · expires in \d+m \d+s`))
	code := sub[1]
	// The code is drawn in big letters too: their first row is on screen.
	for _, r := range code {
		if _, ok := bigRow(r); !ok {
			t.Fatalf("the code %q has a character the screen cannot draw big", code)
		}
	}
	if !strings.Contains(screen, strings.TrimRight(bigCodeRow(code), " ")) {
		t.Fatalf("the code %s is not drawn in big letters:\n%s", code, screen)
	}
	if !colour { // in colour the code is ink on white, which the text capture cannot tell apart
		checkGrantQR(t, screen, approval+"?code="+code)
	}
	if colour {
		saveScreenshot(t, m, "device-grant")
	} else {
		saveAsset(t, "device-grant", screen)
	}

	page := browsertest.New(t).AnswerDevice(approval, code, browsertest.Answer{User: carol, Password: password, Decision: browsertest.Approve}).Body
	if strings.Contains(strings.ToLower(page), "denied") {
		t.Fatalf("the approval was refused:\n%s", page)
	}
	screen, _ = m.wait("carol listed with her countdown",
		regexp.MustCompile(regexp.QuoteMeta(carol)+`\s+device \w+ · `+regexp.QuoteMeta(hs)+`\s+● active · expires in \d+s`))
	if strings.Contains(screen, "OAuth sign-in") {
		t.Fatalf("the sign-in screen is still up:\n%s", screen)
	}
	if !colour {
		checkOAuthDetails(t, m, carol, hs)
	}
	m.keys("q")
}

// checkOAuthDetails opens the details of an OAuth account (selected on the
// list): they say how it signed in, o shows the account page (no browser
// here: its address and QR code), and t explains the handoff without login
// tokens, with the page.
func checkOAuthDetails(t *testing.T, m *tmuxTerm, user, hs string) {
	t.Helper()
	m.keys("Enter")
	screen, _ := m.wait("the details", regexp.MustCompile(`(?s)Account details.*`+regexp.QuoteMeta(user)+`.*Sign-in\s+OAuth 2\.0`))
	if !strings.Contains(screen, "o account page") {
		t.Fatalf("the help bar does not offer the account page:\n%s", screen)
	}
	m.keys("o")
	screen, _ = m.wait("the account page", regexp.MustCompile(`(?s)Account page.*`+regexp.QuoteMeta(hs)+`/auth/account`))
	if len(qrRows(screen)) < 10 {
		t.Fatalf("no QR code of the account page:\n%s", screen)
	}
	m.keys("Escape")
	m.wait("the details again", regexp.MustCompile(`v reveal token`))
	m.keys("t")
	m.wait("the handoff without login tokens", regexp.MustCompile(`(?s)cannot mint login tokens.*Your account page:.*`+regexp.QuoteMeta(hs)+`/auth/account`))
	m.keys("Escape")
	m.wait("the details again", regexp.MustCompile(`v reveal token`))
	m.keys("Escape")
	m.wait("the accounts", regexp.MustCompile(`mxauth · Accounts`))
}

// TestTmuxOAuthServerWithPasswords: on a server that signs in through OAuth
// but still takes passwords, the add form says so, ctrl+p switches to the
// password, and the account's details say it signed in with a password
// through the compatibility layer.
func TestTmuxOAuthServerWithPasswords(t *testing.T) {
	t.Parallel()
	needTmux(t)
	c := newCLI(t)
	srv, alice, pw := startHomeserver(t, homeserver.Options{Delegated: true, PasswordCompat: true, AccessTokenLifetime: time.Hour})
	m := startTUI(t, c, "oauth-compat")
	m.wait("the empty list", regexp.MustCompile(`No accounts yet`))
	m.keys("a")
	m.wait("the add-account form", regexp.MustCompile(`Add a Matrix account`))
	m.literal(srv.URL())
	m.keys("Tab")
	screen, _ := m.wait("the server's kind", regexp.MustCompile(`OAuth 2\.0 server, also takes passwords`))
	if !strings.Contains(screen, "not needed") || !strings.Contains(screen, "ctrl+p use password") {
		t.Fatalf("an OAuth server that takes passwords offers OAuth first, and the password on ctrl+p:\n%s", screen)
	}
	m.keys("C-p")
	m.wait("the password form", regexp.MustCompile(`enter signs in with your password`))
	m.literal(pw)
	m.keys("BTab")
	m.literal(alice)
	m.keys("Enter")
	m.wait("alice listed", regexp.MustCompile(`(?s)`+regexp.QuoteMeta(alice)+`.*device \w+ .*active`))
	m.keys("Enter")
	m.wait("the details", regexp.MustCompile(`Sign-in\s+password, through the compatibility layer of an OAuth 2\.0`))
	m.keys("Escape", "q")
}

// checkGrantQR checks that the screen shows the QR code of want, in either
// polarity (the app picks it from the terminal's background).
func checkGrantQR(t *testing.T, screen, want string) {
	t.Helper()
	if len(qrRows(screen)) < 10 {
		t.Fatalf("no QR code on the device-grant screen:\n%s", screen)
	}
	code, err := qr.Encode(want, qr.L)
	if err != nil {
		t.Fatal(err)
	}
	for _, inkLight := range []bool{true, false} {
		drawn, _ := qrcode.Draw(code, qrcode.Style(true), inkLight)
		found := true
		for _, row := range strings.Split(drawn, "\n") {
			if strings.TrimSpace(row) != "" && !strings.Contains(screen, row) {
				found = false
				break
			}
		}
		if found {
			return
		}
	}
	t.Fatalf("the QR code on the screen is not of %s:\n%s", want, screen)
}

// bigCodeRow is the top row of code in the screen's big letters, as far as
// this test knows them: the first row of each glyph with two blanks between.
func bigCodeRow(code string) string {
	var parts []string
	for _, r := range code {
		row, _ := bigRow(r)
		parts = append(parts, row)
	}
	return strings.Join(parts, "  ")
}

// bigRow is the first row of the big letter for r (A–Z, 0–9).
func bigRow(r rune) (string, bool) {
	rows := map[rune]string{
		'A': " ### ", 'B': "#### ", 'C': " ####", 'D': "#### ", 'E': "#####", 'F': "#####", 'G': " ####",
		'H': "#   #", 'I': "#####", 'J': "#####", 'K': "#   #", 'L': "#    ", 'M': "#   #", 'N': "#   #",
		'O': " ### ", 'P': "#### ", 'Q': " ### ", 'R': "#### ", 'S': " ####", 'T': "#####", 'U': "#   #",
		'V': "#   #", 'W': "#   #", 'X': "#   #", 'Y': "#   #", 'Z': "#####",
		'0': " ### ", '1': "  #  ", '2': " ### ", '3': "#### ", '4': "#   #", '5': "#####", '6': " ### ",
		'7': "#####", '8': " ### ", '9': " ### ",
	}
	row, ok := rows[r]
	return strings.ReplaceAll(row, "#", "█"), ok
}

// TestTmuxDemoBrowserSignIn: on the device-grant screen b switches to the
// browser sign-in. Without a graphical session the app opens nothing and
// shows the address whole; a browser (a cookie jar) follows it through the
// demo's sign-in and consent pages back to the app's loopback listener, and
// carol is listed with her countdown.
func TestTmuxDemoBrowserSignIn(t *testing.T) {
	t.Parallel()
	needTmux(t)
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-browser-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	launch := fmt.Sprintf("env -i PATH=%q HOME=%q TERM=xterm-256color NO_COLOR=1 %q demo", os.Getenv("PATH"), t.TempDir(), binPath)
	m.must("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "30", launch)
	screen, _ := m.wait("the demo's first screen", regexp.MustCompile(`(?s)@alice:\S+.*expires in \d+s`))
	flat := strings.Join(strings.Fields(screen), " ")
	banner := regexp.MustCompile(`OAuth 2\.0 homeserver (http://127\.0\.0\.1:\d+): add (@carol:\S+) / ([a-z0-9]+),`).FindStringSubmatch(flat)
	if banner == nil {
		t.Fatalf("the banner names no OAuth homeserver:\n%s", screen)
	}
	hs, carol, password := banner[1], banner[2], banner[3]

	m.keys("a")
	m.wait("the add-account form", regexp.MustCompile(`Add a Matrix account`))
	m.literal(hs)
	m.keys("Tab")
	m.wait("the server's kind", regexp.MustCompile(`OAuth 2\.0 server`))
	m.keys("Enter")
	m.wait("the device grant", regexp.MustCompile(`waiting for approval`))
	m.keys("b")
	screen, _ = m.wait("the browser sign-in", regexp.MustCompile(`(?s)Open this address in a browser on this computer:.*c copies the address.*waiting for the browser sign-in`))
	addr := browserAddress(screen)
	if !strings.HasPrefix(addr, hs+"/auth/authorize?") || !strings.Contains(addr, "state=") || !strings.Contains(addr, "code_challenge_method=S256") {
		t.Fatalf("the address on the screen is not the whole authorization request: %q\n%s", addr, screen)
	}

	back := browsertest.New(t).Authorize(addr, browsertest.Answer{User: carol, Password: password, Decision: browsertest.Approve})
	if back.URL.Hostname() != "127.0.0.1" || back.URL.Path != "/callback" || !strings.Contains(back.Body, "terminal") {
		t.Fatalf("the consent did not return to the app's listener (%s):\n%s", back.URL, back.Body)
	}
	m.wait("carol listed with her countdown",
		regexp.MustCompile(regexp.QuoteMeta(carol)+`\s+device \w+ · `+regexp.QuoteMeta(hs)+`\s+● active · expires in \d+s`))
	m.keys("q")
}

// browserAddress reads the browser sign-in's address off the screen, where
// it is broken across lines to fit.
func browserAddress(screen string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(screen, "\n") {
		switch {
		case strings.Contains(l, "Open this address in a browser"):
			in = true
		case strings.Contains(l, "c copies the address"):
			return b.String()
		case in:
			b.WriteString(strings.TrimSpace(l))
		}
	}
	return b.String()
}
