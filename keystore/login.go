package keystore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"

	"mxauth/matrix/session"
)

// loginLockKey names the lock that sign-ins of one user queue on, in every
// process. It is no device's key, so it never meets a refresh's lock.
func loginLockKey(userID string) session.AccountKey {
	return session.AccountKey{UserID: "sign-in of " + strings.ToLower(userID)}
}

// LockLogin takes the lock every sign-in of userID holds from before it asks
// the server until its account is recorded, so sign-ins of one user run one
// after the other: the next one finds the account the previous one added.
func (s *Store) LockLogin(ctx context.Context, userID string) (unlock func(), err error) {
	unlock, err = s.LockAccount(ctx, loginLockKey(userID))
	var busy *LockBusyError
	if errors.As(err, &busy) {
		busy.Account, busy.SignIn = session.AccountKey{UserID: userID}, true
	}
	return unlock, err
}

// lockProbe is how long repair waits for a lock someone else holds before
// leaving that entry to a later run.
const lockProbe = 4 * lockPoll

// tryLock takes the account's lock if it is free now.
func (s *Store) tryLock(ctx context.Context, acct session.AccountKey) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, lockProbe)
	defer cancel()
	return s.LockAccount(ctx, acct)
}

// tryLockLogin takes the user's sign-in lock if no sign-in holds it now.
func (s *Store) tryLockLogin(ctx context.Context, userID string) (unlock func(), err error) {
	return s.tryLock(ctx, loginLockKey(userID))
}

// probeAccount is the key prefix of the item CheckWritable writes; no account
// can have it (the server name is reserved, RFC 6761).
const probeAccount = "@keyring-probe:mxauth.invalid"

// CheckWritable writes a probe item, reads it back and deletes it, under the
// keyring deadline. A sign-in runs it before asking the server, because the
// server may replace the device's tokens as soon as it answers: tokens that
// cannot then be stored would be lost with the old ones.
func (s *Store) CheckWritable(ctx context.Context) error {
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	key := session.AccountKey{UserID: probeAccount, DeviceID: hex.EncodeToString(raw)}
	value := hex.EncodeToString(raw)
	err := s.call(ctx, "check that the keyring can store tokens", key, func(b Backend) error {
		if err := b.Set(Service, itemKey(key), value); err != nil {
			return err
		}
		got, err := b.Get(Service, itemKey(key))
		_ = b.Delete(Service, itemKey(key))
		switch {
		case err != nil:
			return err
		case got != value:
			return errors.New("the keyring returned something else than was written")
		}
		return nil
	})
	var e *Error
	if errors.As(err, &e) {
		e.Account = session.AccountKey{} // the probe's name means nothing to the user
	}
	return err
}
