package cli

import (
	"errors"
	"fmt"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// Exit codes, documented in --help and docs/usage.md; scripts rely on them.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitKeyring     = 3 // keyring unavailable or locked
	exitSignIn      = 4 // sign-in needed or no such account
	exitUnsupported = 5 // not supported by this server
	exitRateLimited = 6
	exitLockBusy    = 7 // another mxauth process holds the account's lock
)

const exitCodesHelp = `Exit codes:
  0  ok
  1  error
  2  usage error
  3  keyring unavailable or locked
  4  sign-in needed, or no such account
  5  not supported by this server
  6  rate limited (the message says for how long)
  7  another mxauth process holds this account's lock (the message says how long it waited)`

// codedError carries the exit code a failure should end the process with.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &codedError{exitUsage, fmt.Errorf(format, args...)}
}

func unsupportedErrorf(format string, args ...any) error {
	return &codedError{exitUnsupported, fmt.Errorf(format, args...)}
}

// discoveryFailed reports that no working homeserver was found where looked.
func discoveryFailed(err error) bool {
	var de *matrix.DiscoveryError
	return errors.As(err, &de)
}

// exitCode maps an error to the documented exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ce *codedError
	switch {
	case errors.As(err, &ce):
		return ce.code
	case errors.Is(err, app.ErrUsage):
		return exitUsage
	case errors.Is(err, app.ErrSignInNeeded):
		return exitSignIn
	case errors.Is(err, app.ErrUnsupported):
		return exitUnsupported
	case errors.Is(err, keystore.ErrLockTimeout):
		return exitLockBusy
	case app.IsStoreProblem(err), errors.Is(err, session.ErrStoreUnavailable):
		return exitKeyring
	case matrix.IsLimitExceeded(err):
		return exitRateLimited
	case errors.Is(err, session.ErrLocked), matrix.IsUserLocked(err):
		// Locked by the server's administrators: signing in again cannot help.
		return exitError
	case discoveryFailed(err):
		// No homeserver at that URL (or a wrong path) is the user's to fix,
		// not a feature the server lacks.
		return exitError
	case errors.Is(err, session.ErrNoStoredTokens), errors.Is(err, session.ErrNeedsSignIn), errors.Is(err, session.ErrSignedOut),
		errors.Is(err, keystore.ErrUnknownAccount), matrix.IsUnknownToken(err), matrix.IsSoftLogout(err):
		return exitSignIn
	case matrix.IsUnsupported(err):
		return exitUnsupported
	}
	return exitError
}

// errorMessage is the one line shown on stderr for err: app's wording, the
// same as the full-screen app's.
func errorMessage(err error) string { return app.Message(err, "") }
