package app

import (
	"errors"
	"fmt"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

// Kinds of failure the front ends tell apart (errors.Is matches them): the
// command line maps each to its exit code, the TUI words them its own way.
var (
	// ErrUsage: the request is incomplete or ambiguous; the user must say more.
	ErrUsage = errors.New("usage error")
	// ErrSignInNeeded: there is no such account, or it must sign in again.
	ErrSignInNeeded = errors.New("sign-in needed")
	// ErrUnsupported: the homeserver does not offer what was asked for.
	ErrUnsupported = errors.New("not supported by this server")
)

// kindError is a failure of one of the kinds above; its text is err's alone.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }

func usageErrorf(format string, args ...any) error {
	return &kindError{ErrUsage, fmt.Errorf(format, args...)}
}

func signInErrorf(format string, args ...any) error {
	return &kindError{ErrSignInNeeded, fmt.Errorf(format, args...)}
}

// needsSignInErrorf is signInErrorf for an account whose session has ended.
// It matches session.ErrNeedsSignIn, so the TUI can name its own key for it
// instead of the command in the text.
func needsSignInErrorf(format string, args ...any) error {
	return &kindError{ErrSignInNeeded, alsoIs{fmt.Errorf(format, args...), session.ErrNeedsSignIn}}
}

// alsoIs is an error that also matches target.
type alsoIs struct {
	error
	target error
}

func (e alsoIs) Is(t error) bool { return t == e.target }

func unsupportedErrorf(format string, args ...any) error {
	return &kindError{ErrUnsupported, fmt.Errorf(format, args...)}
}

// IsStoreProblem reports whether err means the keyring itself is unusable.
func IsStoreProblem(err error) bool {
	var sp session.StoreProblem
	return errors.As(err, &sp) && sp.StoreUnavailable()
}

// shown makes a user- or file-provided value safe to put in a message: escape
// sequences and control characters removed, bounded to the longest a Matrix
// user ID may be (255 runes), as the command line bounds what it echoes.
func shown(s string) string { return matrix.SanitizeLimit(s, 255) }
