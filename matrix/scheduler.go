package matrix

import (
	"context"
	"sync"
	"time"
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
			m.heapRemove(s.heapIdx)
		}
		return
	}
	s.due = at.Round(0)
	if s.heapIdx >= 0 {
		m.heapFix(s.heapIdx)
	} else {
		m.heapPush(s)
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
				m.heapRemove(0)
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

// The heap: m.heap ordered by due, each session knowing its index.

func (m *Manager) heapLess(i, j int) bool { return m.heap[i].due.Before(m.heap[j].due) }

func (m *Manager) heapSwap(i, j int) {
	m.heap[i], m.heap[j] = m.heap[j], m.heap[i]
	m.heap[i].heapIdx = i
	m.heap[j].heapIdx = j
}

func (m *Manager) heapPush(s *Session) {
	s.heapIdx = len(m.heap)
	m.heap = append(m.heap, s)
	m.heapUp(s.heapIdx)
}

func (m *Manager) heapRemove(i int) {
	last := len(m.heap) - 1
	s := m.heap[i]
	if i != last {
		m.heapSwap(i, last)
	}
	m.heap[last] = nil
	m.heap = m.heap[:last]
	s.heapIdx = -1
	if i != last {
		m.heapFix(i)
	}
}

func (m *Manager) heapFix(i int) {
	if !m.heapDown(i) {
		m.heapUp(i)
	}
}

func (m *Manager) heapUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !m.heapLess(i, p) {
			return
		}
		m.heapSwap(i, p)
		i = p
	}
}

func (m *Manager) heapDown(i int) bool {
	start := i
	n := len(m.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && m.heapLess(r, l) {
			c = r
		}
		if !m.heapLess(c, i) {
			break
		}
		m.heapSwap(i, c)
		i = c
	}
	return i > start
}
