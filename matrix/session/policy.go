package session

import (
	"hash/fnv"
	"math/rand/v2"
	"time"

	"mxauth/matrix"
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

// RefreshDue is when a token with this set's deadlines should be refreshed: at 80% of
// its lifetime, but never later than 30 s before expiry. Lifetimes under 60 s cannot
// honour both (80% leaves under 12 s), so they refresh at half their lifetime. The
// three rules meet without jumps: 80% up to 150 s lifetimes leave >= 30 s, between
// 60 s and 150 s "30 s before expiry" applies, and at 60 s that equals half.
// It returns the zero time for tokens that never expire. The engine refreshes at
// this time or somewhat before it (see plannedRefresh), never after.
func RefreshDue(t matrix.TokenSet) time.Time {
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
func plannedRefresh(t matrix.TokenSet) time.Time {
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
func useMargin(t matrix.TokenSet) time.Duration {
	m := t.Lifetime() / 5
	if m <= 0 || m > maxUseMargin {
		m = maxUseMargin
	}
	return m
}

// usable reports whether the access token is still valid for the use margin at now.
func usable(t matrix.TokenSet, now time.Time) bool {
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
func wallClock(t matrix.TokenSet) matrix.TokenSet {
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
func (m *Manager) refreshedRecently(t matrix.TokenSet, now time.Time) bool {
	if m.recent <= 0 || t.RefreshedAt.IsZero() {
		return false
	}
	age := now.Sub(t.RefreshedAt)
	return age > -m.recent && age < m.recent && usable(t, now) && now.Before(plannedRefresh(t))
}
