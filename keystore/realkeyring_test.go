package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zalando/go-keyring"

	"mxauth/keystore/keyringtest"
	"mxauth/matrix"
	"mxauth/matrix/session"
)

func openReal(t *testing.T) *Store {
	t.Helper()
	needReal(t)
	s, err := Open(Options{Backend: NewKeyringBackend(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleTokens(tag string) matrix.TokenSet {
	issued := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	return matrix.TokenSet{
		AccessToken:  matrix.Secret("syt_access_" + tag),
		RefreshToken: matrix.Secret("syr_refresh_" + tag),
		IssuedAt:     issued,
		ExpiresAt:    issued.Add(5 * time.Minute),
	}
}

func sameTokens(a, b matrix.TokenSet) bool {
	return a.AccessToken == b.AccessToken && a.RefreshToken == b.RefreshToken &&
		a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestRealRoundTrip(t *testing.T) {
	s := openReal(t)
	ctx := context.Background()
	acct := session.AccountKey{UserID: "@alice:example.org", DeviceID: "ROUNDTRIP"}
	want := sampleTokens("rt")
	if err := s.SaveTokens(ctx, acct, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadTokens(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTokens(got, want) {
		t.Fatalf("loaded %+v, want %+v", got, want)
	}
	// The item itself: service "mxauth", key user|device, one JSON value.
	raw, err := keyring.Get(Service, "@alice:example.org|ROUNDTRIP")
	if err != nil {
		t.Fatalf("item not under the documented service and key: %v", err)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		t.Fatalf("item is not JSON: %v", err)
	}
	for _, f := range []string{"access_token", "refresh_token", "issued_at", "expires_at"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("item lacks %q", f)
		}
	}
	if s.BackendName() != "Secret Service" {
		t.Errorf("BackendName() = %q", s.BackendName())
	}
}

func TestRealUpdateInPlace(t *testing.T) {
	s := openReal(t)
	ctx := context.Background()
	acct := session.AccountKey{UserID: "@bob:example.org", DeviceID: "UPDATE"}
	for _, tag := range []string{"one", "two", "three"} {
		if err := s.SaveTokens(ctx, acct, sampleTokens(tag)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.LoadTokens(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if !sameTokens(got, sampleTokens("three")) {
		t.Fatalf("loaded %q, want the last write", got.AccessToken.Reveal())
	}
	items, err := realKeyring.SearchItems(map[string]string{"service": Service, "username": itemKey(acct)})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 {
		t.Fatalf("%d keyring items for one account, want 1 (updated in place)", len(items))
	}
}

func TestRealDelete(t *testing.T) {
	s := openReal(t)
	ctx := context.Background()
	acct := session.AccountKey{UserID: "@carol:example.org", DeviceID: "DELETE"}
	if err := s.SaveTokens(ctx, acct, sampleTokens("d")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTokens(ctx, acct); err != nil {
		t.Fatal(err)
	}
	_, err := s.LoadTokens(ctx, acct)
	if !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("load after delete: %v, want ErrNoStoredTokens", err)
	}
	if isStoreProblem(err) {
		t.Errorf("a missing item must not be a store problem: %v", err)
	}
	if err := s.DeleteTokens(ctx, acct); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

func TestRealManyAccounts(t *testing.T) {
	s := openReal(t)
	ctx := context.Background()
	const n = 50
	key := func(i int) session.AccountKey {
		return session.AccountKey{UserID: fmt.Sprintf("@user%d:example.org", i), DeviceID: "MANY"}
	}
	for i := range n {
		if err := s.SaveTokens(ctx, key(i), sampleTokens(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		got, err := s.LoadTokens(ctx, key(i))
		if err != nil {
			t.Fatal(err)
		}
		if !sameTokens(got, sampleTokens(fmt.Sprint(i))) {
			t.Fatalf("account %d: got %q", i, got.AccessToken.Reveal())
		}
	}
	for i := range n {
		if err := s.DeleteTokens(ctx, key(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.LoadTokens(ctx, key(7)); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("after deleting: %v", err)
	}
}

// Two processes with two goroutines each, plus two goroutines here, increment
// one counter item under LockAccount. Every increment must survive and the
// item must always hold a matching access/refresh pair.
func TestRealConcurrentWriters(t *testing.T) {
	s := openReal(t)
	acct := session.AccountKey{UserID: "@counter:example.org", DeviceID: "RACE"}
	if err := s.SaveTokens(context.Background(), acct, matrix.TokenSet{
		AccessToken: "count-0-init", RefreshToken: "refresh-0-init", IssuedAt: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	const procs, goroutines, n = 2, 2, 10
	env := []string{"MXKS_DIR=" + s.Dir(), "MXKS_USER=" + acct.UserID, "MXKS_DEVICE=" + acct.DeviceID,
		fmt.Sprintf("MXKS_N=%d", n), fmt.Sprintf("MXKS_G=%d", goroutines)}
	var wg sync.WaitGroup
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := startChild(t, "counter", append(env, fmt.Sprintf("MXKS_TAG=proc%d", p)))
			if out, err := cmd.Output(); err != nil {
				t.Errorf("writer process %d: %v\n%s", p, err, out)
			}
		}()
	}
	if err := incrementConcurrently(s, acct, goroutines, n, "parent"); err != nil {
		t.Error(err)
	}
	wg.Wait()
	got, err := s.LoadTokens(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	c, err := counterOf(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := (procs + 1) * goroutines * n; c != want {
		t.Fatalf("counter = %d, want %d: concurrent writers lost updates", c, want)
	}
}

// probeEnv is the child environment for the probes: only the bus address
// differs from the shared keyring's.
func probeEnv(busAddr string, deadline time.Duration, ops string, extra ...string) []string {
	env := []string{
		"MXKS_USER=@probe:example.org", "MXKS_DEVICE=PROBE", "MXKS_VALUE=syt_probe_value",
		fmt.Sprintf("MXKS_DEADLINE_MS=%d", deadline.Milliseconds()), "MXKS_OPS=" + ops,
	}
	if busAddr != "" {
		env = append(env, "DBUS_SESSION_BUS_ADDRESS="+busAddr)
	}
	return append(env, extra...)
}

func checkProbe(t *testing.T, name string, r childResult, deadline time.Duration, kinds ...string) {
	t.Helper()
	t.Logf("%s: %s after %d ms: %s", name, r.Kind, r.ElapsedMS, r.Message)
	if !containsString(kinds, r.Kind) {
		t.Errorf("%s: kind %q, want one of %v (%s)", name, r.Kind, kinds, r.Message)
	}
	if limit := deadline + time.Second; time.Duration(r.ElapsedMS)*time.Millisecond > limit {
		t.Errorf("%s: took %d ms, more than deadline + 1 s (%s)", name, r.ElapsedMS, limit)
	}
	if !r.StoreUnavailable {
		t.Errorf("%s: error is not a store problem: %s", name, r.Message)
	}
	if strings.Contains(r.Message, "syt_probe_value") {
		t.Errorf("%s: error shows the token", name)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func needLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the Secret Service cases run on Linux")
	}
}

// A locked collection whose unlock prompt is never answered: the call hangs
// inside go-keyring and the deadline must end it.
func TestRealLockedPromptHangs(t *testing.T) {
	needLinux(t)
	needReal(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{HangingPrompter: true})
	const deadline = time.Second
	if r := runChild(t, "probe", probeEnv(k.Address, deadline, "save")); len(r) != 1 || r[0].Kind != "ok" {
		t.Fatalf("save before locking: %+v", r)
	}
	if err := k.Lock(); err != nil {
		t.Fatal(err)
	}
	rs := runChild(t, "probe", probeEnv(k.Address, deadline, "load,save,load"))
	if len(rs) != 3 {
		t.Fatalf("child reported %d results", len(rs))
	}
	for i, r := range rs {
		checkProbe(t, fmt.Sprintf("locked op %d", i), r, deadline, "timed out")
		if !strings.Contains(r.Message, "unlock") {
			t.Errorf("message gives no unlock advice: %s", r.Message)
		}
	}
}

// A locked collection with no prompter at all: gnome-keyring dismisses the
// prompt at once, and the error must say the keyring is locked.
func TestRealLockedNoPrompter(t *testing.T) {
	needLinux(t)
	needReal(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{})
	const deadline = time.Second
	if r := runChild(t, "probe", probeEnv(k.Address, deadline, "save")); len(r) != 1 || r[0].Kind != "ok" {
		t.Fatalf("save before locking: %+v", r)
	}
	if err := k.Lock(); err != nil {
		t.Fatal(err)
	}
	rs := runChild(t, "probe", probeEnv(k.Address, deadline, "load,save"))
	if len(rs) != 2 {
		t.Fatalf("child reported %d results", len(rs))
	}
	for i, r := range rs {
		checkProbe(t, fmt.Sprintf("locked op %d", i), r, deadline, "locked", "timed out")
	}
	if err := k.Unlock(); err != nil {
		t.Fatal(err)
	}
	rs = runChild(t, "probe", probeEnv(k.Address, deadline, "load"))
	if len(rs) != 1 || rs[0].Kind != "ok" || rs[0].Value != "syt_probe_value" {
		t.Fatalf("after unlocking: %+v", rs)
	}
}

// A session bus without any Secret Service.
func TestRealNoSecretService(t *testing.T) {
	needLinux(t)
	needReal(t) // dbus-daemon comes with the same packages
	k := keyringtest.StartKeyring(t, keyringtest.Options{NoSecretService: true})
	const deadline = time.Second
	rs := runChild(t, "probe", probeEnv(k.Address, deadline, "load,save,delete"))
	if len(rs) != 3 {
		t.Fatalf("child reported %d results", len(rs))
	}
	for i, r := range rs {
		checkProbe(t, fmt.Sprintf("no secret service op %d", i), r, deadline, "unavailable")
		for _, hint := range []string{"gnome-keyring-daemon", "KeePassXC", "mxauth demo"} {
			if !strings.Contains(r.Message, hint) {
				t.Errorf("message lacks %q: %s", hint, r.Message)
			}
		}
	}
}

// No session bus at all: an address pointing nowhere, and no address.
func TestRealNoDBus(t *testing.T) {
	needLinux(t)
	const deadline = time.Second
	missing := "unix:path=" + filepath.Join(t.TempDir(), "no-bus-here")
	rs := runChild(t, "probe", probeEnv(missing, deadline, "load,save"))
	if len(rs) != 2 {
		t.Fatalf("child reported %d results", len(rs))
	}
	for i, r := range rs {
		checkProbe(t, fmt.Sprintf("bus socket missing op %d", i), r, deadline, "unavailable")
	}

	if u, err := user.Current(); err == nil {
		if _, err := os.Stat(filepath.Join("/run/user", u.Uid, "bus")); err == nil {
			t.Skip("this machine has a user session bus, which godbus finds without DBUS_SESSION_BUS_ADDRESS")
		}
	}
	// Merge cannot delete a variable, so the child gets an empty one: godbus
	// treats empty and unset alike.
	rs = runChild(t, "probe", probeEnv("", deadline, "load,save", "DBUS_SESSION_BUS_ADDRESS="))
	if len(rs) != 2 {
		t.Fatalf("child reported %d results", len(rs))
	}
	for i, r := range rs {
		checkProbe(t, fmt.Sprintf("no bus address op %d", i), r, deadline, "unavailable")
		if !strings.Contains(r.Message, "DBUS_SESSION_BUS_ADDRESS") {
			t.Errorf("message does not name the missing variable: %s", r.Message)
		}
	}
}

// Removal and repair against the real keyring.
func TestRealRemoveAndRepair(t *testing.T) {
	s := openReal(t)
	ctx := context.Background()
	a := Account{UserID: "@dave:example.org", DeviceID: "REPAIR", Homeserver: "https://example.org"}
	if err := s.SaveTokens(ctx, a.Key(), sampleTokens("r")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(a); err != nil {
		t.Fatal(err)
	}
	if notes, err := s.Repair(ctx); err != nil || len(notes) != 0 {
		t.Fatalf("healthy store: notes %q, err %v", notes, err)
	}
	// The item vanishes behind mxauth's back.
	if err := keyring.Delete(Service, itemKey(a.Key())); err != nil {
		t.Fatal(err)
	}
	notes, err := s.Repair(ctx)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "sign in again") {
		t.Fatalf("missing item: notes %q, err %v", notes, err)
	}
	if err := s.SaveTokens(ctx, a.Key(), sampleTokens("r2")); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveAccount(ctx, a.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Get(Service, itemKey(a.Key())); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("item still there after RemoveAccount: %v", err)
	}
	if _, ok := s.Account(a.UserID); ok {
		t.Fatal("index entry still there after RemoveAccount")
	}
}
