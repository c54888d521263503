package matrix

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Timing rules of the refresh engine.
const (
	// refreshShare is the part of a token's lifetime used before refreshing.
	refreshShare = 0.8
	// latestBeforeExpiry is the least time left on a token when its refresh starts.
	latestBeforeExpiry = 30 * time.Second
	// maxUseMargin is the most an access token must still be valid for when handed
	// out, so a request carrying it does not arrive after it expired.
	maxUseMargin = 5 * time.Second
	// backoffBase and backoffCap bound the retry delays after transient failures.
	backoffBase = time.Second
	backoffCap  = 5 * time.Minute
	// storeBackoffBase is the first delay after a keyring failure: the user may need
	// time to unlock it, so retry gently.
	storeBackoffBase = 5 * time.Second
	// lockedPoll is how often a locked account is checked: only an admin can end it.
	lockedPoll = 15 * time.Minute
	// refreshTimeout bounds one whole refresh (lock, load, request, save). It runs
	// detached from callers so a cancelled caller cannot leave a rotation half done.
	refreshTimeout = 2 * time.Minute
	// busyLockWait bounds the wait for another process's lock on the account when
	// a caller asks for a token while the current one is still usable: that other
	// process is most likely refreshing it and done in a moment; if it is not
	// (stopped, stuck), the still valid token is handed out instead of waiting.
	busyLockWait = 2 * time.Second
)

// Errors a Session returns, matched with errors.Is on the *SessionError it returns.
var (
	ErrNeedsSignIn       = errors.New("sign in again")
	ErrSignedOut         = errors.New("signed out")
	ErrLocked            = errors.New("account locked")
	ErrStoreUnavailable  = errors.New("keyring unavailable or locked")
	ErrServerUnreachable = errors.New("homeserver unreachable")
	ErrSessionRemoved    = errors.New("session removed")
)

// SessionError says why a Session cannot hand out a usable access token.
type SessionError struct {
	Account AccountKey
	State   State
	Reason  string // human text, sanitised, no secrets
	Err     error  // the underlying cause, if any
}

// Error gives the reason, which already names the cause where it helps.
func (e *SessionError) Error() string {
	reason := e.Reason
	if reason == "" && e.Err != nil {
		reason = describe(e.Err)
	}
	return e.Account.UserID + ": " + reason
}

func (e *SessionError) Unwrap() error { return e.Err }

// Is matches the sentinel errors by the session's state.
func (e *SessionError) Is(target error) bool {
	switch target {
	case ErrNeedsSignIn:
		return e.State == StateNeedsSignIn || e.State == StateExpiring
	case ErrSignedOut:
		return e.State == StateSignedOut
	case ErrLocked:
		return e.State == StateLocked
	case ErrStoreUnavailable:
		return e.State == StateStoreProblem
	case ErrServerUnreachable:
		return e.State == StateRetrying
	}
	return false
}

// RefreshDue is when a token with this set's deadlines should be refreshed: at 80% of
// its lifetime, but never later than 30 s before expiry. Lifetimes under 60 s cannot
// honour both (80% leaves under 12 s), so they refresh at half their lifetime. The
// three rules meet without jumps: 80% up to 150 s lifetimes leave >= 30 s, between
// 60 s and 150 s "30 s before expiry" applies, and at 60 s that equals half.
// It returns the zero time for tokens that never expire. The engine refreshes at
// this time or somewhat before it (see plannedRefresh), never after.
func RefreshDue(t TokenSet) time.Time {
	if !t.Expires() {
		return time.Time{}
	}
	exp := t.ExpiresAt.Round(0)
	life := t.Lifetime()
	if t.IssuedAt.IsZero() || life <= 0 {
		return exp.Add(-latestBeforeExpiry)
	}
	issued := t.IssuedAt.Round(0)
	if life < 2*latestBeforeExpiry {
		return issued.Add(life / 2)
	}
	due := issued.Add(time.Duration(float64(life) * refreshShare))
	if latest := exp.Add(-latestBeforeExpiry); due.After(latest) {
		due = latest
	}
	return due
}

// refreshSpread is the part of a token's lifetime over which refreshes are spread
// ahead of RefreshDue.
const refreshSpread = 0.1

// plannedRefresh is when the engine refreshes: up to 10% of the lifetime before
// RefreshDue, at an offset fixed per token (derived from it). Accounts signed in
// at the same moment thus drift apart instead of refreshing in lock-step forever.
func plannedRefresh(t TokenSet) time.Time {
	due := RefreshDue(t)
	life := t.Lifetime()
	if due.IsZero() || life <= 0 {
		return due
	}
	h := fnv.New32a()
	h.Write([]byte(t.AccessToken.Reveal())) // hashed in memory only
	frac := float64(h.Sum32()%1024) / 1024
	return due.Add(-time.Duration(frac * refreshSpread * float64(life)))
}

// useMargin is how long a token must stay valid to be handed out: a fifth of its
// lifetime, at most 5 s (refreshes start well before that point).
func useMargin(t TokenSet) time.Duration {
	m := t.Lifetime() / 5
	if m <= 0 || m > maxUseMargin {
		m = maxUseMargin
	}
	return m
}

// usable reports whether the access token is still valid for the use margin at now.
func usable(t TokenSet, now time.Time) bool {
	if t.AccessToken.IsZero() {
		return false
	}
	if !t.Expires() {
		return true
	}
	return now.Add(useMargin(t)).Before(t.ExpiresAt.Round(0))
}

// wallClock strips the monotonic reading: the monotonic clock stops during suspend,
// and every deadline here must be compared on the wall clock.
func wallClock(t TokenSet) TokenSet {
	t.IssuedAt = t.IssuedAt.Round(0)
	t.ExpiresAt = t.ExpiresAt.Round(0)
	t.RefreshedAt = t.RefreshedAt.Round(0)
	return t
}

// backoff is the delay before retry number n (1-based): base doubling per attempt,
// capped, with ±20% jitter so many sessions failing together do not retry together.
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < backoffCap; i++ {
		d *= 2
	}
	if d > backoffCap {
		d = backoffCap
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// refreshMode says why a refresh was asked for; it decides whether tokens another
// process stored in the meantime are enough.
type refreshMode int

const (
	modeDue      refreshMode = iota // the token reached its refresh time
	modeRejected                    // the server rejected a specific access token
	modeForce                       // the user asked for a refresh
)

// flight is one refresh in progress; callers arriving meanwhile wait for it.
type flight struct {
	done chan struct{}
	err  error
}

// Session keeps one account's tokens valid. It is safe for concurrent use.
type Session struct {
	m      *Manager
	acct   AccountKey
	client *Client

	mu          sync.Mutex
	tokens      TokenSet
	loaded      bool // tokens came from the store (false only after a keyring failure in Add)
	keyring     KeyringIssue
	state       State
	problem     string
	lastRefresh time.Time
	retryAt     time.Time
	pollAt      time.Time // StateLocked: next check
	failures    int       // consecutive failed attempts, for backoff
	serverWait  bool      // retryAt is the server's Retry-After: not even explicit calls go earlier
	flight      *flight
	before      State // state when the current refresh started
	removed     bool

	// Scheduler bookkeeping, guarded by Manager.schedMu.
	heapIdx int
	due     time.Time
}

// Client returns the client the session talks to its homeserver with.
func (s *Session) Client() *Client { return s.client }

// Account returns the account the session belongs to.
func (s *Session) Account() AccountKey { return s.acct }

// Tokens returns the current, persisted token set.
func (s *Session) Tokens() TokenSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens
}

// Status returns a snapshot for display; it holds no secrets.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Session) statusLocked() Status {
	st := Status{
		Account:         s.acct,
		State:           s.state,
		ExpiresAt:       s.tokens.ExpiresAt,
		HasRefreshToken: !s.tokens.RefreshToken.IsZero(),
		LastRefresh:     s.lastRefresh,
		Problem:         s.problem,
		TokensUnknown:   !s.loaded,
	}
	if s.client != nil {
		st.BaseURL = s.client.BaseURL()
	}
	switch s.state {
	case StateActive, StateRefreshing:
		if st.HasRefreshToken {
			st.NextRefresh = plannedRefresh(s.tokens)
		}
	case StateRetrying, StateStoreProblem:
		if s.state == StateStoreProblem {
			st.Keyring = s.keyring
		}
		// The time stays out of Problem: only a running engine retries, so
		// only a display of one (the TUI) may show it, from RetryAt.
		st.RetryAt = s.retryAt
		st.NextRefresh = s.retryAt
	case StateLocked:
		st.NextRefresh = s.pollAt
	}
	return st
}

// stateFromTokensLocked sets the resting state a token set implies, after a success.
func (s *Session) stateFromTokensLocked(now time.Time) {
	t := s.tokens
	s.problem = ""
	s.retryAt = time.Time{}
	s.failures = 0
	s.serverWait = false
	switch {
	case !t.Expires():
		s.state = StateNonExpiring
	case t.RefreshToken.IsZero():
		if !now.Before(t.ExpiresAt) {
			s.state = StateNeedsSignIn
			s.problem = "the access token expired; sign in again"
			return
		}
		s.state = StateExpiring
		s.problem = fmt.Sprintf("expires at %s, sign in again before then", clock(t.ExpiresAt))
	default:
		s.state = StateActive
	}
}

// clock formats a deadline for Problem texts in local time.
func clock(t time.Time) string {
	return t.Local().Format("15:04")
}

// refreshFailure names a transient refresh failure in words a user can act on.
func refreshFailure(err error) string {
	var me *Error
	switch {
	case IsLimitExceeded(err):
		return "rate limited by the homeserver"
	case errors.As(err, &me) && me.Status >= 500:
		return "the homeserver had an error"
	case errors.Is(err, ErrMalformedResponse), errors.Is(err, ErrResponseTooLarge):
		return "the homeserver sent an unusable reply"
	case IsTransient(err):
		return "homeserver unreachable"
	}
	return "refresh failed"
}

// errorLocked turns a session that cannot serve a token into the error callers see.
func (s *Session) errorLocked(cause error) error {
	reason := s.problem
	if reason == "" {
		reason = "no usable access token (" + s.state.String() + ")"
	}
	return &SessionError{Account: s.acct, State: s.state, Reason: reason, Err: cause}
}

// AccessToken returns an access token valid for a useful margin, refreshing first
// when the token is inside its refresh window. When it cannot, the *SessionError
// says why (sign in again, locked, keyring, homeserver unreachable).
func (s *Session) AccessToken(ctx context.Context) (Secret, error) {
	for attempt := 0; ; attempt++ {
		now := s.m.now()
		s.mu.Lock()
		if s.removed {
			s.mu.Unlock()
			return "", &SessionError{Account: s.acct, State: s.state, Reason: "session removed", Err: ErrSessionRemoved}
		}
		t := s.tokens
		switch s.state {
		case StateNeedsSignIn, StateSignedOut:
			err := s.errorLocked(nil)
			s.mu.Unlock()
			return "", err
		case StateLocked:
			// Let the caller try: the server will say whether the lock is over.
			if s.loaded && usable(t, now) {
				s.mu.Unlock()
				return t.AccessToken, nil
			}
			err := s.errorLocked(nil)
			s.mu.Unlock()
			return "", err
		}
		if s.loaded && usable(t, now) {
			switch {
			case !t.Expires(), t.RefreshToken.IsZero(), now.Before(plannedRefresh(t)):
				s.mu.Unlock()
				return t.AccessToken, nil
			case (s.state == StateRetrying || s.state == StateStoreProblem) && now.Before(s.retryAt):
				// A retry is planned; the token still works, so don't hammer.
				s.mu.Unlock()
				return t.AccessToken, nil
			}
		}
		if s.loaded && t.RefreshToken.IsZero() {
			// Expired (or about to) with nothing to refresh it with.
			if t.Expires() && !now.Before(t.ExpiresAt) && s.state != StateNeedsSignIn {
				s.stateFromTokensLocked(now)
				s.m.emitLocked(EventNeedsSignIn, s)
			}
			err := s.errorLocked(nil)
			s.mu.Unlock()
			return "", err
		}
		if s.state == StateRetrying && s.serverWait && now.Before(s.retryAt) {
			// The server asked us to wait; asking again now would only be refused.
			err := s.errorLocked(nil)
			s.mu.Unlock()
			return "", err
		}
		lockWait := time.Duration(0) // the store's own bound
		if s.loaded && usable(t, now) {
			lockWait = busyLockWait
		}
		s.mu.Unlock()

		if attempt > 0 {
			// One refresh per call: hand out what it yielded if usable, else say why.
			s.mu.Lock()
			t = s.tokens
			if s.loaded && usable(t, s.m.now()) {
				s.mu.Unlock()
				return t.AccessToken, nil
			}
			err := s.errorLocked(nil)
			s.mu.Unlock()
			return "", err
		}
		if err := s.refreshWithin(ctx, lockWait, modeDue, "", nil); err != nil {
			// The refresh failed, but the old token may still be good for a while.
			now = s.m.now()
			s.mu.Lock()
			t = s.tokens
			ok := s.loaded && usable(t, now) && s.state != StateNeedsSignIn && s.state != StateSignedOut
			s.mu.Unlock()
			if ok {
				return t.AccessToken, nil
			}
			return "", err
		}
	}
}

// HandOutToken is AccessToken for a token that leaves the process (printed, or
// given to a child process). It reads the stored pair once more first: a pair
// that another process's refresh stored meanwhile is handed out instead of the
// one this process holds, which that refresh superseded. A stored pair that is
// gone means the session was signed out elsewhere.
func (s *Session) HandOutToken(ctx context.Context) (Secret, error) {
	tok, err := s.AccessToken(ctx)
	if err != nil {
		return "", err
	}
	newer, err := s.adoptStored(ctx)
	if err != nil {
		return "", err
	}
	if !newer {
		return tok, nil
	}
	return s.AccessToken(ctx)
}

// adoptStored takes the stored pair when another process stored a newer one.
func (s *Session) adoptStored(ctx context.Context) (bool, error) {
	stored, err := s.m.store.LoadTokens(ctx, s.acct)
	switch {
	case errors.Is(err, ErrNoStoredTokens):
		return false, s.end(ctx, false, false, "this session was signed out elsewhere; sign in again", nil)
	case err != nil:
		// The keyring answered moments ago; what it said then still stands.
		return false, nil
	}
	stored = wallClock(stored)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed || stored.AccessToken == s.tokens.AccessToken || stored.IssuedAt.Before(s.tokens.IssuedAt) {
		return false, nil
	}
	s.tokens = stored
	if !stored.RefreshedAt.IsZero() {
		s.lastRefresh = stored.RefreshedAt
	}
	if s.flight == nil && s.state != StateLocked {
		s.stateFromTokensLocked(s.m.now())
	}
	s.m.scheduleLocked(s)
	return true, nil
}

// MarkSignedOut puts a freshly loaded session into the state recorded when the
// server signed its device out, so that stored tokens left behind (their
// deletion failed), dead on the server, are not handed out. Only a new sign-in,
// which replaces the session, brings the account back. A session already ended
// on its own (an expired token and nothing to refresh it with) keeps its reason.
func (s *Session) MarkSignedOut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == StateNeedsSignIn || s.state == StateSignedOut {
		return
	}
	s.retryAt, s.pollAt, s.failures = time.Time{}, time.Time{}, 0
	s.problem = s.endReason(false)
	s.state = StateSignedOut
	s.m.scheduleLocked(s)
}

// endReason says what the user holds after the server ended the session.
func (s *Session) endReason(soft bool) string {
	if soft {
		return "the server ended this session; sign in again (device " + s.acct.DeviceID + " is kept)"
	}
	return "the server signed this device out; sign in again"
}

// holding marks ctx with the session's tokens, so that a server echoing
// either of them in an error gets it redacted whichever one a call sent.
func (s *Session) holding(ctx context.Context) context.Context {
	t := s.Tokens()
	return WithHeldSecrets(ctx, t.AccessToken, t.RefreshToken)
}

// Do runs call with a valid access token. If the server rejects the token with 401
// M_UNKNOWN_TOKEN (not a UIA challenge), it refreshes once and replays the call once.
func (s *Session) Do(ctx context.Context, call func(ctx context.Context, token Secret) error) error {
	tok, err := s.AccessToken(ctx)
	if err != nil {
		return err
	}
	err = call(s.holding(ctx), tok)
	if err == nil {
		s.noteSuccess()
		return nil
	}
	if IsUserLocked(err) {
		s.noteLocked(err)
		return err
	}
	if !IsUnknownToken(err) {
		return err
	}
	if rerr := s.refresh(ctx, modeRejected, tok, err); rerr != nil {
		return rerr
	}
	tok2, terr := s.AccessToken(ctx)
	if terr != nil {
		return terr
	}
	if tok2 == tok {
		return err
	}
	err = call(s.holding(ctx), tok2)
	if err == nil {
		s.noteSuccess()
	} else if IsUserLocked(err) {
		s.noteLocked(err)
	}
	return err
}

// RefreshNow refreshes at once, whatever the token's deadline (for an explicit user
// request). Tokens another process stored are picked up first.
func (s *Session) RefreshNow(ctx context.Context) error {
	s.mu.Lock()
	state, loaded, hasRT := s.state, s.loaded, !s.tokens.RefreshToken.IsZero()
	if s.removed {
		s.mu.Unlock()
		return &SessionError{Account: s.acct, State: state, Reason: "session removed", Err: ErrSessionRemoved}
	}
	if state == StateRetrying && s.serverWait && s.m.now().Before(s.retryAt) {
		err := s.errorLocked(nil)
		s.mu.Unlock()
		return err
	}
	if state == StateNeedsSignIn || state == StateSignedOut || (loaded && !hasRT) {
		err := s.errorLocked(nil)
		if loaded && !hasRT && state != StateNeedsSignIn && state != StateSignedOut {
			err = &SessionError{Account: s.acct, State: state, Reason: "the server gave no refresh token for this session"}
		}
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	return s.refresh(ctx, modeForce, "", nil)
}

// noteSuccess clears a locked state once a call goes through again.
func (s *Session) noteSuccess() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != StateLocked {
		return
	}
	s.stateFromTokensLocked(s.m.now())
	s.pollAt = time.Time{}
	s.m.emitLocked(EventRecovered, s)
	s.m.scheduleLocked(s)
}

func (s *Session) noteLocked(err error) {
	now := s.m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLockedLocked(now, err)
}

func (s *Session) setLockedLocked(now time.Time, err error) {
	was := s.prevLocked()
	s.state = StateLocked
	s.pollAt = now.Add(lockedPoll)
	s.retryAt = time.Time{}
	// The next check is NextRefresh, not part of the text: a one-shot
	// command that reports this checks nothing later.
	s.problem = "the account is locked on the server"
	if msg := serverMessage(err); msg != "" {
		s.problem = "the account is locked on the server (" + msg + ")"
	}
	if was != StateLocked {
		s.m.emitLocked(EventLocked, s)
	}
	s.m.scheduleLocked(s)
}

// serverMessage is the sanitised server text of a Matrix error, if any.
func serverMessage(err error) string {
	var me *Error
	if errors.As(err, &me) && me.Message != "" {
		return truncate(Sanitize(me.Message), 120)
	}
	return ""
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	cut := string(r[:n])
	// End on a whole word when one ends near the limit, so no word is cut.
	if i := strings.LastIndexAny(cut, " ;,"); i > len(cut)/2 {
		cut = strings.TrimRight(cut[:i], " ;,")
	}
	return cut + "…"
}

// describe is a short, sanitised, secret-free text for an error in a Problem line.
func describe(err error) string {
	if err == nil {
		return ""
	}
	return truncate(Sanitize(err.Error()), 200)
}

// refresh runs (or joins) the account's single in-process refresh and waits for it
// or for ctx. The refresh itself is detached from ctx so that a caller giving up
// cannot cut it between the server's reply and the save. For modeRejected, rejected
// is the token the server refused and callErr its error.
func (s *Session) refresh(ctx context.Context, mode refreshMode, rejected Secret, callErr error) error {
	return s.refreshWithin(ctx, 0, mode, rejected, callErr)
}

// refreshWithin is refresh whose wait for the account lock, when it leads the
// refresh, is bounded by lockWait (0: the store's own bound).
func (s *Session) refreshWithin(ctx context.Context, lockWait time.Duration, mode refreshMode, rejected Secret, callErr error) error {
	for joined := 0; ; joined++ {
		s.mu.Lock()
		if s.removed {
			s.mu.Unlock()
			return &SessionError{Account: s.acct, State: s.state, Reason: "session removed", Err: ErrSessionRemoved}
		}
		f := s.flight
		leader := f == nil
		if leader {
			f = &flight{done: make(chan struct{})}
			s.flight = f
			s.before = s.state
			if s.state != StateLocked {
				s.state = StateRefreshing
			}
			go func() {
				f.err = s.runRefresh(mode, rejected, callErr, lockWait)
				s.mu.Lock()
				s.flight = nil
				s.mu.Unlock()
				close(f.done)
			}()
		}
		s.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if leader || f.err != nil || joined > 0 {
			return f.err
		}
		// We joined someone else's refresh. It suits every mode except a rejected
		// token that is still the current one; then refresh again ourselves.
		if mode != modeRejected {
			return nil
		}
		s.mu.Lock()
		same := s.tokens.AccessToken == rejected
		s.mu.Unlock()
		if !same {
			return nil
		}
	}
}

// prevLocked is the state to compare with when announcing a change: during a
// refresh, the state before it started.
func (s *Session) prevLocked() State {
	if s.flight != nil && s.state == StateRefreshing {
		return s.before
	}
	return s.state
}

// wasProblemLocked reports whether the state before the current refresh was a failure.
func (s *Session) wasProblemLocked() bool {
	return s.before == StateRetrying || s.before == StateStoreProblem
}

// settleLocked puts the session back in the resting state its tokens imply, keeping
// a lock (only a successful call ends that).
func (s *Session) settleLocked(now time.Time) {
	if s.before == StateLocked {
		s.state = StateLocked
		return
	}
	s.stateFromTokensLocked(now)
}

// runRefresh does one refresh under the cross-process lock. It changes the session's
// state, schedules the next step and emits an event; its error is what callers see.
func (s *Session) runRefresh(mode refreshMode, rejected Secret, callErr error, lockWait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	store := s.m.store

	unlock, err := s.lockAccount(ctx, lockWait)
	if err != nil {
		return s.storeFailed(err)
	}
	defer unlock()

	stored, err := store.LoadTokens(ctx, s.acct)
	if errors.Is(err, ErrNoStoredTokens) {
		// Another process signed this account out or removed it.
		return s.end(ctx, false, false, "this session was signed out elsewhere; sign in again", nil)
	}
	if err != nil {
		return s.storeFailed(err)
	}
	stored = wallClock(stored)

	now := s.m.now()
	s.mu.Lock()
	cur := s.tokens
	adopted := false
	if !s.loaded {
		s.tokens, s.loaded, cur, adopted = stored, true, stored, true
	} else if stored.AccessToken != cur.AccessToken && !stored.IssuedAt.Before(cur.IssuedAt) {
		// Another process refreshed (or signed in again) and saved first: use its tokens.
		s.tokens, cur, adopted = stored, stored, true
	}
	done := false
	switch mode {
	case modeDue:
		done = !cur.Expires() || cur.RefreshToken.IsZero() || now.Before(plannedRefresh(cur))
	case modeRejected:
		done = cur.AccessToken != rejected
	case modeForce:
		// Right after a refresh (another process's, or ours), redeeming again
		// would end the token handed out just before it: take that one.
		done = s.m.refreshedRecently(cur, now)
	}
	if !done && cur.RefreshToken.IsZero() {
		// Rejected and nothing to refresh with: the call's error decides (spec's
		// soft-logout decision tree).
		s.mu.Unlock()
		if mode == modeRejected && IsSoftLogout(callErr) {
			return s.end(ctx, true, false, s.endReason(true), callErr)
		}
		if mode == modeRejected {
			return s.end(ctx, false, true, s.endReason(false), callErr)
		}
		s.mu.Lock()
		done = true
	}
	if done {
		s.settleLocked(now)
		if adopted {
			s.lastRefresh = cur.IssuedAt
		}
		switch {
		case s.wasProblemLocked():
			s.m.emitLocked(EventRecovered, s)
		case adopted:
			s.m.emitLocked(EventRefreshed, s)
		}
		s.m.scheduleLocked(s)
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()

	resp, err := s.client.Refresh(WithHeldSecrets(ctx, cur.AccessToken), cur.RefreshToken)
	if err != nil {
		return s.refreshFailed(ctx, err)
	}
	next := wallClock(resp.Apply(cur))
	// Rebase the deadline onto the manager's clock, which every comparison uses.
	now = s.m.now()
	life := next.Lifetime()
	next.IssuedAt, next.RefreshedAt = now, now
	if next.Expires() {
		next.ExpiresAt = now.Add(life)
	}
	// Persist before any use. If this fails the new pair is dropped: the server keeps
	// the old refresh token valid until a new token is used, so the retry uses it.
	if err := store.SaveTokens(ctx, s.acct, next); err != nil {
		return s.storeFailed(err)
	}
	s.m.noteRefreshed(cur, now, mode == modeDue)
	s.mu.Lock()
	s.tokens = next
	s.lastRefresh = now
	s.settleLocked(now)
	if s.wasProblemLocked() {
		s.m.emitLocked(EventRecovered, s)
	} else {
		s.m.emitLocked(EventRefreshed, s)
	}
	s.m.scheduleLocked(s)
	s.mu.Unlock()
	s.m.countRefresh()
	return nil
}

// lockAccount takes the account's cross-process lock, waiting at most lockWait
// when it is not 0.
func (s *Session) lockAccount(ctx context.Context, lockWait time.Duration) (func(), error) {
	if lockWait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lockWait)
		defer cancel()
	}
	return s.m.store.LockAccount(ctx, s.acct)
}

// refreshFailed classifies a failed /refresh.
func (s *Session) refreshFailed(ctx context.Context, err error) error {
	switch {
	case IsUserLocked(err):
		now := s.m.now()
		s.mu.Lock()
		s.setLockedLocked(now, err)
		serr := s.errorLocked(err)
		s.mu.Unlock()
		return serr
	case IsUnknownToken(err), IsForbidden(err), IsUserDeactivated(err):
		if IsSoftLogout(err) {
			return s.end(ctx, true, false, s.endReason(true), err)
		}
		return s.end(ctx, false, true, s.endReason(false), err)
	}
	// Transient or unexpected: keep the session and retry later.
	now := s.m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	wait := backoff(backoffBase, s.failures)
	ra, hasRA := RetryAfter(err)
	if hasRA && ra > wait {
		wait = ra
	}
	s.serverWait = hasRA
	s.state = StateRetrying
	s.retryAt = now.Add(wait)
	s.problem = fmt.Sprintf("%s (%s)", refreshFailure(err), describe(err))
	// Every failed attempt sets a new retry time; announcing only the first
	// would leave a display showing a time that has passed.
	s.m.emitLocked(EventRetrying, s)
	s.m.scheduleLocked(s)
	return s.errorLocked(err)
}

// storeFailed records a keyring failure; nothing new was used, so retrying is safe.
func (s *Session) storeFailed(err error) error {
	now := s.m.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures++
	s.serverWait = false
	wait := backoff(storeBackoffBase, s.failures)
	was := s.prevLocked()
	s.state = StateStoreProblem
	s.keyring = KeyringIssueOf(err)
	s.retryAt = now.Add(wait)
	s.problem = fmt.Sprintf("keyring unavailable or locked (%s)", describe(err))
	var sp StoreProblem
	switch {
	case errors.Is(err, ErrLockBusy):
		s.problem = describe(err)
	case !errors.As(err, &sp) || !sp.StoreUnavailable():
		s.problem = fmt.Sprintf("keyring error (%s)", describe(err))
	}
	if was != StateStoreProblem {
		s.m.emitLocked(EventStoreProblem, s)
	}
	s.m.scheduleLocked(s)
	return s.errorLocked(err)
}

// end finishes a session the server (or another process) ended. Soft: keep the
// secrets and device for a sign-in with the same device ID. Hard: delete the secrets.
func (s *Session) end(ctx context.Context, soft, deleteSecrets bool, reason string, cause error) error {
	var delErr error
	if deleteSecrets {
		delErr = s.m.store.DeleteTokens(ctx, s.acct)
		if errors.Is(delErr, ErrNoStoredTokens) {
			delErr = nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retryAt, s.pollAt, s.failures = time.Time{}, time.Time{}, 0
	s.problem = reason
	if msg := serverMessage(cause); msg != "" {
		s.problem = reason + " (server: " + msg + ")"
	}
	if soft {
		s.state = StateNeedsSignIn
		s.m.emitLocked(EventNeedsSignIn, s)
	} else {
		s.state = StateSignedOut
		if deleteSecrets {
			s.tokens = TokenSet{}
		}
		if delErr != nil {
			s.problem += "; removing the stored tokens failed (" + describe(delErr) + ")"
		}
		s.m.emitLocked(EventSignedOut, s)
	}
	s.m.scheduleLocked(s)
	return s.errorLocked(cause)
}

// runScheduled is what a worker does when the session's scheduled time comes.
func (s *Session) runScheduled(ctx context.Context) {
	now := s.m.now()
	s.mu.Lock()
	if s.removed || s.flight != nil {
		// A running refresh reschedules when it ends.
		s.mu.Unlock()
		return
	}
	t := s.tokens
	switch {
	case !s.loaded:
		s.mu.Unlock()
		_ = s.refresh(ctx, modeDue, "", nil)
		return
	case s.state == StateLocked:
		if now.Before(s.pollAt) {
			s.m.scheduleLocked(s)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.pollLocked(ctx)
		return
	case s.state == StateNeedsSignIn || s.state == StateSignedOut || s.state == StateNonExpiring:
		s.mu.Unlock()
		return
	case t.RefreshToken.IsZero():
		// Expiring without a refresh token: at the deadline it needs a new sign-in.
		if t.Expires() && !now.Before(t.ExpiresAt) {
			s.stateFromTokensLocked(now)
			s.m.emitLocked(EventNeedsSignIn, s)
		} else {
			s.m.scheduleLocked(s)
		}
		s.mu.Unlock()
		return
	case (s.state == StateRetrying || s.state == StateStoreProblem) && now.Before(s.retryAt),
		s.state != StateRetrying && s.state != StateStoreProblem && now.Before(plannedRefresh(t)):
		// Woken early (the schedule moved meanwhile).
		s.m.scheduleLocked(s)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	_ = s.refresh(ctx, modeDue, "", nil)
}

// pollLocked checks, rarely, whether a locked account was unlocked.
func (s *Session) pollLocked(ctx context.Context) {
	now := s.m.now()
	s.mu.Lock()
	t := s.tokens
	s.pollAt = now.Add(lockedPoll)
	s.mu.Unlock()
	if !usable(t, now) {
		if t.RefreshToken.IsZero() {
			s.mu.Lock()
			s.m.scheduleLocked(s)
			s.mu.Unlock()
			return
		}
		if err := s.refresh(ctx, modeForce, "", nil); err != nil {
			return
		}
		t = s.Tokens()
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := s.client.WhoAmI(cctx, t.AccessToken)
	switch {
	case err == nil:
		s.noteSuccess()
	case IsUserLocked(err):
		s.noteLocked(err)
	default:
		s.mu.Lock()
		s.m.scheduleLocked(s)
		s.mu.Unlock()
	}
}

// nextWakeLocked is when the scheduler should next look at the session (zero: never).
func (s *Session) nextWakeLocked() time.Time {
	if s.removed {
		return time.Time{}
	}
	t := s.tokens
	switch s.state {
	case StateNeedsSignIn, StateSignedOut, StateNonExpiring:
		return time.Time{}
	case StateLocked:
		return s.pollAt
	case StateRetrying, StateStoreProblem:
		return s.retryAt
	case StateRefreshing:
		return time.Time{} // rescheduled when the refresh ends
	}
	if !s.loaded {
		return s.retryAt
	}
	if !t.Expires() {
		return time.Time{}
	}
	if t.RefreshToken.IsZero() {
		return t.ExpiresAt
	}
	return plannedRefresh(t)
}

// refreshedRecently reports whether t came from a refresh less than the adopt
// window ago and still has a good while to run, so a forced refresh takes it.
func (m *Manager) refreshedRecently(t TokenSet, now time.Time) bool {
	if m.recent <= 0 || t.RefreshedAt.IsZero() {
		return false
	}
	age := now.Sub(t.RefreshedAt)
	return age > -m.recent && age < m.recent && usable(t, now) && now.Before(plannedRefresh(t))
}
