package ui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"mxauth/matrix"
	"mxauth/matrix/session"
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
func countdown(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	s := int64((d + time.Second - 1) / time.Second) // round up: never show 0s while time is left
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %02dm", s/3600, (s%3600)/60)
	default:
		return fmt.Sprintf("%dd %dh", s/86400, (s%86400)/3600)
	}
}

// seconds renders a short wait in whole seconds, rounded up.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// mask stands in for a secret that is not shown.
const mask = "••••••••••••••••"

// describe turns an error from the backend into one short sentence for the
// screen. Server text is sanitised; tokens never appear in these errors.
func describe(err error) string {
	if err == nil {
		return ""
	}
	var sp session.StoreProblem
	switch {
	case errors.As(err, &sp) && sp.StoreUnavailable():
		return keyringWord(session.KeyringIssueOf(err)) // the banner says what to do
	case matrix.IsLimitExceeded(err):
		if d, ok := matrix.RetryAfter(err); ok {
			return fmt.Sprintf("rate limited, try again in %ds", seconds(d))
		}
		return "rate limited, try again shortly"
	case matrix.IsUserLocked(err):
		return "this account is locked by the server administrator"
	case matrix.IsUserDeactivated(err):
		return "this account has been deactivated"
	case matrix.IsSoftLogout(err), matrix.IsUnknownToken(err), errors.Is(err, session.ErrNeedsSignIn), errors.Is(err, session.ErrSignedOut):
		return "needs sign-in: press s on the accounts screen"
	case matrix.IsUnsupported(err):
		return "the server does not support this"
	case matrix.IsTransient(err):
		return "cannot reach the server right now (" + clean(err.Error()) + ")"
	}
	var me *matrix.Error
	if errors.As(err, &me) && me.Message != "" {
		return clean(me.Message)
	}
	return clean(err.Error())
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
