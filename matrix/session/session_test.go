package session_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

const refreshPath = "/_matrix/client/v3/refresh"

func TestRefreshDue(t *testing.T) {
	issued := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		life, want time.Duration
	}{
		{time.Hour, 48 * time.Minute},      // 80%
		{5 * time.Minute, 4 * time.Minute}, // 80% leaves 60 s
		{150 * time.Second, 120 * time.Second},
		{100 * time.Second, 70 * time.Second}, // 30 s before expiry
		{60 * time.Second, 30 * time.Second},
		{3 * time.Second, 1500 * time.Millisecond}, // short: half
	}
	for _, c := range cases {
		got := session.RefreshDue(matrix.TokenSet{IssuedAt: issued, ExpiresAt: issued.Add(c.life)}).Sub(issued)
		if got != c.want {
			t.Errorf("lifetime %v: refresh after %v, want %v", c.life, got, c.want)
		}
	}
	if !session.RefreshDue(matrix.TokenSet{IssuedAt: issued}).IsZero() {
		t.Error("a token without expiry got a refresh time")
	}
}

// TestRefreshFaults breaks one /refresh in each way a network or server can, and
// checks that the session survives with the server never seeing an expired token.
func TestRefreshFaults(t *testing.T) {
	t.Parallel() // waits on real time; the others need not wait for it
	htmlHeader := http.Header{"Content-Type": {"text/html"}}
	cases := []struct {
		name  string
		fault homeserver.Fault
		// rotated: the server issued new tokens the client never got.
		rotated bool
	}{
		{name: "500", fault: homeserver.Fault{Status: 500, Body: `{"errcode":"M_UNKNOWN","error":"boom"}`}},
		{name: "502 html", fault: homeserver.Fault{Status: 502, Body: "<html><body><h1>502 Bad Gateway</h1></body></html>", Header: htmlHeader}},
		{name: "truncated json", fault: homeserver.Fault{Truncate: true}, rotated: true},
		{name: "response lost", fault: homeserver.Fault{DropAfterHandling: true}, rotated: true},
		{name: "timeout", fault: homeserver.Fault{Delay: 2 * time.Second}, rotated: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOptions{
				server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute},
				client: []matrix.Option{matrix.WithTimeout(500 * time.Millisecond)},
			})
			old := e.s.Tokens()
			c.fault.PathPrefix = refreshPath
			e.srv.InjectFault(c.fault)
			ctx := context.Background()
			err := e.s.RefreshNow(ctx)
			if !errors.Is(err, session.ErrServerUnreachable) {
				t.Fatalf("refresh: %v, want a transient failure", err)
			}
			st := e.s.Status()
			if st.State != session.StateRetrying || st.RetryAt.IsZero() || st.Problem == "" {
				t.Fatalf("status after failure: %+v", st)
			}
			if got := e.s.Tokens(); got.AccessToken != old.AccessToken || got.RefreshToken != old.RefreshToken {
				t.Fatal("tokens changed after a failed refresh")
			}
			if strings.Contains(st.Problem, old.RefreshToken.Reveal()) || strings.Contains(err.Error(), old.AccessToken.Reveal()) {
				t.Fatal("a token leaked into the problem text")
			}
			if c.rotated && e.srv.RefreshCount() != 1 {
				t.Fatalf("server refreshed %d times, want 1 (rotation the client never saw)", e.srv.RefreshCount())
			}
			// The next request works: directly, or after refreshing with the old
			// refresh token when the server already retired the old access token.
			e.checkWorking(e.s)
			if err := e.s.RefreshNow(ctx); err != nil {
				t.Fatalf("refresh after the fault: %v", err)
			}
			if st := e.s.Status(); st.State != session.StateActive {
				t.Fatalf("state after recovery: %v", st.State)
			}
			e.checkWorking(e.s)
		})
	}
}

func TestRefreshRateLimited(t *testing.T) {
	// The server's 2 s are waited out on the engine's clock, not in real time.
	clk := &fakeClock{}
	e := newEnv(t, envOptions{
		server:  homeserver.Options{AccessTokenLifetime: 10 * time.Minute, Now: clk.Now},
		manager: session.ManagerOptions{Now: clk.Now},
		client:  []matrix.Option{matrix.WithClock(clk.Now)},
	})
	e.srv.InjectFault(homeserver.Fault{
		PathPrefix: refreshPath, Status: 429,
		Header: http.Header{"Retry-After": {"2"}},
		Body:   `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":2000}`,
	})
	before := clk.Now()
	err := e.s.RefreshNow(context.Background())
	if !errors.Is(err, session.ErrServerUnreachable) {
		t.Fatalf("refresh: %v", err)
	}
	st := e.s.Status()
	if st.State != session.StateRetrying {
		t.Fatalf("state %v", st.State)
	}
	if wait := st.RetryAt.Sub(before); wait < 1900*time.Millisecond {
		t.Fatalf("retry planned after %v, want at least the server's 2 s", wait)
	}
	// The token is still good, so requests go on; a refresh before the server's
	// time is not even sent.
	e.checkWorking(e.s)
	if err := e.s.RefreshNow(context.Background()); !errors.Is(err, session.ErrServerUnreachable) {
		t.Fatalf("refresh during the wait: %v", err)
	}
	sent := 0
	for _, r := range e.srv.Requests() {
		if r.Path == refreshPath {
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("%d refresh requests, want 1 (no retry before Retry-After)", sent)
	}
	clk.Advance(st.RetryAt.Sub(clk.Now()))
	if err := e.s.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkWorking(e.s)
}

func TestConnectionRefused(t *testing.T) {
	// A port with nothing listening, for the first attempts.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	var refuse atomic.Bool
	d := &net.Dialer{Timeout: time.Second}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if refuse.Load() {
				addr = dead
			}
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	e := newEnv(t, envOptions{
		server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute},
		client: []matrix.Option{matrix.WithHTTPClient(hc)},
	})
	refuse.Store(true)
	err = e.s.RefreshNow(context.Background())
	if !errors.Is(err, session.ErrServerUnreachable) {
		t.Fatalf("refresh: %v", err)
	}
	var te *matrix.TransportError
	if !errors.As(err, &te) {
		t.Fatalf("want a transport error inside, got %v", err)
	}
	if e.s.Status().State != session.StateRetrying {
		t.Fatalf("state %v", e.s.Status().State)
	}
	refuse.Store(false)
	if err := e.s.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkWorking(e.s)
}

// TestKeyringWriteFailsAfterRotation: the server rotated, the save failed. The new
// tokens must never be used; the old refresh token (still valid on the server)
// carries on.
func TestKeyringWriteFailsAfterRotation(t *testing.T) {
	e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
	old := e.s.Tokens()
	e.store.failSaves = 1
	err := e.s.RefreshNow(context.Background())
	if !errors.Is(err, session.ErrStoreUnavailable) {
		t.Fatalf("refresh: %v, want a keyring problem", err)
	}
	if e.srv.RefreshCount() != 1 {
		t.Fatal("the server did not rotate")
	}
	if st := e.s.Status(); st.State != session.StateStoreProblem || st.RetryAt.IsZero() {
		t.Fatalf("status: %+v", st)
	}
	if got := e.s.Tokens(); got.AccessToken != old.AccessToken {
		t.Fatal("an unsaved access token is in use")
	}
	if got, _ := e.store.stored(e.acct); got.AccessToken != old.AccessToken || got.RefreshToken != old.RefreshToken {
		t.Fatal("store content changed")
	}
	// Requests go on (with the old access token, or after a refresh if the
	// server retired it), and the next refresh uses the old refresh token.
	e.checkWorking(e.s)
	if err := e.s.RefreshNow(context.Background()); err != nil {
		t.Fatalf("refresh with the old refresh token: %v", err)
	}
	e.checkWorking(e.s)
	got, _ := e.store.stored(e.acct)
	if got.AccessToken == old.AccessToken || got.AccessToken != e.s.Tokens().AccessToken {
		t.Fatal("the store does not hold the tokens in use")
	}
	if st := e.s.Status(); st.State != session.StateActive {
		t.Fatalf("state %v", st.State)
	}
}

// TestCrashBetweenReceiveAndSave: a process got new tokens and died before saving.
// A new process starting from the store refreshes with the old refresh token.
func TestCrashBetweenReceiveAndSave(t *testing.T) {
	e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
	old := e.s.Tokens()
	if _, err := e.client.Refresh(context.Background(), old.RefreshToken); err != nil {
		t.Fatal(err)
	}
	// The "crashed" process is gone; a fresh one loads from the same store.
	m2 := session.NewManager(e.store, session.ManagerOptions{})
	s2, err := m2.Add(context.Background(), e.acct, e.client)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.RefreshNow(context.Background()); err != nil {
		t.Fatalf("refresh with the old refresh token: %v", err)
	}
	if e.srv.RefreshCount() != 2 {
		t.Fatalf("refresh count %d, want 2", e.srv.RefreshCount())
	}
	e.checkWorking(s2)
}

func TestSessionEnds(t *testing.T) {
	t.Run("soft logout", func(t *testing.T) {
		e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
		e.srv.SoftLogoutDevice(e.acct.UserID, e.acct.DeviceID)
		err := e.s.RefreshNow(context.Background())
		if !errors.Is(err, session.ErrNeedsSignIn) {
			t.Fatalf("refresh: %v", err)
		}
		st := e.s.Status()
		if st.State != session.StateNeedsSignIn || !strings.Contains(st.Problem, e.acct.DeviceID) {
			t.Fatalf("status %+v", st)
		}
		if _, ok := e.store.stored(e.acct); !ok {
			t.Fatal("soft logout removed the account's secrets")
		}
		if _, err := e.s.AccessToken(context.Background()); !errors.Is(err, session.ErrNeedsSignIn) {
			t.Fatalf("access token after soft logout: %v", err)
		}
		e.checkServer()
	})
	t.Run("hard logout", func(t *testing.T) {
		e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
		e.srv.HardLogoutDevice(e.acct.UserID, e.acct.DeviceID)
		err := e.s.RefreshNow(context.Background())
		if !errors.Is(err, session.ErrSignedOut) {
			t.Fatalf("refresh: %v", err)
		}
		if st := e.s.Status(); st.State != session.StateSignedOut {
			t.Fatalf("state %v", st.State)
		}
		if _, ok := e.store.stored(e.acct); ok {
			t.Fatal("secrets kept after the server deleted the device")
		}
		if !e.s.Tokens().AccessToken.IsZero() {
			t.Fatal("tokens kept in memory")
		}
	})
	t.Run("hard logout seen by a request", func(t *testing.T) {
		e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
		e.srv.HardLogoutDevice(e.acct.UserID, e.acct.DeviceID)
		err := e.s.Do(context.Background(), whoami(e.client))
		if !errors.Is(err, session.ErrSignedOut) {
			t.Fatalf("do: %v", err)
		}
	})
	t.Run("locked", func(t *testing.T) {
		e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
		e.srv.SetUserLocked(e.acct.UserID, true)
		err := e.s.RefreshNow(context.Background())
		if !errors.Is(err, session.ErrLocked) {
			t.Fatalf("refresh: %v", err)
		}
		st := e.s.Status()
		if st.State != session.StateLocked || time.Until(st.NextRefresh) < 10*time.Minute {
			t.Fatalf("status %+v (want a rare poll)", st)
		}
		if _, ok := e.store.stored(e.acct); !ok {
			t.Fatal("locking removed the secrets")
		}
		if err := e.s.Do(context.Background(), whoami(e.client)); !matrix.IsUserLocked(err) {
			t.Fatalf("whoami while locked: %v", err)
		}
		e.srv.SetUserLocked(e.acct.UserID, false)
		e.checkWorking(e.s)
		if st := e.s.Status(); st.State != session.StateActive {
			t.Fatalf("state after unlock: %v", st.State)
		}
	})
}

func TestExpiringAndNonExpiring(t *testing.T) {
	m := session.NewManager(newMemStore(), session.ManagerOptions{})
	c, err := matrix.NewClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ctx := context.Background()
	s, err := m.AddWithTokens(ctx, session.AccountKey{UserID: "@a:x", DeviceID: "A"}, c,
		matrix.TokenSet{AccessToken: "at", IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	st := s.Status()
	want := "expires at " + now.Add(10*time.Minute).Local().Format("15:04") + ", sign in again before then"
	if st.State != session.StateExpiring || st.Problem != want || !st.NextRefresh.IsZero() {
		t.Fatalf("status %+v", st)
	}
	if tok, err := s.AccessToken(ctx); err != nil || tok != "at" {
		t.Fatalf("token %v, %v", tok, err)
	}
	s2, _ := m.AddWithTokens(ctx, session.AccountKey{UserID: "@b:x", DeviceID: "B"}, c,
		matrix.TokenSet{AccessToken: "bt", RefreshToken: "br", IssuedAt: now})
	if st := s2.Status(); st.State != session.StateNonExpiring || !st.NextRefresh.IsZero() {
		t.Fatalf("status %+v", st)
	}
	if len(m.Statuses()) != 2 {
		t.Fatal("statuses")
	}
}

func TestAddKeyringLocked(t *testing.T) {
	e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
	e.store.failLoads = 1
	m2 := session.NewManager(e.store, session.ManagerOptions{})
	s2, err := m2.Add(context.Background(), e.acct, e.client)
	if !errors.Is(err, errKeyringLocked{}) || s2 == nil {
		t.Fatalf("add: %v", err)
	}
	if st := s2.Status(); st.State != session.StateStoreProblem || !strings.Contains(st.Problem, "keyring") {
		t.Fatalf("status %+v", st)
	}
	e.checkWorking(s2) // the keyring answers again: the session loads and works
	if _, err := session.NewManager(newMemStore(), session.ManagerOptions{}).Add(context.Background(), e.acct, e.client); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("add without secrets: %v", err)
	}
}

// TestSingleFlight: many callers needing a refresh at once cause one refresh.
func TestSingleFlight(t *testing.T) {
	clk := &fakeClock{}
	e := newEnv(t, envOptions{
		server:  homeserver.Options{AccessTokenLifetime: time.Hour},
		manager: session.ManagerOptions{Now: clk.Now},
	})
	clk.Advance(50 * time.Minute) // past the refresh time, token still valid
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.s.Do(context.Background(), whoami(e.client))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Fatalf("%d refreshes, want 1", n)
	}
	e.checkServer()
}

// TestReactiveRefresh: a request meeting 401 M_UNKNOWN_TOKEN (soft logout of an
// expired token, as after a suspend) refreshes once and replays once.
func TestReactiveRefresh(t *testing.T) {
	e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
	// The server answers as it does for an expired token.
	e.srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/v3/account/whoami", Status: 401,
		Body: `{"errcode":"M_UNKNOWN_TOKEN","error":"expired","soft_logout":true}`})
	calls := 0
	err := e.s.Do(context.Background(), func(ctx context.Context, tok matrix.Secret) error {
		calls++
		_, err := e.client.WhoAmI(ctx, tok)
		return err
	})
	if err != nil || calls != 2 || e.srv.RefreshCount() != 1 {
		t.Fatalf("err %v, calls %d, refreshes %d", err, calls, e.srv.RefreshCount())
	}
	// A UIA 401 is not a token failure: no refresh, no replay.
	calls = 0
	uia := &matrix.UIAChallenge{Flows: []matrix.UIAFlow{{Stages: []string{"m.login.password"}}}, Session: "s"}
	err = e.s.Do(context.Background(), func(context.Context, matrix.Secret) error { calls++; return uia })
	if calls != 1 || e.srv.RefreshCount() != 1 || err == nil {
		t.Fatalf("uia: err %v calls %d", err, calls)
	}
	e.checkServer()
}

// TestProactiveRefresh: with 3-second tokens and nobody asking, the scheduler keeps
// the session valid.
//
// Not parallel: it times refreshes against 3 s tokens, and the two-process
// test beside it would take the cores it needs.
func TestProactiveRefresh(t *testing.T) {
	e := newEnv(t, envOptions{
		server:  homeserver.Options{AccessTokenLifetime: 3 * time.Second},
		manager: session.ManagerOptions{Tick: 200 * time.Millisecond},
	})
	firstExpiry := e.s.Tokens().ExpiresAt
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	var first time.Time
	waitFor(t, 5*time.Second, "a proactive refresh", func() bool {
		select {
		case ev := <-e.m.Events():
			if ev.Kind == session.EventRefreshed && first.IsZero() {
				first = ev.At
			}
		default:
		}
		return !first.IsZero()
	})
	if !first.Before(firstExpiry.Add(-time.Second)) {
		t.Fatalf("refreshed at %v, token expired at %v", first, firstExpiry)
	}
	waitFor(t, 4*time.Second, "a second proactive refresh of 3 s tokens within ~5 s", func() bool { return e.srv.RefreshCount() >= 2 })
	st := e.s.Status()
	if st.State != session.StateActive || !st.ExpiresAt.After(time.Now()) {
		t.Fatalf("status %+v", st)
	}
	// Use the token as it is, without AccessToken's own refresh: it must be live.
	if _, err := e.client.WhoAmI(context.Background(), e.s.Tokens().AccessToken); err != nil {
		t.Fatal(err)
	}
	e.checkWorking(e.s)
}

// TestWallClockJump: a suspend or clock jump past the due time refreshes at the
// next tick, although the monotonic timer would fire much later.
func TestWallClockJump(t *testing.T) {
	clk := &fakeClock{}
	e := newEnv(t, envOptions{
		server:  homeserver.Options{AccessTokenLifetime: time.Hour},
		manager: session.ManagerOptions{Now: clk.Now, Tick: 100 * time.Millisecond},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond)
	if e.srv.RefreshCount() != 0 {
		t.Fatal("refreshed before due")
	}
	clk.Advance(50 * time.Minute)
	waitFor(t, 3*time.Second, "a refresh after the jump", func() bool { return e.srv.RefreshCount() == 1 })
	waitFor(t, time.Second, "the session to settle", func() bool { return e.s.Status().State == session.StateActive })
	e.checkWorking(e.s)
}

// TestGoroutinesFlat: idle sessions cost no goroutines.
func TestGoroutinesFlat(t *testing.T) {
	store := newMemStore()
	m := session.NewManager(store, session.ManagerOptions{Tick: 50 * time.Millisecond})
	c, err := matrix.NewClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	add := func(from, to int) {
		now := time.Now()
		for i := from; i < to; i++ {
			acct := session.AccountKey{UserID: "@u" + string(rune('a'+i%26)) + strings.Repeat("x", i/26) + ":x", DeviceID: "D"}
			if _, err := m.AddWithTokens(ctx, acct, c, matrix.TokenSet{
				AccessToken: "at", RefreshToken: "rt", IssuedAt: now, ExpiresAt: now.Add(time.Hour),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	add(0, 10)
	time.Sleep(200 * time.Millisecond)
	g10 := countGoroutines()
	add(10, 1000)
	time.Sleep(200 * time.Millisecond)
	g1000 := countGoroutines()
	if len(m.Statuses()) != 1000 {
		t.Fatalf("%d sessions", len(m.Statuses()))
	}
	if g1000 > g10+2 {
		t.Fatalf("goroutines grew from %d (10 sessions) to %d (1000 sessions)", g10, g1000)
	}
}

// TestBusyLockWithUsableToken: when the token is due for a refresh but still
// usable and another holder keeps the account's lock, AccessToken hands out the
// current token after a short wait instead of the store's whole lock timeout.
func TestBusyLockWithUsableToken(t *testing.T) {
	t.Parallel() // waits on real time; the others need not wait for it
	clock := &fakeClock{}
	e := newEnv(t, envOptions{
		server:  homeserver.Options{AccessTokenLifetime: 10 * time.Minute},
		manager: session.ManagerOptions{Now: clock.Now},
	})
	before := e.s.Tokens().AccessToken
	unlock, err := e.store.LockAccount(context.Background(), e.acct)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	clock.Advance(9 * time.Minute) // due, one minute left
	start := time.Now()
	tok, err := e.s.AccessToken(context.Background())
	if err != nil || tok != before {
		t.Fatalf("AccessToken with the lock busy: %v (same token: %v)", err, tok == before)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("waited %s for a busy lock with a usable token", took)
	}
	if e.srv.RefreshCount() != 0 {
		t.Fatalf("refreshed without the lock")
	}
}

// TestForcedRefreshAdoptsRecent: a forced refresh right after another process's
// refresh takes that one's pair instead of redeeming again, which would end the
// access token handed out just before (Synapse ends it at the second redemption
// after it was issued). Outside the window, or with it switched off, it redeems.
func TestForcedRefreshAdoptsRecent(t *testing.T) {
	clock := &fakeClock{}
	e := newEnv(t, envOptions{
		server:  homeserver.Options{AccessTokenLifetime: 10 * time.Minute},
		manager: session.ManagerOptions{Now: clock.Now},
	})
	ctx := context.Background()
	other := session.NewManager(e.store, session.ManagerOptions{Now: clock.Now})
	s2, err := other.Add(ctx, e.acct, e.client)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.RefreshNow(ctx); err != nil {
		t.Fatal(err)
	}
	handedOut := e.s.Tokens().AccessToken
	if err := s2.RefreshNow(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.RefreshCount(); n != 1 {
		t.Fatalf("%d refreshes reached the server, want 1", n)
	}
	if s2.Tokens().AccessToken != handedOut {
		t.Fatal("the second process did not take the first one's tokens")
	}
	if err := e.s.RefreshNow(ctx); err != nil || e.srv.RefreshCount() != 1 {
		t.Fatalf("refresh again at once: %v, %d refreshes", err, e.srv.RefreshCount())
	}

	clock.Advance(6 * time.Second)
	if err := s2.RefreshNow(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.RefreshCount(); n != 2 {
		t.Fatalf("%d refreshes reached the server after the window, want 2", n)
	}
	if err := e.s.Do(ctx, whoami(e.client)); err != nil {
		t.Fatalf("the token handed out before: %v", err)
	}

	never := session.NewManager(e.store, session.ManagerOptions{Now: clock.Now, AdoptRecent: -1})
	s3, err := never.Add(ctx, e.acct, e.client)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.RefreshNow(ctx); err != nil || e.srv.RefreshCount() != 3 {
		t.Fatalf("refresh with adoption off: %v, %d refreshes", err, e.srv.RefreshCount())
	}
	e.checkServer()
}

// TestHandOutTokenSeesNewerPair: a token leaving the process is the pair stored
// now, not the one this process loaded before another process refreshed; and a
// session signed out elsewhere hands out nothing.
func TestHandOutTokenSeesNewerPair(t *testing.T) {
	e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
	ctx := context.Background()
	other := session.NewManager(e.store, session.ManagerOptions{})
	s2, err := other.Add(ctx, e.acct, e.client)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.RefreshNow(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := e.s.HandOutToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok != s2.Tokens().AccessToken {
		t.Fatal("handed out the pair another process's refresh superseded")
	}
	if got := e.s.Status().LastRefresh; got.IsZero() {
		t.Fatal("the adopted pair's refresh time is not shown")
	}

	if err := e.store.DeleteTokens(ctx, e.acct); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.HandOutToken(ctx); !errors.Is(err, session.ErrSignedOut) {
		t.Fatalf("hand-out after a sign-out elsewhere: %v", err)
	}
}

// TestMarkSignedOut: a session whose device another run found signed out hands
// out none of the tokens left in the store, and a refresh does not try them.
func TestMarkSignedOut(t *testing.T) {
	e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
	e.s.MarkSignedOut()
	ctx := context.Background()
	if _, err := e.s.HandOutToken(ctx); !errors.Is(err, session.ErrSignedOut) {
		t.Fatalf("hand-out: %v", err)
	}
	if err := e.s.RefreshNow(ctx); !errors.Is(err, session.ErrSignedOut) || e.srv.RefreshCount() != 0 {
		t.Fatalf("refresh: %v, %d refreshes", err, e.srv.RefreshCount())
	}
	if st := e.s.Status(); st.State != session.StateSignedOut || st.Problem == "" {
		t.Fatalf("status %+v", st)
	}
}
