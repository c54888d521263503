// Package keystore keeps sessions' secrets in the OS keyring and the non-secret
// account list in a small index file.
package keystore

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

// Service is the keyring service name of every item mxauth writes.
const Service = "mxauth"

// Defaults for Options.
const (
	DefaultDeadline    = 5 * time.Second
	DefaultLockTimeout = 30 * time.Second
)

// Options configure Open.
type Options struct {
	Backend Backend // NewKeyringBackend() when nil
	// Dir holds accounts.json and locks/. Default os.UserConfigDir()/mxauth
	// (so XDG_CONFIG_HOME is honoured); with the memory backend and no Dir, a
	// private temporary directory that Close removes, so a demo never touches
	// the real account list.
	Dir         string
	Deadline    time.Duration // per keyring call, and in all while a call hangs; DefaultDeadline when zero
	LockTimeout time.Duration // LockAccount's wait; DefaultLockTimeout when zero
}

// Store is the account index plus the keyring. It implements session.TokenStore.
// Safe for concurrent use.
type Store struct {
	backend     Backend
	dir         string
	ownsDir     bool
	deadline    time.Duration
	lockTimeout time.Duration

	// mu serialises index re-reads and read-modify-writes in this process; an
	// update holds it while it waits for the cross-process index lock, so
	// readers of the snapshot never take it.
	mu sync.Mutex

	snapMu sync.RWMutex
	idx    indexFile // last index read or written, under snapMu

	callMu   sync.Mutex
	inflight map[string]*call
	hung     int // calls abandoned after their deadline that have not returned

	lockMu    sync.Mutex
	acctLocks map[string]chan struct{}
}

var _ session.TokenStore = (*Store)(nil)

// Open reads the index (a missing file is an empty index). An index it cannot
// parse is an error naming the path, and the file is left as it is.
func Open(opt Options) (*Store, error) {
	s := &Store{
		backend:     opt.Backend,
		dir:         opt.Dir,
		deadline:    opt.Deadline,
		lockTimeout: opt.LockTimeout,
		inflight:    map[string]*call{},
		acctLocks:   map[string]chan struct{}{},
	}
	if s.backend == nil {
		s.backend = NewKeyringBackend()
	}
	if s.deadline <= 0 {
		s.deadline = DefaultDeadline
	}
	if s.lockTimeout <= 0 {
		s.lockTimeout = DefaultLockTimeout
	}
	if s.dir == "" {
		if IsMemory(s.backend) {
			d, err := os.MkdirTemp("", "mxauth-memory-")
			if err != nil {
				return nil, fmt.Errorf("keystore: %w", err)
			}
			s.dir, s.ownsDir = d, true
		} else {
			base, err := os.UserConfigDir()
			if err != nil {
				return nil, fmt.Errorf("keystore: no configuration directory: %w", err)
			}
			s.dir = filepath.Join(base, "mxauth")
		}
	}
	idx, err := s.readIndex()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.idx = idx
	return s, nil
}

// Close removes the temporary directory Open made for a memory backend; for
// any other store it does nothing.
func (s *Store) Close() error {
	if s.ownsDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// BackendName names where secrets go, for display ("Secret Service", ...).
func (s *Store) BackendName() string { return s.backend.Name() }

// Dir is the directory holding the index and the lock files.
func (s *Store) Dir() string { return s.dir }

// IndexPath is the account index file.
func (s *Store) IndexPath() string { return filepath.Join(s.dir, indexName) }

// Deadline is the time each keyring call gets.
func (s *Store) Deadline() time.Duration { return s.deadline }

// itemKey is the keyring key of an account's item.
func itemKey(acct session.AccountKey) string { return acct.UserID + "|" + acct.DeviceID }

// LoadTokens reads the account's item. A missing item matches
// session.ErrNoStoredTokens; a keyring that cannot answer is a session.StoreProblem.
func (s *Store) LoadTokens(ctx context.Context, acct session.AccountKey) (matrix.TokenSet, error) {
	const op = "load tokens"
	var raw string
	err := s.call(ctx, op, acct, func(b Backend) error {
		var err error
		raw, err = b.Get(Service, itemKey(acct))
		return err
	})
	if err != nil {
		return matrix.TokenSet{}, err
	}
	return s.decode(op, acct, raw)
}

func (s *Store) decode(op string, acct session.AccountKey, raw string) (matrix.TokenSet, error) {
	var t matrix.TokenSet
	// The JSON decoder's messages quote input, so its error is not kept.
	if err := json.Unmarshal([]byte(raw), &t); err != nil || t.AccessToken.IsZero() {
		return matrix.TokenSet{}, &Error{Kind: KindCorrupt, Op: op, Account: acct, Backend: s.backend.Name()}
	}
	return t, nil
}

// SaveTokens writes the account's tokens and deadlines as one item, replacing
// any earlier one.
func (s *Store) SaveTokens(ctx context.Context, acct session.AccountKey, t matrix.TokenSet) error {
	const op = "save tokens"
	if acct.UserID == "" || acct.DeviceID == "" {
		return fmt.Errorf("keystore: %s: the account needs a user ID and a device ID", op)
	}
	if t.AccessToken.IsZero() {
		return fmt.Errorf("keystore: %s for %s: refusing to save an empty access token", op, acct.UserID)
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("keystore: %s for %s: cannot encode the tokens", op, acct.UserID)
	}
	return s.call(ctx, op, acct, func(b Backend) error {
		return b.Set(Service, itemKey(acct), string(raw))
	})
}

// DeleteTokens removes the account's item; an item already gone is not an error.
func (s *Store) DeleteTokens(ctx context.Context, acct session.AccountKey) error {
	err := s.deleteItem(ctx, "delete tokens", acct)
	if k, _ := KindOf(err); k == KindNotFound {
		return nil
	}
	return err
}

func (s *Store) deleteItem(ctx context.Context, op string, acct session.AccountKey) error {
	return s.call(ctx, op, acct, func(b Backend) error { return b.Delete(Service, itemKey(acct)) })
}

// call is one in-flight keyring operation.
type call struct {
	done      chan struct{} // closed when the backend call returned
	abandoned bool          // the caller gave up; counted in Store.hung
}

// errConnLost stands for a backend that panicked mid-call: go-keyring does
// when the D-Bus connection closes while it waits for a prompt.
var errConnLost = errors.New("the connection to the keyring was lost during the call")

// call runs f in a goroutine and gives up when the deadline (or ctx) ends
// first. The goroutine then lingers until the backend returns, which may be
// never (an unlock prompt nobody answers, a daemon that stopped). While such a
// call has not returned, the keyring is taken as hung: later calls fail at
// once instead of each waiting a deadline of its own, so a command over many
// accounts waits one deadline in all. Calls for one item run one after the
// other, so a late write can never land after a newer one.
func (s *Store) call(ctx context.Context, op string, acct session.AccountKey, f func(Backend) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.deadline)
	defer cancel()
	key := itemKey(acct)

	var c *call
	for c == nil {
		s.callMu.Lock()
		prev := s.inflight[key]
		switch {
		case prev != nil && !prev.abandoned: // wait behind it
		case prev != nil || s.hung > 0:
			s.callMu.Unlock()
			return &Error{Kind: KindTimeout, Op: op, Account: acct, Backend: s.backend.Name(), Deadline: s.deadline,
				Err: errors.New("an earlier keyring call has not returned yet")}
		default:
			c = &call{done: make(chan struct{})}
			s.inflight[key] = c
		}
		s.callMu.Unlock()
		if prev != nil {
			select {
			case <-prev.done:
			case <-ctx.Done():
				return s.ctxError(ctx, op, acct)
			}
		}
	}

	result := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if r := recover(); r != nil {
				err = errConnLost
			}
			s.callMu.Lock()
			if s.inflight[key] == c {
				delete(s.inflight, key)
			}
			if c.abandoned {
				s.hung--
			}
			close(c.done)
			s.callMu.Unlock()
			result <- err
		}()
		err = f(s.backend)
	}()

	select {
	case err := <-result:
		return s.wrap(op, acct, err)
	case <-ctx.Done():
		s.callMu.Lock()
		select {
		case <-c.done: // finished meanwhile: use its answer
			s.callMu.Unlock()
			return s.wrap(op, acct, <-result)
		default:
			c.abandoned = true
			s.hung++
		}
		s.callMu.Unlock()
		return s.ctxError(ctx, op, acct)
	}
}

func (s *Store) ctxError(ctx context.Context, op string, acct session.AccountKey) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Op: op, Account: acct, Backend: s.backend.Name(), Deadline: s.deadline}
	}
	return fmt.Errorf("keystore: %s for %s: %w", op, acct.UserID, ctx.Err())
}

// wrap turns a backend error into an *Error.
func (s *Store) wrap(op string, acct session.AccountKey, err error) error {
	if err == nil {
		return nil
	}
	e := &Error{Kind: classify(err), Op: op, Err: err, Account: acct, Backend: s.backend.Name()}
	if errors.Is(err, errConnLost) {
		e.Kind = KindUnavailable
	}
	// Decoding errors of a stored value may quote part of it: keep only the kind.
	var hexErr hex.InvalidByteError
	var b64Err base64.CorruptInputError
	if errors.As(err, &hexErr) || errors.As(err, &b64Err) || errors.Is(err, hex.ErrLength) {
		e.Kind, e.Err = KindCorrupt, nil
	}
	return e
}
