package session_test

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

// memStore is the in-memory TokenStore with switches to make the keyring fail.
type memStore struct {
	*session.MemoryStore
	mu        sync.Mutex
	failSaves int // how many of the next saves fail
	failLoads int // how many of the next loads fail
	saves     int
}

func newMemStore() *memStore {
	return &memStore{MemoryStore: session.NewMemoryStore()}
}

// errKeyringLocked stands for a keyring that is locked or unreachable.
type errKeyringLocked struct{}

func (errKeyringLocked) Error() string          { return "keyring locked (test)" }
func (errKeyringLocked) StoreUnavailable() bool { return true }

func (s *memStore) LoadTokens(ctx context.Context, acct session.AccountKey) (matrix.TokenSet, error) {
	s.mu.Lock()
	fail := s.failLoads > 0
	if fail {
		s.failLoads--
	}
	s.mu.Unlock()
	if fail {
		return matrix.TokenSet{}, errKeyringLocked{}
	}
	return s.MemoryStore.LoadTokens(ctx, acct)
}

func (s *memStore) SaveTokens(ctx context.Context, acct session.AccountKey, t matrix.TokenSet) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSaves > 0 {
		s.failSaves--
		return errKeyringLocked{}
	}
	s.saves++
	return s.MemoryStore.SaveTokens(ctx, acct, t)
}

func (s *memStore) stored(acct session.AccountKey) (matrix.TokenSet, bool) {
	t, err := s.MemoryStore.LoadTokens(context.Background(), acct)
	return t, err == nil
}

// fakeClock is a wall clock that tests can push forward.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is one homeserver, one signed-in account and its session.
type env struct {
	t      *testing.T
	srv    *homeserver.Server
	store  *memStore
	m      *session.Manager
	client *matrix.Client
	s      *session.Session
	acct   session.AccountKey
}

type envOptions struct {
	server  homeserver.Options
	manager session.ManagerOptions
	client  []matrix.Option
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	srv := homeserver.New(o.server)
	t.Cleanup(srv.Close)
	srv.AddUser("alice", "correct horse")
	client, err := matrix.NewClient(srv.URL(), o.client...)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, store: newMemStore(), client: client}
	e.m = session.NewManager(e.store, o.manager)
	ctx := context.Background()
	resp, err := client.Login(ctx, matrix.PasswordLogin("alice", "correct horse"))
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	e.acct = session.AccountKey{UserID: resp.UserID, DeviceID: resp.DeviceID}
	e.s, err = e.m.AddWithTokens(ctx, e.acct, client, resp.Tokens())
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	return e
}

func whoami(c *matrix.Client) func(ctx context.Context, tok matrix.Secret) error {
	return func(ctx context.Context, tok matrix.Secret) error {
		_, err := c.WhoAmI(ctx, tok)
		return err
	}
}

// checkWorking asserts the session works and the server never saw an expired
// access token or a superseded refresh token.
func (e *env) checkWorking(s *session.Session) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Do(ctx, whoami(s.Client())); err != nil {
		e.t.Fatalf("whoami through the session: %v (state %v, problem %q)", err, s.Status().State, s.Status().Problem)
	}
	e.checkServer()
}

func (e *env) checkServer() {
	e.t.Helper()
	if n := e.srv.ExpiredTokenUses(); n != 0 {
		e.t.Errorf("server saw an expired access token %d times", n)
	}
	for _, r := range e.srv.Requests() {
		if r.Path == "/_matrix/client/v3/refresh" && r.Status == http.StatusForbidden {
			e.t.Errorf("server refused a superseded refresh token at %v", r.Time)
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countGoroutines is runtime.NumGoroutine once it has stopped changing.
func countGoroutines() int {
	runtime.GC() // the collector's own workers start with the first cycle
	n := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}
