package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/matrix/session"
)

func acctFor(user, device string) Account {
	return Account{UserID: user, DeviceID: device, Homeserver: "https://example.org"}
}

func openIndex(t *testing.T, dir string, b Backend) *Store {
	t.Helper()
	if b == nil {
		b = NewMemoryBackend()
	}
	s, err := Open(Options{Backend: b, Dir: dir, LockTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIndexPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes")
	}
	dir := filepath.Join(t.TempDir(), "mxauth")
	s := openIndex(t, dir, nil)
	if err := s.PutAccount(acctFor("@a:example.org", "D1")); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.LockAccount(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	checkMode(t, dir, 0o700)
	checkMode(t, s.IndexPath(), 0o600)
	checkMode(t, filepath.Join(dir, "locks"), 0o700)
	checkMode(t, s.LockPath(alice), 0o600)
	checkMode(t, filepath.Join(dir, indexLockName), 0o600)

	// A directory left too open is tightened on the next write.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(acctFor("@b:example.org", "D2")); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", path, got, want)
	}
}

func TestIndexContentsAndAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	s := openIndex(t, dir, nil)
	a := acctFor("@a:example.org", "D1")
	a.DisplayName = "Alice"
	if err := s.PutAccount(a); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(acctFor("@b:example.org", "D2")); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	// A rename installs a new file; writing in place would keep the inode.
	if os.SameFile(before, after) {
		t.Error("index rewritten in place, not replaced by rename")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	data, err := os.ReadFile(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	var x map[string]any
	if err := json.Unmarshal(data, &x); err != nil {
		t.Fatal(err)
	}
	if x["version"] != float64(1) {
		t.Errorf("version = %v", x["version"])
	}
	accts, _ := x["accounts"].([]any)
	if len(accts) != 2 {
		t.Fatalf("file lists %d accounts", len(accts))
	}
	first := accts[0].(map[string]any)
	for _, k := range []string{"user_id", "device_id", "homeserver", "display_name", "added_at"} {
		if _, ok := first[k]; !ok {
			t.Errorf("account entry lacks %q", k)
		}
	}
	// A second store sees what the first wrote.
	other := openIndex(t, dir, nil)
	if got, ok := other.Account("@a:example.org"); !ok || got.DisplayName != "Alice" || got.AddedAt.IsZero() {
		t.Errorf("reopened: %+v %v", got, ok)
	}
}

func TestIndexNeverHoldsSecrets(t *testing.T) {
	dir := t.TempDir()
	s := openIndex(t, dir, nil)
	ctx := context.Background()
	a := acctFor("@a:example.org", "D1")
	if err := s.SaveTokens(ctx, a.Key(), sampleTokens("NOTINFILE")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(a); err != nil {
		t.Fatal(err)
	}
	unlock, _ := s.LockAccount(ctx, a.Key())
	unlock()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, _ := os.ReadFile(p); bytes.Contains(data, []byte("NOTINFILE")) {
				t.Errorf("%s holds a token", p)
			}
		}
		return nil
	})
}

func TestIndexCorruptIsReportedAndKept(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "{not json",
		"empty":     "",
		"noversion": `{"accounts": []}`,
		"newer":     `{"version": 99, "accounts": []}`,
		"no user":   `{"version": 1, "accounts": [{"device_id": "D"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, indexName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(Options{Backend: NewMemoryBackend(), Dir: dir})
			if err == nil {
				t.Fatal("opened a bad index")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error does not name the file: %v", err)
			}
			if k, _ := KindOf(err); k != KindCorrupt {
				t.Errorf("kind %v", k)
			}
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Errorf("file changed to %q", data)
			}
		})
	}

	// Damaged while a store has it open: updates refuse and leave it alone.
	dir := t.TempDir()
	s := openIndex(t, dir, nil)
	if err := s.PutAccount(acctFor("@a:example.org", "D1")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.IndexPath(), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(acctFor("@b:example.org", "D2")); err == nil {
		t.Fatal("updated a damaged index")
	}
	if err := s.RemoveAccount(context.Background(), "@a:example.org"); err == nil {
		t.Fatal("removed from a damaged index")
	}
	if data, _ := os.ReadFile(s.IndexPath()); string(data) != "{broken" {
		t.Errorf("damaged file overwritten: %q", data)
	}
}

func TestDefaultDirHonoursXDG(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("XDG_CONFIG_HOME is a Linux/BSD convention")
	}
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	// Any backend but the memory one uses the default directory.
	s, err := Open(Options{Backend: newFake()})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(cfg, "mxauth")
	if s.Dir() != want {
		t.Fatalf("Dir() = %q, want %q", s.Dir(), want)
	}
	if err := s.PutAccount(acctFor("@a:example.org", "D1")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(want, indexName)); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultAccount(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	if _, ok := s.Default(); ok {
		t.Error("default with no accounts")
	}
	if err := s.PutAccount(acctFor("@a:example.org", "D1")); err != nil {
		t.Fatal(err)
	}
	if d, ok := s.Default(); !ok || d.UserID != "@a:example.org" {
		t.Errorf("the only account is not the default: %+v", d)
	}
	if err := s.PutAccount(acctFor("@b:example.org", "D2")); err != nil {
		t.Fatal(err)
	}
	if d, ok := s.Default(); ok {
		t.Errorf("two accounts, none marked, yet default %s", d.UserID)
	}
	if err := s.SetDefault("@b:example.org"); err != nil {
		t.Fatal(err)
	}
	if d, ok := s.Default(); !ok || d.UserID != "@b:example.org" {
		t.Errorf("marked default not returned: %+v", d)
	}
	if err := s.SetDefault("@nobody:example.org"); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("SetDefault unknown: %v", err)
	}
	if err := s.RemoveAccount(context.Background(), "@b:example.org"); err != nil {
		t.Fatal(err)
	}
	if d, ok := s.Default(); !ok || d.UserID != "@a:example.org" {
		t.Errorf("after removing the default: %+v %v", d, ok)
	}
	if err := s.RemoveAccount(context.Background(), "@b:example.org"); !errors.Is(err, ErrUnknownAccount) {
		t.Errorf("removing twice: %v", err)
	}
}

func TestPutAccountUpdates(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	a := acctFor("@a:example.org", "D1")
	if err := s.PutAccount(a); err != nil {
		t.Fatal(err)
	}
	first, _ := s.Account(a.UserID)
	a.NeedsSignIn = true
	if err := s.PutAccount(a); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Account(a.UserID)
	if !got.NeedsSignIn || !got.AddedAt.Equal(first.AddedAt) || len(s.Accounts()) != 1 {
		t.Errorf("update: %+v (%d accounts)", got, len(s.Accounts()))
	}
	if err := s.PutAccount(Account{UserID: "@x:y"}); err == nil {
		t.Error("accepted an account without device")
	}
}

// Signing in again on a new device leaves the old device's item to delete.
func TestRepairReplacedDevice(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	ctx := context.Background()
	old := acctFor("@a:example.org", "OLD")
	s.SaveTokens(ctx, old.Key(), sampleTokens("old"))
	s.PutAccount(old)
	neu := acctFor("@a:example.org", "NEW")
	s.SaveTokens(ctx, neu.Key(), sampleTokens("new"))
	if err := s.PutAccount(neu); err != nil {
		t.Fatal(err)
	}
	if p := s.PendingRemovals(); len(p) != 1 || p[0].DeviceID != "OLD" || !p[0].Replaced {
		t.Fatalf("pending: %+v", p)
	}
	notes, err := s.Repair(ctx)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "old device OLD") {
		t.Fatalf("notes %q, err %v", notes, err)
	}
	if _, err := s.LoadTokens(ctx, old.Key()); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Errorf("old item kept: %v", err)
	}
	if _, err := s.LoadTokens(ctx, neu.Key()); err != nil {
		t.Errorf("new item lost: %v", err)
	}
	if a, ok := s.Account(neu.UserID); !ok || a.DeviceID != "NEW" {
		t.Errorf("account after repair: %+v", a)
	}
}

// A removal that stopped before deleting the keyring item (here: the keyring
// was unreachable) is finished by the next Repair.
func TestRepairRemovalStoppedBeforeDelete(t *testing.T) {
	f := newFake()
	down := true
	f.delete = func(service, key string) error {
		if down {
			return fmt.Errorf("%w: test", errNoSessionBus)
		}
		return f.Backend.Delete(service, key)
	}
	dir := t.TempDir()
	s := openIndex(t, dir, f)
	ctx := context.Background()
	a := acctFor("@a:example.org", "D1")
	s.SaveTokens(ctx, a.Key(), sampleTokens("a"))
	s.PutAccount(a)
	err := s.RemoveAccount(ctx, a.UserID)
	if k, _ := KindOf(err); k != KindUnavailable {
		t.Fatalf("remove with keyring down: %v", err)
	}
	if _, ok := s.Account(a.UserID); !ok {
		t.Fatal("account dropped although its item could not be deleted")
	}
	notes, err := s.Repair(ctx)
	if err == nil || len(notes) != 1 || !strings.Contains(notes[0], "could not finish removing") {
		t.Fatalf("repair with keyring still down: %q, %v", notes, err)
	}

	down = false
	s2 := openIndex(t, dir, f) // the next run
	notes, err = s2.Repair(ctx)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "finished removing") {
		t.Fatalf("repair: %q, %v", notes, err)
	}
	if _, ok := s2.Account(a.UserID); ok || len(s2.PendingRemovals()) != 0 {
		t.Errorf("after repair: account still listed or marker kept")
	}
	if _, err := s2.LoadTokens(ctx, a.Key()); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Errorf("item survived: %v", err)
	}
	if notes, _ := s2.Repair(ctx); len(notes) != 0 {
		t.Errorf("second repair found more: %q", notes)
	}
}

// A removal that stopped after deleting the item but before updating the
// index (here: the delete went through but reported a failure).
func TestRepairRemovalStoppedAfterDelete(t *testing.T) {
	f := newFake()
	f.delete = func(service, key string) error {
		f.Backend.Delete(service, key)
		return fmt.Errorf("%w: lost the reply", errNoSessionBus)
	}
	dir := t.TempDir()
	s := openIndex(t, dir, f)
	ctx := context.Background()
	a := acctFor("@a:example.org", "D1")
	b := acctFor("@b:example.org", "D2")
	for _, x := range []Account{a, b} {
		s.SaveTokens(ctx, x.Key(), sampleTokens(x.DeviceID))
		s.PutAccount(x)
	}
	if err := s.RemoveAccount(ctx, a.UserID); err == nil {
		t.Fatal("expected the reported failure")
	}
	f.delete = nil
	s2 := openIndex(t, dir, f)
	notes, err := s2.Repair(ctx)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "finished removing") || !strings.Contains(notes[0], a.UserID) {
		t.Fatalf("repair: %q, %v", notes, err)
	}
	if _, ok := s2.Account(a.UserID); ok {
		t.Error("removed account still listed")
	}
	if _, ok := s2.Account(b.UserID); !ok {
		t.Error("the other account was lost")
	}
}

func TestRepairReportsMissingItems(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	ctx := context.Background()
	gone := acctFor("@gone:example.org", "D1")
	out := acctFor("@out:example.org", "D2")
	out.SignedOut = true
	ok := acctFor("@ok:example.org", "D3")
	s.SaveTokens(ctx, ok.Key(), sampleTokens("ok"))
	for _, a := range []Account{gone, out, ok} {
		s.PutAccount(a)
	}
	notes, err := s.Repair(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], gone.UserID) || !strings.Contains(notes[0], "sign in again") {
		t.Fatalf("notes %q", notes)
	}
}

func TestRepairStopsOnStoreProblem(t *testing.T) {
	f := newFake()
	f.get = func(string, string) (string, error) {
		return "", errors.New("failed to unlock correct collection '/x'")
	}
	s := openIndex(t, t.TempDir(), f)
	s.PutAccount(acctFor("@a:example.org", "D1"))
	s.PutAccount(acctFor("@b:example.org", "D2"))
	notes, err := s.Repair(context.Background())
	if !isStoreProblem(err) || len(notes) != 1 || !strings.Contains(notes[0], "locked") {
		t.Fatalf("notes %q, err %v", notes, err)
	}
}

func TestIndexConcurrentGoroutines(t *testing.T) {
	dir := t.TempDir()
	stores := []*Store{openIndex(t, dir, nil), openIndex(t, dir, nil)}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stores[i%2].PutAccount(acctFor(fmt.Sprintf("@g%d:example.org", i), "D")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	check := openIndex(t, dir, nil)
	if n := len(check.Accounts()); n != 20 {
		t.Fatalf("%d accounts after 20 concurrent adds", n)
	}
}

// Two processes adding accounts at once must not lose each other's entries.
func TestIndexConcurrentProcesses(t *testing.T) {
	dir := t.TempDir()
	const perProc = 15
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runChild(t, "index-add", []string{"MXKS_DIR=" + dir, fmt.Sprintf("MXKS_TAG=p%d", p), fmt.Sprintf("MXKS_N=%d", perProc)})
		}()
	}
	s := openIndex(t, dir, nil)
	for i := range perProc {
		if err := s.PutAccount(acctFor(fmt.Sprintf("@parent-%d:example.org", i), "D")); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Accounts()); n != 3*perProc {
		t.Fatalf("%d accounts, want %d: concurrent writers lost entries", n, 3*perProc)
	}
}

func TestLockAccountBetweenStores(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a, _ := Open(Options{Backend: NewMemoryBackend(), Dir: dir})
	// Separate stores share no in-process lock: only the file lock separates them.
	b, _ := Open(Options{Backend: NewMemoryBackend(), Dir: dir, LockTimeout: 200 * time.Millisecond})
	unlock, err := a.LockAccount(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = b.LockAccount(ctx, alice)
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("second holder: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %s, lock timeout 200ms", d)
	}
	// Other accounts are not blocked.
	u2, err := b.LockAccount(ctx, session.AccountKey{UserID: "@other:example.org", DeviceID: "X"})
	if err != nil {
		t.Fatalf("other account: %v", err)
	}
	u2()
	unlock()
	unlock() // a second call does nothing
	u3, err := b.LockAccount(ctx, alice)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	u3()
}

func TestLockAccountGoroutines(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	var inside, maxInside int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := s.LockAccount(context.Background(), alice)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			inside++
			maxInside = max(maxInside, inside)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			inside--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if maxInside != 1 {
		t.Fatalf("%d goroutines held the lock at once", maxInside)
	}
	// A cancelled wait returns the context's error.
	unlock, _ := s.LockAccount(context.Background(), alice)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.LockAccount(ctx, alice); err == nil {
		t.Fatal("locked twice")
	}
}

func TestLockAccountAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	cmd := startChild(t, "hold-lock", []string{"MXKS_DIR=" + dir, "MXKS_USER=" + alice.UserID, "MXKS_DEVICE=" + alice.DeviceID})
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 0, 256)
	for !bytes.Contains(buf, []byte(`"kind":"locked"`)) {
		chunk := make([]byte, 256)
		n, err := stdout.Read(chunk)
		if err != nil {
			t.Fatalf("child never took the lock: %v (%s)", err, buf)
		}
		buf = append(buf, chunk[:n]...)
	}
	s, _ := Open(Options{Backend: NewMemoryBackend(), Dir: dir, LockTimeout: 300 * time.Millisecond})
	if _, err := s.LockAccount(context.Background(), alice); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("lock held by another process: %v", err)
	}
	stdin.Close()
	go io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	s2, _ := Open(Options{Backend: NewMemoryBackend(), Dir: dir, LockTimeout: 2 * time.Second})
	unlock, err := s2.LockAccount(context.Background(), alice)
	if err != nil {
		t.Fatalf("after the other process let go: %v", err)
	}
	unlock()
}

// TestSnapshotWhileUpdateWaits: readers of the account list never wait for an
// update that waits for the index lock; the busy lock is its own error.
func TestSnapshotWhileUpdateWaits(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Backend: NewMemoryBackend(), Dir: dir, LockTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(Account{UserID: alice.UserID, DeviceID: alice.DeviceID, Homeserver: "https://hs"}); err != nil {
		t.Fatal(err)
	}
	other, err := lockFile(context.Background(), filepath.Join(dir, indexLockName)) // another holder
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.SetDefault(alice.UserID) }()
	waitLocked(t, &s.mu) // the update holds the in-process mutex while it waits
	read := make(chan int, 1)
	go func() {
		_, _ = s.Default()
		_, _ = s.Account(alice.UserID)
		read <- len(s.Accounts()) + len(s.PendingRemovals())
	}()
	select {
	case n := <-read:
		if n != 1 {
			t.Fatalf("snapshot has %d entries, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading the account list waited for an update waiting for the index lock")
	}
	other.unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A lock never released is a LockBusyError, not a keyring problem.
	s2, _ := Open(Options{Backend: NewMemoryBackend(), Dir: dir, LockTimeout: 100 * time.Millisecond})
	held, _ := lockFile(context.Background(), filepath.Join(dir, indexLockName))
	defer held.unlock()
	var busy *LockBusyError
	if err := s2.SetDefault(alice.UserID); !errors.As(err, &busy) || !errors.Is(err, ErrLockTimeout) || isStoreProblem(err) {
		t.Fatalf("index lock held: %v", err)
	}
}

// waitLocked polls until mu is held by someone else.
func waitLocked(t *testing.T, mu *sync.Mutex) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); mu.TryLock(); {
		mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the update never took the index mutex")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestIndexWritableByOthersRefused: an index that other users can change is
// neither used nor repaired silently: the error names each path, what is
// wrong and the command that fixes it, and the files stay as they were.
func TestIndexWritableByOthersRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("POSIX modes")
	}
	for _, tc := range []struct {
		name             string
		dirMode, idxMode os.FileMode
		want             []string
	}{
		{"world-writable file", 0o700, 0o666, []string{"account list", "writable by every user (mode 0666)", "chmod 600 "}},
		{"group-writable file", 0o700, 0o620, []string{"writable by its group (mode 0620)", "chmod 600 "}},
		{"world-writable dir", 0o777, 0o600, []string{"config dir", "writable by every user (mode 0777)", "chmod 700 "}},
		{"both", 0o777, 0o666, []string{"config dir", "account list", "chmod 700 ", " && chmod 600 "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "mxauth")
			s := openIndex(t, dir, nil)
			if err := s.PutAccount(acctFor("@a:example.org", "D1")); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(s.IndexPath())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(s.IndexPath(), tc.idxMode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			defer os.Chmod(dir, 0o700)

			_, err = Open(Options{Backend: NewMemoryBackend(), Dir: dir})
			var unsafe *UnsafeIndexError
			if !errors.As(err, &unsafe) || !errors.Is(err, ErrUnsafeIndex) {
				t.Fatalf("Open: want an unsafe-index error, got %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			// A store opened before the change stops using the file too.
			if err := s.Reload(); !errors.Is(err, ErrUnsafeIndex) {
				t.Errorf("Reload: %v", err)
			}
			if err := s.PutAccount(acctFor("@b:example.org", "D2")); !errors.Is(err, ErrUnsafeIndex) {
				t.Errorf("PutAccount: %v", err)
			}
			after, _ := os.ReadFile(s.IndexPath())
			if !bytes.Equal(before, after) {
				t.Error("the refused index was rewritten")
			}
			checkMode(t, s.IndexPath(), tc.idxMode)

			// The commands in the message make it usable again.
			for _, f := range unsafe.Findings {
				mode := os.FileMode(0o600)
				if f.What == "config dir" {
					mode = 0o700
				}
				if err := os.Chmod(f.Path, mode); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := Open(Options{Backend: NewMemoryBackend(), Dir: dir}); err != nil {
				t.Fatalf("after the fix: %v", err)
			}
		})
	}
}
