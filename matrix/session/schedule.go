package session

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"mxauth/matrix"
)

// The scheduler: one goroutine for all accounts. Sessions wait in a min-heap keyed by
// their next wall-clock due time. A timer wakes the goroutine for the earliest one;
// because Go timers run on the monotonic clock, which stops while the machine
// sleeps, a coarse tick also wakes it to compare due times with the wall clock, so
// a session that fell due during a suspend (or a clock jump) is refreshed at once.
// Due sessions go to a fixed pool of workers, so the goroutine count does not grow
// with the number of accounts.

// scheduleLocked (re)files s at its next wake time, or drops it if there is none.
// s.mu is held; the lock order is s.mu, then schedMu.
func (m *Manager) scheduleLocked(s *Session) {
	at := s.nextWakeLocked()
	m.schedMu.Lock()
	defer m.schedMu.Unlock()
	if at.IsZero() {
		if s.heapIdx >= 0 {
			heap.Remove(&m.heap, s.heapIdx)
		}
		return
	}
	s.due = at.Round(0)
	if s.heapIdx >= 0 {
		heap.Fix(&m.heap, s.heapIdx)
	} else {
		heap.Push(&m.heap, s)
	}
	if s.heapIdx == 0 {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
}

// Run drives background refreshes until ctx ends. Only one Run is active at a time;
// a second call waits for the first to end.
func (m *Manager) Run(ctx context.Context) {
	m.running.Lock()
	defer m.running.Unlock()

	jobs := make(chan *Session)
	var wg sync.WaitGroup
	for i := 0; i < m.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				s.runScheduled(ctx)
			}
		}()
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tick := time.NewTicker(m.tick)
	defer tick.Stop()

	for {
		now := m.now()
		var next *Session
		m.schedMu.Lock()
		if len(m.heap) > 0 {
			top := m.heap[0]
			if wait := top.due.Sub(now); wait <= 0 {
				// Take it off the heap before handing it over: the worker refiles it
				// from the session's state when done.
				next = top
				heap.Pop(&m.heap)
			} else {
				timer.Reset(wait)
			}
		}
		var due time.Time
		if next != nil {
			due = next.due
		}
		m.schedMu.Unlock()

		if next != nil {
			select {
			case jobs <- next:
				late := m.now().Sub(due)
				m.statsMu.Lock()
				m.dispatched++
				if late > m.maxDelay {
					m.maxDelay = late
				}
				m.statsMu.Unlock()
			case <-ctx.Done():
				return
			}
			continue
		}

		select {
		case <-timer.C:
		case <-tick.C:
		case <-m.wake:
		case <-ctx.Done():
			return
		}
	}
}

// dueHeap orders the waiting sessions by due time for container/heap; each session
// keeps its index so it can be moved or taken out when its schedule changes.
type dueHeap []*Session

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }

func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h *dueHeap) Push(x any) {
	s := x.(*Session)
	s.heapIdx = len(*h)
	*h = append(*h, s)
}

func (h *dueHeap) Pop() any {
	old := *h
	last := len(old) - 1
	s := old[last]
	old[last] = nil
	*h = old[:last]
	s.heapIdx = -1
	return s
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
	case matrix.IsUserLocked(err):
		s.noteLocked(err)
	default:
		s.mu.Lock()
		s.m.scheduleLocked(s)
		s.mu.Unlock()
	}
}
