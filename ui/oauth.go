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

// oauthSignIn is one OAuth sign-in under way. wait calls onPoll from its own
// goroutine after each pending or slow_down answer; close ends the sign-in
// (and a wait on it) and is safe after wait returned.
type oauthSignIn interface {
	grant() oauthGrant
	wait(ctx context.Context, onPoll func(matrix.DevicePoll)) (app.Account, error)
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
	case errors.Is(err, app.ErrSignInDenied), matrix.IsAccessDenied(err):
		return grantEndDenied
	case errors.Is(err, app.ErrSignInExpired), matrix.IsExpiredToken(err):
		return grantEndExpired
	}
	return grantEndFailed
}

// errNoOAuth is what the form says when the backend cannot sign in through
// OAuth at all (it never happens with the real service).
var errNoOAuth = errors.New("this build of mxauth cannot sign in through OAuth 2.0")

// oauthOf is the OAuth side of a backend, or nil when it has none.
func oauthOf(b Backend) oauthBackend {
	switch ob := b.(type) {
	case oauthBackend:
		return ob
	case appOAuth:
		return serviceOAuth{ob}
	}
	return nil
}

// appOAuth is the OAuth side of the service (app.Service).
type appOAuth interface {
	ProbeAuth(ctx context.Context, homeserver, user string) (app.AuthProbe, error)
	StartOAuthLogin(ctx context.Context, p app.OAuthLoginParams) (*app.OAuthLogin, error)
}

// serviceOAuth adapts the service to what the screens need.
type serviceOAuth struct{ s appOAuth }

func (a serviceOAuth) probeAuth(ctx context.Context, homeserver, user string) (authProbe, error) {
	p, err := a.s.ProbeAuth(ctx, homeserver, user)
	return authProbe(p), err
}

func (a serviceOAuth) startOAuth(ctx context.Context, p oauthParams) (oauthSignIn, error) {
	l, err := a.s.StartOAuthLogin(ctx, app.OAuthLoginParams(p))
	if err != nil {
		return nil, err
	}
	return appSignIn{l}, nil
}

// appSignIn is the service's sign-in under way.
type appSignIn struct{ l *app.OAuthLogin }

func (s appSignIn) grant() oauthGrant {
	l := s.l
	return oauthGrant{BaseURL: l.BaseURL, Issuer: l.Issuer, Browser: l.Browser,
		VerificationURI: l.VerificationURI, VerificationURIComplete: l.VerificationURIComplete, UserCode: l.UserCode,
		ExpiresAt: l.ExpiresAt, Interval: l.Interval, AuthURL: l.AuthURL}
}

func (s appSignIn) wait(ctx context.Context, onPoll func(matrix.DevicePoll)) (app.Account, error) {
	return s.l.Wait(ctx, onPoll)
}

// close ends the sign-in off the caller's goroutine: the screens call it from
// Update, and closing the browser sign-in's listener lets the page it is
// sending finish, which may take a moment.
func (s appSignIn) close() { go s.l.Close() }
