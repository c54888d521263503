package session

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"mxauth/matrix"
)

// ManagerOptions tunes a Manager. The zero value is ready to use.
type ManagerOptions struct {
	Now         func() time.Time // default time.Now
	EventBuffer int              // events channel buffer (default 64); events are dropped, not blocked on, when full
	// Workers bounds concurrent background refreshes (default 32).
	Workers int
	// Tick is the coarse wake-up that catches wall-clock jumps and suspend (default 1 s).
	Tick time.Duration
	// AdoptRecent: a forced refresh (RefreshNow) finding, under the account's
	// lock, a pair that a refresh stored less than this long ago takes that pair
	// instead of redeeming again (default 5 s, the use margin; negative: never).
	// Redeeming again so soon would end the access token other processes were
	// handed just before that refresh (Synapse ends a token at the second
	// redemption after it was issued).
	AdoptRecent time.Duration
}

// Manager owns all sessions and the one scheduler that refreshes them.
type Manager struct {
	store   TokenStore
	nowFunc func() time.Time
	events  chan Event
	workers int
	tick    time.Duration
	recent  time.Duration // AdoptRecent; <= 0: never adopt on a forced refresh

	mu       sync.Mutex
	sessions map[AccountKey]*Session

	schedMu sync.Mutex
	heap    dueHeap
	wake    chan struct{}

	running    sync.Mutex // held by Run: one scheduler at a time
	statsMu    sync.Mutex
	refreshes  int
	dropped    int
	maxLate    time.Duration // scheduled refreshes: completion after the planned time
	maxDelay   time.Duration // scheduler: hand-over to a worker after the due time
	dispatched int
	expired    int
}

// NewManager creates a manager over store. Call Run to start background refreshes;
// without it sessions still refresh on demand (AccessToken, Do, RefreshNow).
func NewManager(store TokenStore, opt ManagerOptions) *Manager {
	m := &Manager{
		store:    store,
		nowFunc:  opt.Now,
		workers:  opt.Workers,
		tick:     opt.Tick,
		sessions: make(map[AccountKey]*Session),
		wake:     make(chan struct{}, 1),
	}
	if m.nowFunc == nil {
		m.nowFunc = time.Now
	}
	if m.workers <= 0 {
		m.workers = 32
	}
	if m.tick <= 0 {
		m.tick = time.Second
	}
	switch m.recent = opt.AdoptRecent; {
	case m.recent == 0:
		m.recent = maxUseMargin
	case m.recent < 0:
		m.recent = 0
	}
	buf := opt.EventBuffer
	if buf <= 0 {
		buf = 64
	}
	m.events = make(chan Event, buf)
	return m
}

// now is the manager's wall clock, without a monotonic reading (see wallClock).
func (m *Manager) now() time.Time { return m.nowFunc().Round(0) }

// Add registers acct with the tokens stored for it. If the keyring is unusable the
// session is still registered, in StateStoreProblem, retried gently, and the error
// is returned alongside it. A missing item returns an error matching ErrNoStoredTokens.
func (m *Manager) Add(ctx context.Context, acct AccountKey, client *matrix.Client, opts ...AddOption) (*Session, error) {
	if s, ok := m.Session(acct); ok {
		return s, nil
	}
	t, err := m.store.LoadTokens(ctx, acct)
	if err != nil && errors.Is(err, ErrNoStoredTokens) {
		return nil, err
	}
	s := m.newSession(acct, client, opts)
	if err != nil {
		s.storeFailed(err)
		return m.register(s), err
	}
	s.tokens, s.loaded = wallClock(t), true
	s.stateFromTokensLocked(m.now())
	return m.register(s), nil
}

// AddWithTokens saves t for acct, then registers the session (right after a login).
// An existing session for acct is replaced.
func (m *Manager) AddWithTokens(ctx context.Context, acct AccountKey, client *matrix.Client, t matrix.TokenSet, opts ...AddOption) (*Session, error) {
	if t.AccessToken.IsZero() {
		return nil, errors.New("no access token to add")
	}
	t = wallClock(t)
	if err := m.store.SaveTokens(ctx, acct, t); err != nil {
		return nil, err
	}
	m.Remove(acct)
	s := m.newSession(acct, client, opts)
	s.tokens, s.loaded = t, true
	s.stateFromTokensLocked(m.now())
	return m.register(s), nil
}

func (m *Manager) newSession(acct AccountKey, client *matrix.Client, opts []AddOption) *Session {
	s := &Session{m: m, acct: acct, client: client, heapIdx: -1}
	for _, o := range opts {
		o(s)
	}
	return s
}

// AddOption says how a session added with Add or AddWithTokens renews itself.
type AddOption func(*Session)

// WithOAuth makes the session one signed in through the OAuth 2.0 API: it
// refreshes at oc's token endpoint as oc's client instead of at /refresh, and
// a refusal there (any 4xx but 429) ends it.
func WithOAuth(oc matrix.OAuthClient) AddOption {
	return func(s *Session) { s.oauth = &oc }
}

func (m *Manager) register(s *Session) *Session {
	m.mu.Lock()
	if old, ok := m.sessions[s.acct]; ok {
		m.mu.Unlock()
		return old
	}
	m.sessions[s.acct] = s
	m.mu.Unlock()
	s.mu.Lock()
	m.scheduleLocked(s)
	s.mu.Unlock()
	return s
}

// Remove forgets acct's session (its stored secrets are untouched).
func (m *Manager) Remove(acct AccountKey) {
	m.mu.Lock()
	s, ok := m.sessions[acct]
	delete(m.sessions, acct)
	m.mu.Unlock()
	if !ok {
		return
	}
	s.mu.Lock()
	s.removed = true
	m.scheduleLocked(s)
	s.mu.Unlock()
}

// Session returns acct's session if registered.
func (m *Manager) Session(acct AccountKey) (*Session, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[acct]
	return s, ok
}

// Sessions returns all registered sessions, ordered by user ID then device ID.
func (m *Manager) Sessions() []*Session {
	m.mu.Lock()
	out := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].acct.UserID != out[j].acct.UserID {
			return out[i].acct.UserID < out[j].acct.UserID
		}
		return out[i].acct.DeviceID < out[j].acct.DeviceID
	})
	return out
}

// Statuses returns a snapshot of every session, ordered like Sessions.
func (m *Manager) Statuses() []Status {
	ss := m.Sessions()
	out := make([]Status, len(ss))
	for i, s := range ss {
		out[i] = s.Status()
	}
	return out
}

// Events delivers session changes. The channel is buffered; when nobody reads it,
// events are dropped rather than stalling refreshes.
func (m *Manager) Events() <-chan Event { return m.events }

// emitLocked sends an event without blocking; s.mu is held.
func (m *Manager) emitLocked(kind EventKind, s *Session) {
	ev := Event{Kind: kind, Status: s.statusLocked(), At: m.now()}
	select {
	case m.events <- ev:
	default:
		m.statsMu.Lock()
		m.dropped++
		m.statsMu.Unlock()
	}
}

// noteRefreshed records how late a refresh of old came, for Stats.
func (m *Manager) noteRefreshed(old matrix.TokenSet, now time.Time, scheduled bool) {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	if old.Expires() && !now.Before(old.ExpiresAt) {
		m.expired++
	}
	if scheduled {
		if d := now.Sub(plannedRefresh(old)); d > m.maxLate {
			m.maxLate = d
		}
	}
}

func (m *Manager) countRefresh() {
	m.statsMu.Lock()
	m.refreshes++
	m.statsMu.Unlock()
}

// ManagerStats are counters for monitoring and benchmarks.
type ManagerStats struct {
	Refreshes     int           // successful refreshes done by this manager
	DroppedEvents int           // events dropped because the channel was full
	Dispatched    int           // scheduled jobs handed to workers
	MaxDispatch   time.Duration // worst delay from a due time to a worker taking the job
	MaxLateness   time.Duration // worst delay from a planned refresh time to the new tokens being saved
	// ExpiredFirst counts refreshes that came after the old access token had
	// expired (a gap in which the session had no valid token).
	ExpiredFirst int
}

// Stats returns the manager's counters.
func (m *Manager) Stats() ManagerStats {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	return ManagerStats{Refreshes: m.refreshes, DroppedEvents: m.dropped, Dispatched: m.dispatched, MaxDispatch: m.maxDelay, MaxLateness: m.maxLate, ExpiredFirst: m.expired}
}
