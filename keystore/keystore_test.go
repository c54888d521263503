package keystore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	dbus "github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

// fakeBackend wraps a memory backend; hooks change single operations.
type fakeBackend struct {
	Backend
	name   string
	get    func(service, key string) (string, error)
	set    func(service, key, value string) error
	delete func(service, key string) error
}

func (f *fakeBackend) Name() string {
	if f.name != "" {
		return f.name
	}
	return "fake"
}

func (f *fakeBackend) Get(service, key string) (string, error) {
	if f.get != nil {
		return f.get(service, key)
	}
	return f.Backend.Get(service, key)
}

func (f *fakeBackend) Set(service, key, value string) error {
	if f.set != nil {
		return f.set(service, key, value)
	}
	return f.Backend.Set(service, key, value)
}

func (f *fakeBackend) Delete(service, key string) error {
	if f.delete != nil {
		return f.delete(service, key)
	}
	return f.Backend.Delete(service, key)
}

func newFake() *fakeBackend { return &fakeBackend{Backend: NewMemoryBackend()} }

func openWith(t *testing.T, b Backend, deadline time.Duration) *Store {
	t.Helper()
	s, err := Open(Options{Backend: b, Dir: t.TempDir(), Deadline: deadline})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var alice = session.AccountKey{UserID: "@alice:example.org", DeviceID: "ALICEDEV"}

func TestMemoryBackend(t *testing.T) {
	s, err := Open(Options{Backend: NewMemoryBackend()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.BackendName(); !strings.Contains(got, "memory") || !strings.Contains(got, "nothing is saved") {
		t.Errorf("BackendName() = %q: must say it is memory and nothing is saved", got)
	}
	// A demo must never write into the real configuration directory.
	if cfg, err := os.UserConfigDir(); err == nil && strings.HasPrefix(s.Dir(), cfg) {
		t.Errorf("memory store uses %s, inside the user config dir", s.Dir())
	}
	ctx := context.Background()
	want := sampleTokens("mem")
	if err := s.SaveTokens(ctx, alice, want); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadTokens(ctx, alice)
	if err != nil || !sameTokens(got, want) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// Another memory store shares nothing.
	other := openWith(t, NewMemoryBackend(), 0)
	if _, err := other.LoadTokens(ctx, alice); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("second memory store: %v", err)
	}
	if err := s.DeleteTokens(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadTokens(ctx, alice); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("after delete: %v", err)
	}
	dir := s.Dir()
	if err := s.PutAccount(Account{UserID: alice.UserID, DeviceID: alice.DeviceID}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Close left the memory store's directory behind: %v", err)
	}
}

func TestSaveRejectsIncompleteInput(t *testing.T) {
	s := openWith(t, NewMemoryBackend(), 0)
	ctx := context.Background()
	if err := s.SaveTokens(ctx, alice, matrix.TokenSet{}); err == nil {
		t.Error("saved an empty access token")
	}
	if err := s.SaveTokens(ctx, session.AccountKey{UserID: "@a:b"}, sampleTokens("x")); err == nil {
		t.Error("saved without a device ID")
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want Kind
	}{
		{"not found", keyring.ErrNotFound, KindNotFound},
		{"too big", keyring.ErrSetDataTooBig, KindTooLarge},
		{"unsupported platform", keyring.ErrUnsupportedPlatform, KindUnavailable},
		{"service unknown", dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown", Body: []any{"The name org.freedesktop.secrets was not provided by any .service files"}}, KindUnavailable},
		{"service unknown pointer", &dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown"}, KindUnavailable},
		{"is locked", dbus.Error{Name: "org.freedesktop.Secret.Error.IsLocked", Body: []any{"Cannot get secret of a locked object"}}, KindLocked},
		{"no reply", dbus.Error{Name: "org.freedesktop.DBus.Error.NoReply"}, KindTimeout},
		{"prompt dismissed", errors.New("failed to unlock correct collection '/org/freedesktop/secrets/aliases/default'"), KindLocked},
		{"dial", &net.OpError{Op: "dial", Net: "unix", Err: errors.New("connect: no such file or directory")}, KindUnavailable},
		{"autolaunch", errors.New("exit status 1: Cannot autolaunch D-Bus without X11 $DISPLAY"), KindUnavailable},
		{"no address", errors.New("dbus: couldn't determine address of session bus"), KindUnavailable},
		{"no bus", fmt.Errorf("%w: unset", errNoSessionBus), KindUnavailable},
		{"other", errors.New("something else"), KindOther},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("%s: classify(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		err          error
		kind         Kind
		noStored     bool
		storeProblem bool
		mention      string
	}{
		{keyring.ErrNotFound, KindNotFound, true, false, "sign in again"},
		{dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown"}, KindUnavailable, false, true, "mxauth demo"},
		{errors.New("failed to unlock correct collection '/x'"), KindLocked, false, true, "unlock"},
		{keyring.ErrSetDataTooBig, KindTooLarge, false, false, "too large"},
		{errors.New("weird"), KindOther, false, false, "weird"},
	}
	for _, c := range cases {
		f := newFake()
		f.get = func(string, string) (string, error) { return "", c.err }
		s := openWith(t, f, 0)
		_, err := s.LoadTokens(ctx, alice)
		if k, ok := KindOf(err); !ok || k != c.kind {
			t.Errorf("%v: kind %v, want %v", c.err, k, c.kind)
		}
		if got := errors.Is(err, session.ErrNoStoredTokens); got != c.noStored {
			t.Errorf("%v: errors.Is(ErrNoStoredTokens) = %v", c.err, got)
		}
		if got := isStoreProblem(err); got != c.storeProblem {
			t.Errorf("%v: store problem = %v", c.err, got)
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%v: message %q lacks %q", c.err, err, c.mention)
		}
		if !strings.Contains(err.Error(), alice.UserID) {
			t.Errorf("message does not name the account: %q", err)
		}
	}
}

func TestCorruptItemHidesValue(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{"syt_SECRETVALUE", `{"access_token": "syt_SECRETVALUE", `, `{"refresh_token":"syr_SECRETVALUE"}`, `{"access_token": 7}`} {
		f := newFake()
		f.get = func(string, string) (string, error) { return raw, nil }
		s := openWith(t, f, 0)
		_, err := s.LoadTokens(ctx, alice)
		if k, _ := KindOf(err); k != KindCorrupt {
			t.Fatalf("%q: %v, want corrupt", raw, err)
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(fmt.Sprintf("%+v %#v", err, err), "SECRET") {
			t.Fatalf("error shows the stored value: %v", err)
		}
	}
	// Decoding errors from a backend (macOS hex encoding) quote the data.
	f := newFake()
	f.get = func(string, string) (string, error) { return "", hex.InvalidByteError('S') }
	s := openWith(t, f, 0)
	_, err := s.LoadTokens(ctx, alice)
	if k, _ := KindOf(err); k != KindCorrupt || strings.Contains(err.Error(), "'S'") {
		t.Fatalf("hex error: %v", err)
	}
}

func TestTokensNeverInErrors(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	f.set = func(_, _, value string) error { return dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown"} }
	s := openWith(t, f, 0)
	err := s.SaveTokens(ctx, alice, sampleTokens("LEAKCHECK"))
	if err == nil || strings.Contains(err.Error(), "LEAKCHECK") {
		t.Fatalf("save error: %v", err)
	}
}

// blockingBackend's calls wait until release is closed, like a keyring
// waiting for an unlock prompt.
func blockingBackend() (*fakeBackend, func()) {
	release := make(chan struct{})
	f := newFake()
	f.get = func(service, key string) (string, error) {
		<-release
		return f.Backend.Get(service, key)
	}
	f.set = func(service, key, value string) error {
		<-release
		return f.Backend.Set(service, key, value)
	}
	var once sync.Once
	return f, func() { once.Do(func() { close(release) }) }
}

func TestDeadline(t *testing.T) {
	f, release := blockingBackend()
	defer release()
	const deadline = 200 * time.Millisecond
	s := openWith(t, f, deadline)
	ctx := context.Background()

	start := time.Now()
	err := s.SaveTokens(ctx, alice, sampleTokens("first"))
	elapsed := time.Since(start)
	if k, _ := KindOf(err); k != KindTimeout {
		t.Fatalf("blocked save: %v, want a timeout", err)
	}
	if elapsed < deadline || elapsed > deadline+time.Second {
		t.Errorf("timed out after %s, deadline %s", elapsed, deadline)
	}
	if !isStoreProblem(err) || !strings.Contains(err.Error(), "unlock") {
		t.Errorf("timeout error: %v", err)
	}

	// The first save is still pending: a second call for the same item never
	// races it; the keyring counts as hung, so it gives up at once.
	start = time.Now()
	_, err = s.LoadTokens(ctx, alice)
	if k, _ := KindOf(err); k != KindTimeout || time.Since(start) > deadline+time.Second {
		t.Fatalf("second call: %v after %s", err, time.Since(start))
	}

	// The keyring answers at last: the late write lands, then new calls work.
	release()
	waitUnhung(t, s)
	got, err := s.LoadTokens(ctx, alice)
	if err != nil || got.AccessToken.Reveal() != "syt_access_first" {
		t.Fatalf("after release: %q, %v", got.AccessToken.Reveal(), err)
	}
	s.callMu.Lock()
	hung := s.hung
	s.callMu.Unlock()
	if hung != 0 {
		t.Errorf("%d calls still counted as hung", hung)
	}
}

// TestHungKeyringOneDeadline: once a call has gone unanswered past its
// deadline, calls for other accounts fail at once instead of each waiting a
// deadline, and work again as soon as the hung call returns.
func TestHungKeyringOneDeadline(t *testing.T) {
	f, release := blockingBackend()
	defer release()
	const deadline = 200 * time.Millisecond
	s := openWith(t, f, deadline)
	ctx := context.Background()
	start := time.Now()
	for i := range 12 {
		acct := session.AccountKey{UserID: fmt.Sprintf("@u%d:x", i), DeviceID: "D"}
		if _, err := s.LoadTokens(ctx, acct); !isStoreProblem(err) {
			t.Fatalf("call %d with the keyring hung: %v", i, err)
		}
	}
	if took := time.Since(start); took > 2*deadline {
		t.Fatalf("12 calls to a hung keyring took %s, want about one deadline (%s)", took, deadline)
	}
	release()
	waitUnhung(t, s)
	if _, err := s.LoadTokens(ctx, alice); err != nil && !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("after the keyring answered: %v", err)
	}
}

// waitUnhung waits until every abandoned keyring call has returned.
func waitUnhung(t *testing.T, s *Store) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.callMu.Lock()
		hung := s.hung
		s.callMu.Unlock()
		if hung == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d abandoned keyring calls never returned", hung)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCallerContext(t *testing.T) {
	f, release := blockingBackend()
	defer release()
	s := openWith(t, f, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := s.LoadTokens(ctx, alice)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled load: %v", err)
	}
}

// go-keyring dereferences a nil signal when the bus closes during a prompt; the
// panic must become an error, not a crash.
func TestBackendPanic(t *testing.T) {
	f := newFake()
	f.get = func(string, string) (string, error) {
		var sig *dbus.Signal
		return sig.Name, nil
	}
	s := openWith(t, f, time.Second)
	_, err := s.LoadTokens(context.Background(), alice)
	if k, _ := KindOf(err); k != KindUnavailable {
		t.Fatalf("panicking backend: %v", err)
	}
}

func TestKeyringBackendName(t *testing.T) {
	if n := NewKeyringBackend().Name(); n == "" || strings.Contains(n, "memory") {
		t.Errorf("keyring backend name %q", n)
	}
}
