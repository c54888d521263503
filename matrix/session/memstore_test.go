package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

func TestMemoryStoreKeepsTokensAndLocks(t *testing.T) {
	ctx := context.Background()
	s := session.NewMemoryStore()
	acct := session.AccountKey{UserID: "@alice:example.org", DeviceID: "DEV"}
	if _, err := s.LoadTokens(ctx, acct); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("load before save: %v, want ErrNoStoredTokens", err)
	}
	want := matrix.TokenSet{AccessToken: "at", RefreshToken: "rt", ExpiresAt: time.Now().Add(time.Minute)}
	if err := s.SaveTokens(ctx, acct, want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoadTokens(ctx, acct); err != nil || got.AccessToken.Reveal() != "at" || got.RefreshToken.Reveal() != "rt" {
		t.Fatalf("load after save: %v, %v", got, err)
	}
	if err := s.DeleteTokens(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTokens(ctx, acct); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("second delete: %v, want ErrNoStoredTokens", err)
	}

	unlock, err := s.LockAccount(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.LockAccount(short, acct); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second holder while locked: %v, want the wait to end with its context", err)
	}
	unlock()
	unlock() // a second unlock must not release another holder's lock
	unlock2, err := s.LockAccount(ctx, acct)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}
