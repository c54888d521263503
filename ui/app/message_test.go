package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/session"
)

func TestMessage(t *testing.T) {
	refused := &matrix.TransportError{Endpoint: "GET /_matrix/client/versions", Err: errors.New("connection refused")}
	cases := []struct {
		name, signIn string
		err          error
		want         string
	}{
		{"none", "", nil, ""},
		{"rate limit with a wait", "", &matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", RetryAfter: 61 * time.Second}, "rate limited, try again in 1m 01s"},
		{"rate limit without one", "", &matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED"}, "rate limited, try again shortly"},
		{"cancelled", "", fmt.Errorf("login: %w", context.Canceled), "cancelled"},
		{"lock busy", "", fmt.Errorf("keyring: %w", &keystore.LockBusyError{Account: session.AccountKey{UserID: "@a:x"}, Waited: 2 * time.Second}), "another mxauth process holds the lock of @a:x"},
		{"locked by the admin", "", &matrix.Error{Status: 401, ErrCode: "M_USER_LOCKED"}, "this account is locked by the server administrator"},
		{"deactivated", "", &matrix.Error{Status: 403, ErrCode: "M_USER_DEACTIVATED"}, "this account has been deactivated"},
		{"sign in, the TUI's way", "press s on the accounts screen", fmt.Errorf("@a:x: %w", session.ErrNeedsSignIn), "needs sign-in: press s on the accounts screen"},
		{"sign in, the error's words", "", needsSignInErrorf("@a:x must sign in again: mxauth login --user @a:x"), "@a:x must sign in again: mxauth login --user @a:x"},
		{"wrong password", "", &matrix.UIAChallenge{Session: "S", ErrCode: "M_FORBIDDEN"}, "wrong password"},
		{"unanswered challenge", "", &matrix.UIAChallenge{Session: "S"}, "the server wants you to confirm who you are, which this command could not do"},
		{"unreachable", "", refused, "cannot reach the server right now (GET /_matrix/client/versions: connection refused)"},
		{"server error", "", &matrix.Error{Status: 502, ErrCode: "M_UNKNOWN", Message: "bad gateway", Endpoint: "GET /x"}, "cannot reach the server right now (GET /x: 502 M_UNKNOWN: bad gateway)"},
		{"server's words", "", &matrix.Error{Status: 400, ErrCode: "M_BAD_JSON", Message: "bad \x1b[31mjson"}, "bad json"},
		{"mxauth's words around the server's", "", fmt.Errorf("nothing was deleted: %w", refused), "nothing was deleted: GET /_matrix/client/versions: connection refused"},
		{"an unusable answer", "", &matrix.TransportError{Endpoint: "GET /x", Err: matrix.ErrMalformedResponse}, "GET /x: malformed response"},
		{"two lines", "", errors.New("one\ntwo"), "one two"},
	}
	for _, c := range cases {
		got := Message(c.err, c.signIn)
		if c.name == "lock busy" {
			if len(got) < len(c.want) || got[:len(c.want)] != c.want {
				t.Errorf("%s: %q, want it to start %q", c.name, got, c.want)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
