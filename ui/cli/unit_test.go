package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

func TestExitCodeMapping(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{errors.New("boom"), exitError},
		{usageErrorf("bad"), exitUsage},
		// The shared backend's kinds of failure keep their codes.
		{fmt.Errorf("no default account: %w", app.ErrUsage), exitUsage},
		{fmt.Errorf("no account @a:x: %w", app.ErrSignInNeeded), exitSignIn},
		{fmt.Errorf("no login tokens: %w", app.ErrUnsupported), exitUnsupported},
		{fmt.Errorf("wrapped: %w", session.ErrNoStoredTokens), exitSignIn},
		{&session.SessionError{State: session.StateNeedsSignIn, Reason: "sign in again"}, exitSignIn},
		{&session.SessionError{State: session.StateStoreProblem, Reason: "keyring"}, exitKeyring},
		{&matrix.Error{Status: 404, ErrCode: "M_UNRECOGNIZED"}, exitUnsupported},
		{&matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", RetryAfter: 42 * time.Second}, exitRateLimited},
		// A busy lock ends a refresh in the keyring-problem state, but is not one.
		{&session.SessionError{State: session.StateStoreProblem, Err: &keystore.LockBusyError{Waited: time.Second}}, exitLockBusy},
		{&keystore.LockBusyError{Path: "accounts.lock", Waited: time.Second}, exitLockBusy},
		{&session.SessionError{State: session.StateLocked, Err: &matrix.Error{Status: 401, ErrCode: "M_USER_LOCKED", SoftLogout: true}}, exitError},
		{&matrix.DiscoveryError{Outcome: matrix.DiscoveryFailError, Err: &matrix.Error{Status: 404}}, exitError},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	busy := &session.SessionError{Account: session.AccountKey{UserID: "@a:x"}, State: session.StateStoreProblem, Reason: "keyring error (...)",
		Err: &keystore.LockBusyError{Account: session.AccountKey{UserID: "@a:x"}, Path: "x.lock", Waited: 30 * time.Second}}
	if msg := errorMessage(busy); !strings.HasPrefix(msg, "another mxauth process holds the lock of @a:x (waited 30s") {
		t.Errorf("lock message %q", msg)
	}
	msg := errorMessage(&matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", RetryAfter: 41500 * time.Millisecond})
	if !strings.Contains(msg, "42s") {
		t.Errorf("rate limit message %q lacks the wait", msg)
	}
}

func TestWriteQR(t *testing.T) {
	t.Parallel()
	const token = "syl_olrIJvhn02JfT7podVyJxkQs9RVZz6ql"
	var plain, colour strings.Builder
	if err := writeQR(&plain, token, false, false); err != nil {
		t.Fatal(err)
	}
	if err := writeQR(&colour, token, true, true); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b") || !strings.Contains(colour.String(), "\x1b[") {
		t.Fatalf("colour only when asked:\nplain %q\ncolour %q", plain.String()[:40], colour.String()[:40])
	}
	out := plain.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatal("the last row must end the line")
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	width := len([]rune(lines[0]))
	// Two modules per row, with a 2-module quiet zone all round.
	if len(lines) != (width+1)/2 || width < 21+4 {
		t.Fatalf("%d rows of %d cells:\n%s", len(lines), width, out)
	}
	for _, l := range lines {
		if n := len([]rune(l)); n != width {
			t.Fatalf("row width %d, want %d: %q", n, width, l)
		}
	}
	if strings.TrimSpace(lines[0]) != "" || !strings.HasPrefix(lines[1], "  █▀▀▀▀▀█") {
		t.Fatalf("quiet zone or finder pattern missing:\n%s", out)
	}
	if n := strings.Count(colour.String(), "\n"); n != len(lines) {
		t.Fatalf("colour rendering has %d rows, plain %d", n, len(lines))
	}
}

// TestPanicBecomesOneLine: a bug inside a command ends with one clean line and
// exit 1, never a stack trace or escape sequences on the terminal.
func TestPanicBecomesOneLine(t *testing.T) {
	t.Parallel()
	var stderr strings.Builder
	a := &program{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { panic("boom\x1b[2J\nsecond line") }}
	if code := a.main(t.Context(), []string{"list"}); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	got := stderr.String()
	if got != "mxauth: internal error: boom second line\n" && got != "mxauth: internal error: boomsecond line\n" {
		t.Fatalf("stderr %q", got)
	}
}
