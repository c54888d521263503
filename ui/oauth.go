package ui

import (
	"context"
	"errors"
	"time"

	"mxauth/matrix"
	"mxauth/ui/app"
)

// oauthBackend is what the OAuth 2.0 sign-in needs from the service: the
// server's kind and a sign-in to start. The real service is adapted to it
// (serviceOAuth); tests supply their own.
type oauthBackend interface {
	probeAuth(ctx context.Context, homeserver, user string) (authProbe, error)
	startOAuth(ctx context.Context, p oauthParams) (oauthSignIn, error)
}

// authProbe is what the add form learns about a server before signing in.
type authProbe struct {
	BaseURL     string
	Kind        matrix.ServerAuthKind
	DeviceGrant bool // an OAuth server offering the device grant
	Issuer      string
}

// oauth says whether the server signs in through OAuth 2.0 by default.
func (p authProbe) oauth() bool {
	return p.Kind == matrix.AuthOAuthOnly || p.Kind == matrix.AuthOAuthPasswordCompat
}

// oauthParams starts one OAuth sign-in.
type oauthParams struct {
	Homeserver, User string
	DeviceName       string
	Browser          bool // the code flow with a loopback redirect instead of the device grant
}

// oauthGrant is what the server handed out to show: the device grant's
// code and pages, or the browser sign-in's address.
type oauthGrant struct {
	BaseURL, Issuer string
	Browser         bool
	// device grant
	VerificationURI, VerificationURIComplete, UserCode string
	ExpiresAt                                          time.Time
	Interval                                           time.Duration
	// browser
	AuthURL string
}

// qrText is what the device grant's QR code holds: the page with the code
// filled in when the server gives one, else the page alone.
func (g oauthGrant) qrText() string {
	if g.VerificationURIComplete != "" {
		return g.VerificationURIComplete
	}
	return g.VerificationURI
}

// grantPoll is one answer of the token endpoint while the device grant waits.
type grantPoll struct {
	Attempt  int
	Interval time.Duration // the interval now in force
	SlowDown bool          // the server asked to poll more slowly
}

// oauthSignIn is one OAuth sign-in under way. wait calls onPoll from its own
// goroutine after each pending or slow_down answer; close ends the sign-in
// (and a wait on it) and is safe after wait returned.
type oauthSignIn interface {
	grant() oauthGrant
	wait(ctx context.Context, onPoll func(grantPoll)) (app.Account, error)
	close()
}

// How an OAuth sign-in ended, in the words the screen uses.
type grantEnd int

const (
	grantEndFailed grantEnd = iota
	grantEndDenied
	grantEndExpired
)

// grantEndOf classifies the error a sign-in ended with.
func grantEndOf(err error) grantEnd {
	switch {
	case matrix.IsAccessDenied(err):
		return grantEndDenied
	case matrix.IsExpiredToken(err):
		return grantEndExpired
	}
	return grantEndFailed
}

// errNoOAuth is what the form says when the backend cannot sign in through
// OAuth at all (it never happens with the real service).
var errNoOAuth = errors.New("this build of mxauth cannot sign in through OAuth 2.0")

// oauthOf is the OAuth side of a backend, or nil when it has none.
func oauthOf(b Backend) oauthBackend {
	if ob, ok := b.(oauthBackend); ok {
		return ob
	}
	return nil
}
