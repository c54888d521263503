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

	"mxauth/matrix/session"
)

// lockPoll is how often a busy lock file is tried again.
const lockPoll = 25 * time.Millisecond

// LockPath is the lock file of an account: the name is a hash, so user and
// device IDs never become file names.
func (s *Store) LockPath(acct session.AccountKey) string {
	sum := sha256.Sum256([]byte(itemKey(acct)))
	return filepath.Join(s.dir, "locks", hex.EncodeToString(sum[:])[:16]+".lock")
}

// LockAccount takes the account's lock, shared by every mxauth process of the
// user: first an in-process lock (file locks are per open file, so goroutines
// would not exclude each other cheaply), then the lock file. It waits until ctx
// ends or the lock timeout passes; the error is then a *LockBusyError, which
// matches ErrLockTimeout.
func (s *Store) LockAccount(ctx context.Context, acct session.AccountKey) (unlock func(), err error) {
	start := time.Now()
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
		return nil, lockError(ctx, acct, path, start, true)
	}
	release := func() { <-ch }

	f, err := lockFile(ctx, path)
	if err != nil {
		release()
		if errors.Is(err, errLockBusy) {
			return nil, lockError(ctx, acct, path, start, false)
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

// LockBusyError says that another holder kept a lock for the whole wait.
type LockBusyError struct {
	Account   session.AccountKey // zero for the account index's lock
	Path      string             // the lock file
	Waited    time.Duration
	InProcess bool // held by another part of this program, not another process
	SignIn    bool // the user's sign-in lock (see LockLogin), not a device's
}

func (e *LockBusyError) Error() string {
	who := "another mxauth process"
	if e.InProcess {
		who = "another part of this mxauth process"
	}
	what := "the account index"
	switch {
	case e.SignIn:
		what = "the sign-in lock of " + e.Account.UserID
	case e.Account.UserID != "":
		what = "the lock of " + e.Account.UserID
	}
	return fmt.Sprintf("%s holds %s (waited %s for %s); if that process is stopped, resume or end it",
		who, what, e.Waited.Round(time.Second), e.Path)
}

// Is makes errors.Is(err, ErrLockTimeout) hold.
func (e *LockBusyError) Is(target error) bool { return target == ErrLockTimeout }

func lockError(ctx context.Context, acct session.AccountKey, path string, start time.Time, inProcess bool) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("keystore: lock %s: %w", acct.UserID, ctx.Err())
	}
	return &LockBusyError{Account: acct, Path: path, Waited: time.Since(start), InProcess: inProcess}
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
