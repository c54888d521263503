package keystore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"mxauth/matrix"
)

// lockPoll is how often a busy lock file is tried again.
const lockPoll = 25 * time.Millisecond

// LockPath is the lock file of an account: the name is a hash, so user and
// device IDs never become file names.
func (s *Store) LockPath(acct matrix.AccountKey) string {
	sum := sha256.Sum256([]byte(itemKey(acct)))
	return filepath.Join(s.dir, "locks", hex.EncodeToString(sum[:])[:16]+".lock")
}

// LockAccount takes the account's lock, shared by every mxauth process of the
// user: first an in-process lock (file locks are per open file, so goroutines
// would not exclude each other cheaply), then the lock file. It waits until ctx
// ends or the lock timeout passes; the error then wraps ErrLockTimeout.
func (s *Store) LockAccount(ctx context.Context, acct matrix.AccountKey) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	path := s.LockPath(acct)

	s.lockMu.Lock()
	ch := s.acctLocks[path]
	if ch == nil {
		ch = make(chan struct{}, 1)
		s.acctLocks[path] = ch
	}
	s.lockMu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, lockError(ctx, acct, path, s.lockTimeout, "another part of this program holds it")
	}
	release := func() { <-ch }

	f, err := lockFile(ctx, path)
	if err != nil {
		release()
		if errors.Is(err, errLockBusy) {
			return nil, lockError(ctx, acct, path, s.lockTimeout, "another mxauth process holds it")
		}
		return nil, fmt.Errorf("keystore: lock %s: %w", acct.UserID, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			f.unlock()
			release()
		})
	}, nil
}

func lockError(ctx context.Context, acct matrix.AccountKey, path string, limit time.Duration, who string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("keystore: lock %s: %w", acct.UserID, ctx.Err())
	}
	return fmt.Errorf("keystore: lock %s (%s): %s; gave up after at most %s: %w", acct.UserID, path, who, limit, ErrLockTimeout)
}

var errLockBusy = errors.New("lock busy")

// lockFile creates path (and its directory) and locks it exclusively, polling
// until ctx ends; it returns errLockBusy if it never got the lock.
func lockFile(ctx context.Context, path string) (*fileLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	for {
		l, err := tryLock(path)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, errLockBusy) {
			return nil, err
		}
		t := time.NewTimer(lockPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, errLockBusy
		}
	}
}
