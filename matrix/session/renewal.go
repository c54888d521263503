package session

import "mxauth/matrix"

// Renewal is how a session's access token stays usable. It is the one rule
// behind the engine's states, `mxauth refresh` and doctor.
type Renewal int

const (
	// RenewalNotNeeded: the access token never expires.
	RenewalNotNeeded Renewal = iota
	// RenewalBySignIn: the access token expires and the server gave no refresh
	// token, so the user signs in again before the deadline.
	RenewalBySignIn
	// RenewalByRefresh: the access token expires and is refreshed automatically.
	RenewalByRefresh
)

// RenewalOf says how the tokens t stay usable.
func RenewalOf(t matrix.TokenSet) Renewal {
	switch {
	case !t.Expires():
		return RenewalNotNeeded
	case t.RefreshToken.IsZero():
		return RenewalBySignIn
	}
	return RenewalByRefresh
}

// CanRefresh reports whether t can be refreshed at all: it holds a refresh token.
func CanRefresh(t matrix.TokenSet) bool { return !t.RefreshToken.IsZero() }

// ServerRefreshes reports whether the account's server refreshes access
// tokens: it gave this session a refresh token, or it says it can (spec v1.3
// or later).
func ServerRefreshes(v *matrix.VersionsResponse, t matrix.TokenSet) bool {
	return CanRefresh(t) || v.SupportsRefresh()
}
