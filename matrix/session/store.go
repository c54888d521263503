package session

import (
	"context"
	"errors"

	"mxauth/matrix"
)

// AccountKey names one session: a user on one device.
type AccountKey struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
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
	LoadTokens(ctx context.Context, acct AccountKey) (matrix.TokenSet, error)
	SaveTokens(ctx context.Context, acct AccountKey, t matrix.TokenSet) error
	DeleteTokens(ctx context.Context, acct AccountKey) error
	// LockAccount takes the account's cross-process lock; refreshes happen under
	// it. It gives up when ctx ends; an error matching ErrLockBusy says another
	// holder kept it.
	LockAccount(ctx context.Context, acct AccountKey) (unlock func(), err error)
}
