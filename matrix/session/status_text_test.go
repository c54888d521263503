package session_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

// TestRetryTimeOnlyInItsField: a failed refresh's Problem names the failure
// and nothing else; the retry time is RetryAt, which a display shows once.
// Every failed attempt announces its own new retry time, so a status line
// built from the events never shows one that has passed.
func TestRetryTimeOnlyInItsField(t *testing.T) {
	e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
	e.srv.InjectFault(homeserver.Fault{PathPrefix: refreshPath, Status: 500, Body: `{"errcode":"M_UNKNOWN","error":"boom"}`, Count: 2})
	var last time.Time
	for attempt := 1; attempt <= 2; attempt++ {
		err := e.s.RefreshNow(context.Background())
		if err == nil {
			t.Fatalf("attempt %d: refresh succeeded through a 500", attempt)
		}
		ev := nextEvent(t, e.m)
		if ev.Kind != session.EventRetrying {
			t.Fatalf("attempt %d: event %v, want %v", attempt, ev.Kind, session.EventRetrying)
		}
		st := ev.Status
		if st.RetryAt.IsZero() || !st.RetryAt.After(last) {
			t.Fatalf("attempt %d: retry at %v, after the previous %v", attempt, st.RetryAt, last)
		}
		last = st.RetryAt
		for _, text := range []string{st.Problem, e.s.Status().Problem, err.Error()} {
			if strings.Contains(text, "retrying") || !strings.Contains(text, "boom") {
				t.Errorf("attempt %d: want the failure without a retry clause: %q", attempt, text)
			}
		}
	}
}

// TestLockedProblemPromisesNothing: the text of a locked account does not
// carry the next check's time (NextRefresh does).
func TestLockedProblemPromisesNothing(t *testing.T) {
	e := newEnv(t, envOptions{server: homeserver.Options{AccessTokenLifetime: 10 * time.Minute}})
	e.srv.SetUserLocked(e.acct.UserID, true)
	err := e.s.RefreshNow(context.Background())
	st := e.s.Status()
	if st.State != session.StateLocked || st.NextRefresh.IsZero() {
		t.Fatalf("status of a locked account: %+v (%v)", st, err)
	}
	if strings.Contains(st.Problem, "again") || strings.Contains(err.Error(), "again") || !strings.Contains(st.Problem, "locked") {
		t.Fatalf("want a plain \"locked\": problem %q, error %q", st.Problem, err)
	}
}

func nextEvent(t *testing.T, m *session.Manager) session.Event {
	t.Helper()
	select {
	case ev := <-m.Events():
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
		return session.Event{}
	}
}
