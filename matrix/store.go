package matrix

import (
	"context"
	"errors"
	"time"
)

// AccountKey names one session: a user on one device.
type AccountKey struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// TokenSet is everything secret about a session. It is stored as one unit so the
// access token, refresh token and deadline are always written together.
type TokenSet struct {
	AccessToken  Secret    `json:"access_token"`
	RefreshToken Secret    `json:"refresh_token,omitempty"`
	IssuedAt     time.Time `json:"issued_at"`            // when the server's reply arrived
	ExpiresAt    time.Time `json:"expires_at,omitempty"` // zero: the access token never expires
	// RefreshedAt is when a /refresh produced this pair (zero after a login,
	// and in items written before it was kept). A forced refresh soon after it
	// takes this pair instead of redeeming again; see ManagerOptions.AdoptRecent.
	RefreshedAt time.Time `json:"refreshed_at,omitempty"`
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

// ErrNoStoredTokens is matched (errors.Is) by a store error for an account that has no secrets.
var ErrNoStoredTokens = errors.New("no stored tokens for this account")

// ErrLockBusy is matched (errors.Is) by a LockAccount error when another holder
// kept the account's lock for the whole wait: not a keyring problem, and worth
// a message of its own.
var ErrLockBusy = errors.New("another mxauth process holds this account's lock")

// StoreProblem is implemented by store errors meaning the secret store itself is
// unusable (keyring unavailable, locked, timed out), as opposed to an item missing.
type StoreProblem interface {
	error
	StoreUnavailable() bool
}

// TokenStore keeps sessions' secrets. The keystore package implements it; the
// session engine depends only on this interface.
type TokenStore interface {
	// LoadTokens returns an error matching ErrNoStoredTokens when the account has none.
	LoadTokens(ctx context.Context, acct AccountKey) (TokenSet, error)
	SaveTokens(ctx context.Context, acct AccountKey, t TokenSet) error
	DeleteTokens(ctx context.Context, acct AccountKey) error
	// LockAccount takes the account's cross-process lock; refreshes happen under
	// it. It gives up when ctx ends; an error matching ErrLockBusy says another
	// holder kept it.
	LockAccount(ctx context.Context, acct AccountKey) (unlock func(), err error)
}
