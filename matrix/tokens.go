package matrix

import "time"

// TokenSet is everything secret about a session: what login and /refresh return. It is stored as one unit so the
// access token, refresh token and deadline are always written together.
type TokenSet struct {
	AccessToken  Secret    `json:"access_token"`
	RefreshToken Secret    `json:"refresh_token,omitempty"`
	IssuedAt     time.Time `json:"issued_at"`            // when the server's reply arrived
	ExpiresAt    time.Time `json:"expires_at,omitempty"` // zero: the access token never expires
	// RefreshedAt is when a /refresh produced this pair (zero after a login,
	// and in items written before it was kept). A forced refresh soon after it
	// takes this pair instead of redeeming again; see session.ManagerOptions.AdoptRecent.
	RefreshedAt time.Time `json:"refreshed_at,omitempty"`
	// ClientID is the OAuth 2.0 client the tokens were issued to ("" for the
	// legacy API). It is not secret, but it is kept with the tokens because
	// only that client can refresh or revoke them: written in one piece with
	// them, it cannot be paired with another sign-in's tokens by a crash
	// between the keyring write and the account list's.
	ClientID string `json:"client_id,omitempty"`
}

// Expires reports whether the access token has a deadline.
func (t TokenSet) Expires() bool { return !t.ExpiresAt.IsZero() }

// Lifetime is the access token's total validity as granted by the server (0 if it never expires).
func (t TokenSet) Lifetime() time.Duration {
	if !t.Expires() {
		return 0
	}
	return t.ExpiresAt.Sub(t.IssuedAt)
}
