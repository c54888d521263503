package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"mxauth/matrix"
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

// Session keeps one account's tokens valid. It is safe for concurrent use.
type Session struct {
	m      *Manager
	acct   AccountKey
	client *matrix.Client
	oauth  *matrix.OAuthClient // nil: a session of the legacy API, refreshed at /refresh

	mu          sync.Mutex
	tokens      matrix.TokenSet
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
func (s *Session) Client() *matrix.Client { return s.client }

// OAuth returns the OAuth 2.0 client the session refreshes as (ok false for
// a session of the legacy API).
func (s *Session) OAuth() (oc matrix.OAuthClient, ok bool) {
	if s.oauth == nil {
		return matrix.OAuthClient{}, false
	}
	return *s.oauth, true
}

// Account returns the account the session belongs to.
func (s *Session) Account() AccountKey { return s.acct }

// Tokens returns the current, persisted token set.
func (s *Session) Tokens() matrix.TokenSet {
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
	switch RenewalOf(t) {
	case RenewalNotNeeded:
		s.state = StateNonExpiring
	case RenewalBySignIn:
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
// server is who was asked: the homeserver, or for an OAuth session its
// authorization server.
func refreshFailure(err error, server string) string {
	var me *matrix.Error
	switch {
	case matrix.IsLimitExceeded(err):
		return "rate limited by the homeserver"
	case errors.As(err, &me) && me.Status >= 500:
		return "the homeserver had an error"
	case isOAuthStatus(err, func(st int) bool { return st == 429 }):
		return "rate limited by the authorization server"
	case isOAuthStatus(err, func(st int) bool { return st >= 500 }):
		return "the authorization server had an error"
	case errors.Is(err, matrix.ErrMalformedResponse), errors.Is(err, matrix.ErrResponseTooLarge):
		return "the " + server + " sent an unusable reply"
	case matrix.IsTransient(err):
		return server + " unreachable"
	}
	return "refresh failed"
}

// isOAuthStatus reports an authorization server's reply whose status matches.
func isOAuthStatus(err error, match func(status int) bool) bool {
	e, ok := matrix.AsOAuthError(err)
	return ok && match(e.Status)
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
func (s *Session) AccessToken(ctx context.Context) (matrix.Secret, error) {
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
func (s *Session) HandOutToken(ctx context.Context) (matrix.Secret, error) {
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
	return matrix.WithHeldSecrets(ctx, t.AccessToken, t.RefreshToken)
}

// Do runs call with a valid access token. If the server rejects the token with 401
// M_UNKNOWN_TOKEN (not a UIA challenge), it refreshes once and replays the call once.
func (s *Session) Do(ctx context.Context, call func(ctx context.Context, token matrix.Secret) error) error {
	tok, err := s.AccessToken(ctx)
	if err != nil {
		return err
	}
	err = call(s.holding(ctx), tok)
	if err == nil {
		s.noteSuccess()
		return nil
	}
	if matrix.IsUserLocked(err) {
		s.noteLocked(err)
		return err
	}
	if !matrix.IsUnknownToken(err) {
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
	} else if matrix.IsUserLocked(err) {
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

// serverMessage is the sanitised server text of a Matrix or OAuth error, if any.
func serverMessage(err error) string {
	var me *matrix.Error
	if errors.As(err, &me) && me.Message != "" {
		return truncate(matrix.Sanitize(me.Message), 120)
	}
	if oe, ok := matrix.AsOAuthError(err); ok {
		msg := oe.Code
		if oe.Description != "" {
			msg = joinNonEmpty(oe.Code, ": ", oe.Description)
		}
		return truncate(matrix.Sanitize(msg), 120)
	}
	return ""
}

func joinNonEmpty(a, sep, b string) string {
	if a == "" {
		return b
	}
	return a + sep + b
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
	return truncate(matrix.Sanitize(err.Error()), 200)
}
