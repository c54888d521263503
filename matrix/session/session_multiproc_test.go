package session_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

// fileBackend keeps each secret in its own file: a keyring that two processes share.
type fileBackend struct{ dir string }

func (b fileBackend) path(service, key string) string {
	h := sha256.Sum256([]byte(service + "\x00" + key))
	return filepath.Join(b.dir, hex.EncodeToString(h[:]))
}

func (b fileBackend) Get(service, key string) (string, error) {
	data, err := os.ReadFile(b.path(service, key))
	if errors.Is(err, os.ErrNotExist) {
		return "", keystore.ErrItemNotFound
	}
	return string(data), err
}

func (b fileBackend) Set(service, key, value string) error {
	p := b.path(service, key)
	tmp := fmt.Sprintf("%s.%d.tmp", p, os.Getpid())
	if err := os.WriteFile(tmp, []byte(value), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (b fileBackend) Delete(service, key string) error {
	err := os.Remove(b.path(service, key))
	if errors.Is(err, os.ErrNotExist) {
		return keystore.ErrItemNotFound
	}
	return err
}

func (fileBackend) Name() string { return "test files" }

const twoProcEnv = "MXAUTH_TEST_TWOPROC"

func openSharedStore(t testing.TB, dir string) *keystore.Store {
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := keystore.Open(keystore.Options{Backend: fileBackend{secrets}, Dir: filepath.Join(dir, "config")})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// refreshLoop refreshes n times, with a short random pause so that the other
// process gets the account lock too. It returns how many refreshes failed.
func refreshLoop(s *session.Session, n int) (failed int, first error) {
	for i := 0; i < n; i++ {
		if err := s.RefreshNow(context.Background()); err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond)
	}
	return failed, first
}

const twoProcRefreshes = 1000

// TestTwoProcesses: this process and a copy of the test binary refresh the same
// account 1,000 times each, at the same time, over one store. No refresh may use a
// superseded token, and the tokens left in the store must work.
func TestTwoProcesses(t *testing.T) {
	t.Parallel() // waits on real time; the others need not wait for it
	if spec := os.Getenv(twoProcEnv); spec != "" {
		twoProcChild(t, spec)
		return
	}
	if testing.Short() {
		t.Skip("spawns a second process")
	}
	srv := homeserver.New(homeserver.Options{AccessTokenLifetime: 10 * time.Minute})
	defer srv.Close()
	srv.AddUser("alice", "pw")
	client, err := matrix.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resp, err := client.Login(ctx, matrix.PasswordLogin("alice", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	acct := session.AccountKey{UserID: resp.UserID, DeviceID: resp.DeviceID}
	dir := t.TempDir()
	store := openSharedStore(t, dir)
	// Every forced refresh redeems (no adopting a recent one), so that both
	// processes really rotate under the lock, one after the other.
	m := session.NewManager(store, session.ManagerOptions{AdoptRecent: -1})
	s, err := m.AddWithTokens(ctx, acct, client, resp.Tokens())
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcesses$", "-test.count=1", "-test.timeout=120s")
	cmd.Env = append(os.Environ(), twoProcEnv+"="+strings.Join([]string{dir, srv.URL(), acct.UserID, acct.DeviceID}, "\n"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	failed, first := refreshLoop(s, twoProcRefreshes)
	childErr := cmd.Wait()
	if childErr != nil {
		t.Errorf("second process: %v\n%s", childErr, out.String())
	}
	if failed > 0 {
		t.Errorf("%d of %d refreshes failed here; first: %v", failed, twoProcRefreshes, first)
	}
	if n := srv.RefreshCount(); n != 2*twoProcRefreshes {
		t.Errorf("server saw %d refreshes, want %d", n, 2*twoProcRefreshes)
	}
	for _, r := range srv.Requests() {
		if r.Path == refreshPath && r.Status != 200 {
			t.Fatalf("a refresh got %d", r.Status)
		}
	}
	// What is stored works, for a new process as well as for this one.
	m2 := session.NewManager(openSharedStore(t, dir), session.ManagerOptions{})
	s2, err := m2.Add(ctx, acct, client)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.WhoAmI(ctx, s2.Tokens().AccessToken); err != nil {
		t.Fatalf("stored access token: %v", err)
	}
	if err := s.Do(ctx, whoami(client)); err != nil {
		t.Fatalf("this process's session: %v", err)
	}
	if n := srv.ExpiredTokenUses(); n != 0 {
		t.Fatalf("%d expired token uses", n)
	}
}

func twoProcChild(t *testing.T, spec string) {
	parts := strings.Split(spec, "\n")
	if len(parts) != 4 {
		t.Fatalf("bad %s", twoProcEnv)
	}
	client, err := matrix.NewClient(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	m := session.NewManager(openSharedStore(t, parts[0]), session.ManagerOptions{AdoptRecent: -1})
	s, err := m.Add(context.Background(), session.AccountKey{UserID: parts[2], DeviceID: parts[3]}, client)
	if err != nil {
		t.Fatal(err)
	}
	if failed, first := refreshLoop(s, twoProcRefreshes); failed > 0 {
		t.Fatalf("%d of %d refreshes failed in the second process; first: %v", failed, twoProcRefreshes, first)
	}
}
