package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mxauth/matrix"
)

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

// refresh runs (or joins) the account's single in-process refresh and waits for it
// or for ctx. The refresh itself is detached from ctx so that a caller giving up
// cannot cut it between the server's reply and the save. For modeRejected, rejected
// is the token the server refused and callErr its error.
func (s *Session) refresh(ctx context.Context, mode refreshMode, rejected matrix.Secret, callErr error) error {
	return s.refreshWithin(ctx, 0, mode, rejected, callErr)
}

// refreshWithin is refresh whose wait for the account lock, when it leads the
// refresh, is bounded by lockWait (0: the store's own bound).
func (s *Session) refreshWithin(ctx context.Context, lockWait time.Duration, mode refreshMode, rejected matrix.Secret, callErr error) error {
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
func (s *Session) runRefresh(mode refreshMode, rejected matrix.Secret, callErr error, lockWait time.Duration) error {
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
	if adopted && s.oauth != nil && cur.RefreshedAt.IsZero() {
		// Another process signed in again and stored this pair, maybe as a
		// new client that this session does not know yet (the account list
		// names it); redeeming it as the old one would be refused, ending the
		// new session. Take it as it is.
		done = true
	}
	if !done && cur.RefreshToken.IsZero() {
		// Rejected and nothing to refresh with: the call's error decides (spec's
		// soft-logout decision tree).
		s.mu.Unlock()
		if mode == modeRejected && matrix.IsSoftLogout(callErr) {
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

	next, err := s.redeem(ctx, cur)
	if err != nil {
		return s.refreshFailed(ctx, err)
	}
	next = wallClock(next)
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

// redeem trades cur's refresh token for a new pair: at the authorization
// server's token endpoint for an OAuth session, at /refresh otherwise.
func (s *Session) redeem(ctx context.Context, cur matrix.TokenSet) (matrix.TokenSet, error) {
	ctx = matrix.WithHeldSecrets(ctx, cur.AccessToken)
	if s.oauth != nil {
		oc := s.oauth.IssuedTo(cur)
		resp, err := s.client.RefreshOAuth(ctx, oc, cur.RefreshToken)
		if err != nil {
			return matrix.TokenSet{}, err
		}
		next := resp.Tokens()
		next.ClientID = oc.ClientID
		return next, nil
	}
	resp, err := s.client.Refresh(ctx, cur.RefreshToken)
	if err != nil {
		return matrix.TokenSet{}, err
	}
	return resp.Apply(cur), nil
}

// refreshServer names who a refresh asks, for messages.
func (s *Session) refreshServer() string {
	if s.oauth != nil {
		return "authorization server"
	}
	return "homeserver"
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

// refreshFailed classifies a failed refresh.
func (s *Session) refreshFailed(ctx context.Context, err error) error {
	switch {
	case s.oauth != nil && !s.oauth.Valid():
		// The index lost the client's record: nothing to refresh with, but
		// the tokens stay for the sign-in that repairs it.
		return s.end(ctx, true, false, "this account's OAuth 2.0 client is not recorded; sign in again", nil)
	case s.oauth != nil && matrix.IsOAuthSessionEnded(err):
		// invalid_grant (or another refusal): the refresh token is dead, and
		// with it the session. A rate limit or a server error is retried below.
		return s.end(ctx, false, true, "the authorization server ended this session; sign in again", err)
	case matrix.IsUserLocked(err):
		now := s.m.now()
		s.mu.Lock()
		s.setLockedLocked(now, err)
		serr := s.errorLocked(err)
		s.mu.Unlock()
		return serr
	case matrix.IsUnknownToken(err), matrix.IsForbidden(err), matrix.IsUserDeactivated(err):
		if matrix.IsSoftLogout(err) {
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
	ra, hasRA := matrix.RetryAfter(err)
	if hasRA && ra > wait {
		wait = ra
	}
	s.serverWait = hasRA
	s.state = StateRetrying
	s.retryAt = now.Add(wait)
	s.problem = fmt.Sprintf("%s (%s)", refreshFailure(err, s.refreshServer()), describe(err))
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
			s.tokens = matrix.TokenSet{}
		}
		if delErr != nil {
			s.problem += "; removing the stored tokens failed (" + describe(delErr) + ")"
		}
		s.m.emitLocked(EventSignedOut, s)
	}
	s.m.scheduleLocked(s)
	return s.errorLocked(cause)
}
