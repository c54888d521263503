package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

// TestChildProcess is the body of re-executed test binaries; other tests start
// it with childEnv set, so each child has its own D-Bus connection and locks.
func TestChildProcess(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("runs only as a child process of other tests")
	}
	switch mode {
	case "probe":
		childProbe(t)
	case "counter":
		childCounter(t)
	case "index-add":
		childIndexAdd(t)
	case "hold-lock":
		childHoldLock(t)
	default:
		t.Fatalf("unknown child mode %q", mode)
	}
}

func childAccount() session.AccountKey {
	return session.AccountKey{UserID: os.Getenv("MXKS_USER"), DeviceID: os.Getenv("MXKS_DEVICE")}
}

func childDir(t *testing.T) string {
	if d := os.Getenv("MXKS_DIR"); d != "" {
		return d
	}
	return t.TempDir()
}

// childProbe runs the keyring operations listed in MXKS_OPS against the real
// keyring backend and reports each outcome and how long it took.
func childProbe(t *testing.T) {
	s, err := Open(Options{Backend: NewKeyringBackend(), Dir: childDir(t), Deadline: envDuration("MXKS_DEADLINE_MS", time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	acct := childAccount()
	ctx := context.Background()
	for _, op := range strings.Split(os.Getenv("MXKS_OPS"), ",") {
		start := time.Now()
		var value string
		switch op {
		case "save":
			err = s.SaveTokens(ctx, acct, matrix.TokenSet{AccessToken: matrix.Secret(os.Getenv("MXKS_VALUE")), IssuedAt: time.Now()})
		case "load":
			var ts matrix.TokenSet
			ts, err = s.LoadTokens(ctx, acct)
			value = ts.AccessToken.Reveal()
		case "delete":
			err = s.DeleteTokens(ctx, acct)
		default:
			t.Fatalf("unknown op %q", op)
		}
		r := childResult{Kind: "ok", ElapsedMS: time.Since(start).Milliseconds(), Value: value}
		if err != nil {
			k, _ := KindOf(err)
			r.Kind = k.String()
			r.Message = err.Error()
			r.StoreUnavailable = isStoreProblem(err)
			r.NoStoredTokens = errors.Is(err, session.ErrNoStoredTokens)
		}
		report(r)
	}
}

// childCounter increments the shared counter item MXKS_N times from each of
// MXKS_G goroutines.
func childCounter(t *testing.T) {
	s, err := Open(Options{Backend: NewKeyringBackend(), Dir: childDir(t), Deadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv("MXKS_N"))
	g, _ := strconv.Atoi(os.Getenv("MXKS_G"))
	if err := incrementConcurrently(s, childAccount(), g, n, os.Getenv("MXKS_TAG")); err != nil {
		t.Fatal(err)
	}
	report(childResult{Kind: "ok"})
}

// incrementConcurrently runs g goroutines each doing n locked read-modify-writes.
func incrementConcurrently(s *Store, acct session.AccountKey, g, n int, tag string) error {
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if err := increment(s, acct, fmt.Sprintf("%s.%d", tag, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// increment adds one to the counter kept in the access token, under the
// account lock: without the lock, concurrent writers lose increments.
func increment(s *Store, acct session.AccountKey, writer string) error {
	ctx := context.Background()
	unlock, err := s.LockAccount(ctx, acct)
	if err != nil {
		return err
	}
	defer unlock()
	ts, err := s.LoadTokens(ctx, acct)
	if err != nil {
		return err
	}
	n, err := counterOf(ts)
	if err != nil {
		return err
	}
	// Widen the race window so a broken lock would show.
	time.Sleep(time.Millisecond)
	next := matrix.TokenSet{
		AccessToken:  matrix.Secret(fmt.Sprintf("count-%d-%s", n+1, writer)),
		RefreshToken: matrix.Secret(fmt.Sprintf("refresh-%d-%s", n+1, writer)),
		IssuedAt:     time.Now().UTC().Truncate(time.Millisecond),
	}
	return s.SaveTokens(ctx, acct, next)
}

func counterOf(ts matrix.TokenSet) (int, error) {
	parts := strings.SplitN(ts.AccessToken.Reveal(), "-", 3)
	if len(parts) != 3 || parts[0] != "count" {
		return 0, errors.New("counter item is not in the expected shape")
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		return 0, err
	}
	if ts.RefreshToken.Reveal() != "refresh-"+parts[1]+"-"+parts[2] {
		return 0, errors.New("access and refresh token come from different writes")
	}
	return n, nil
}

// childIndexAdd adds MXKS_N accounts named after MXKS_TAG to the index in MXKS_DIR.
func childIndexAdd(t *testing.T) {
	s, err := Open(Options{Backend: NewMemoryBackend(), Dir: childDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(os.Getenv("MXKS_N"))
	for i := range n {
		a := Account{UserID: fmt.Sprintf("@%s-%d:example.org", os.Getenv("MXKS_TAG"), i), DeviceID: "DEV", Homeserver: "https://example.org"}
		if err := s.PutAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	report(childResult{Kind: "ok"})
}

// childHoldLock takes the account lock, says so, and holds it until stdin closes.
func childHoldLock(t *testing.T) {
	s, err := Open(Options{Backend: NewMemoryBackend(), Dir: childDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := s.LockAccount(context.Background(), childAccount())
	if err != nil {
		t.Fatal(err)
	}
	report(childResult{Kind: "locked"})
	_, _ = io.Copy(io.Discard, os.Stdin)
	unlock()
}
