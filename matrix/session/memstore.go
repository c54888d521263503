package session

import (
	"context"
	"sync"

	"mxauth/matrix"
)

// MemoryStore is a TokenStore that keeps tokens in this process only, with one
// in-process lock per account. Tests and the measurement programs use it where
// the keyring and lock files are not the point.
type MemoryStore struct {
	mu    sync.Mutex
	items map[AccountKey]matrix.TokenSet
	locks map[AccountKey]chan struct{}
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{items: map[AccountKey]matrix.TokenSet{}, locks: map[AccountKey]chan struct{}{}}
}

// LoadTokens returns the account's tokens, or ErrNoStoredTokens.
func (s *MemoryStore) LoadTokens(_ context.Context, acct AccountKey) (matrix.TokenSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.items[acct]
	if !ok {
		return matrix.TokenSet{}, ErrNoStoredTokens
	}
	return t, nil
}

// SaveTokens stores the account's tokens.
func (s *MemoryStore) SaveTokens(_ context.Context, acct AccountKey, t matrix.TokenSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[acct] = t
	return nil
}

// DeleteTokens removes the account's tokens; ErrNoStoredTokens if it had none.
func (s *MemoryStore) DeleteTokens(_ context.Context, acct AccountKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.items[acct]; !ok {
		return ErrNoStoredTokens
	}
	delete(s.items, acct)
	return nil
}

// LockAccount waits for the account's lock until ctx ends.
func (s *MemoryStore) LockAccount(ctx context.Context, acct AccountKey) (func(), error) {
	s.mu.Lock()
	ch := s.locks[acct]
	if ch == nil {
		ch = make(chan struct{}, 1)
		s.locks[acct] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() { once.Do(func() { <-ch }) }, nil
}
