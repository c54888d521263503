package ui

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// fitWords shortens plain text to w cells, ending on a whole word and " …",
// so a message is never cut in the middle of a word.
func fitWords(s string, w int) string {
	if lipgloss.Width(s) <= w {
		return s
	}
	cut := ansi.Truncate(s, max(1, w-2), "")
	if i := strings.LastIndexByte(cut, ' '); i > 0 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:·") + " …"
}

// wrapLines word-wraps plain text into lines of at most w cells.
func wrapLines(s string, w int) []string {
	return strings.Split(ansi.Wordwrap(s, max(1, w), ""), "\n")
}

// countdown renders a remaining duration the way a person reads it.
func countdown(d time.Duration) string { return app.FormatDuration(d) }

// mask stands in for a secret that is not shown.
const mask = "••••••••••••••••"

// describe turns an error from the backend into one short sentence for the
// screen: app's wording, the command line's too. A keyring problem is only
// named, as the banner already says what to do.
func describe(err error) string {
	var sp session.StoreProblem
	if errors.As(err, &sp) && sp.StoreUnavailable() {
		return keyringWord(session.KeyringIssueOf(err))
	}
	return cutAtWord(app.Message(err, "press s on the accounts screen"), 200)
}

// clean makes untrusted text safe and short enough for one line.
func clean(s string) string {
	s = matrix.Sanitize(s)
	s = strings.Join(strings.Fields(s), " ")
	return cutAtWord(s, 200)
}

// cutAtWord shortens s to at most n runes, ending on a whole word and " …",
// so no word is cut in half.
func cutAtWord(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	cut := string(r[:n-2])
	if i := strings.LastIndexByte(cut, ' '); i > len(cut)/2 {
		cut = cut[:i]
	}
	return strings.TrimRight(cut, " ,;:") + " …"
}

// canSignInAgain says whether the password form makes sense for an account.
func canSignInAgain(st session.State) bool {
	switch st {
	case session.StateNeedsSignIn, session.StateSignedOut, session.StateExpiring:
		return true
	}
	return false
}

func itoa(i int) string { return strconv.Itoa(i) }
