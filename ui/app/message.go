package app

import (
	"context"
	"errors"
	"strings"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/session"
)

// Message is the one line either front end (and doctor) shows for err. Errors
// from matrix, keystore and this package never carry secrets; server text in
// them is sanitised here again before it is shown.
//
// signIn names this front end's way to sign in again ("press s on the
// accounts screen"); with "" an error that needs a new sign-in keeps its own
// words, which name the command.
func Message(err error, signIn string) string {
	if err == nil {
		return ""
	}
	var busy *keystore.LockBusyError
	switch {
	case matrix.IsLimitExceeded(err):
		if d, ok := matrix.RetryAfter(err); ok && d > 0 {
			return "rate limited, try again in " + FormatDuration(d)
		}
		return "rate limited, try again shortly"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.As(err, &busy):
		return busy.Error() // without the layers around it, which would call it a keyring error
	case matrix.IsUserLocked(err):
		return "this account is locked by the server administrator"
	case matrix.IsUserDeactivated(err):
		return "this account has been deactivated"
	case signIn != "" && needsSignIn(err):
		return "needs sign-in: " + signIn
	}
	if ch, ok := matrix.AsUIA(err); ok {
		if ch.StageFailed() {
			return ErrWrongPassword.Error()
		}
		return "the server wants you to confirm who you are, which this command could not do"
	}
	if text, ok := serverWords(err); ok {
		return text
	}
	return oneLine(err.Error())
}

// serverWords words an error that comes straight from the homeserver, with
// nothing of mxauth's around it: a server that cannot be reached says so, and
// a Matrix error is the server's own message. An error that mxauth explained
// (wrapped in words of its own) keeps those words.
func serverWords(err error) (string, bool) {
	var te *matrix.TransportError
	var me *matrix.Error
	switch {
	case errors.As(err, &te) && err.Error() == te.Error():
		if errors.Is(err, matrix.ErrMalformedResponse) || errors.Is(err, matrix.ErrResponseTooLarge) {
			return "", false // it answered, with something unusable
		}
		return "cannot reach the server right now (" + oneLine(te.Error()) + ")", true
	case errors.As(err, &me) && err.Error() == me.Error():
		if matrix.IsTransient(me) {
			return "cannot reach the server right now (" + oneLine(me.Error()) + ")", true
		}
		if me.Message != "" {
			return oneLine(me.Message), true
		}
	}
	return "", false
}

// needsSignIn reports whether err means the account must sign in again.
func needsSignIn(err error) bool {
	return matrix.IsSoftLogout(err) || matrix.IsUnknownToken(err) ||
		errors.Is(err, session.ErrNeedsSignIn) || errors.Is(err, session.ErrSignedOut)
}

// oneLine makes text safe to show on one line. Each front end bounds its
// length to fit where it shows it.
func oneLine(s string) string {
	return strings.Join(strings.Fields(matrix.SanitizeLimit(s, maxMessageRunes)), " ")
}

// maxMessageRunes only stops an absurd message; the front ends cut shorter.
const maxMessageRunes = 4000
