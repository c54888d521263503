package app

import (
	"errors"
	"testing"
	"time"

	"mxauth/matrix"
)

func challenge(session, errcode string, completed ...string) error {
	return &matrix.UIAChallenge{
		Flows:     []matrix.UIAFlow{{Stages: []string{matrix.StagePassword}}},
		Session:   session,
		ErrCode:   errcode,
		Completed: completed,
	}
}

func limited(wait time.Duration) error {
	return &matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", RetryAfter: wait}
}

// TestUIAFlowThreeTries: the third wrong password ends the flow; every
// password goes into the session the server opened.
func TestUIAFlowThreeTries(t *testing.T) {
	f := NewUIAFlow("@alice:example.org")
	step := f.Next(challenge("S1", ""))
	if step.Kind != UIAPassword || step.WrongPassword {
		t.Fatalf("first challenge: %+v", step)
	}
	for try := 1; try <= 3; try++ {
		auth := f.Password("wrong")
		if auth.Session != "S1" || auth.Identifier == nil || auth.Identifier.User != "@alice:example.org" {
			t.Fatalf("try %d: auth %+v", try, auth)
		}
		step = f.Next(challenge("S1", "M_FORBIDDEN"))
		if try < 3 && (step.Kind != UIAPassword || !step.WrongPassword) {
			t.Fatalf("wrong password %d: %+v, want another try", try, step)
		}
	}
	if step.Kind != UIADone || !errors.Is(step.Err, ErrWrongPassword) {
		t.Fatalf("third wrong password: %+v, want ErrWrongPassword", step)
	}
}

func TestUIAFlowRightPassword(t *testing.T) {
	f := NewUIAFlow("@alice:example.org")
	f.Next(challenge("S1", ""))
	f.Password("right")
	if step := f.Next(nil); step.Kind != UIADone || step.Err != nil {
		t.Fatalf("accepted: %+v", step)
	}
}

// TestUIAFlowRateLimit: a rate limit within the policy is waited out and the
// request resent on the session alone; a longer one ends the flow.
func TestUIAFlowRateLimit(t *testing.T) {
	f := NewUIAFlow("@alice:example.org")
	f.Next(challenge("S1", ""))
	f.Password("right")
	step := f.Next(limited(30 * time.Second))
	if step.Kind != UIAWait || step.Wait != 30*time.Second {
		t.Fatalf("rate limited for 30s: %+v, want a wait", step)
	}
	if auth := f.Resend(); auth == nil || auth.Session != "S1" || !auth.Password.IsZero() {
		t.Fatalf("resend after the wait: %+v, want the session only", auth)
	}
	if step := f.Next(limited(DefaultUIAPolicy.MaxRateLimitWait + time.Second)); step.Kind != UIADone || !matrix.IsLimitExceeded(step.Err) {
		t.Fatalf("rate limited beyond the policy: %+v, want the rate-limit error", step)
	}
	if step := f.Next(&matrix.Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED"}); step.Kind != UIADone {
		t.Fatalf("rate limited without a stated wait: %+v, want the flow to end", step)
	}
}

func TestUIAFlowSameQuestionAgain(t *testing.T) {
	f := NewUIAFlow("@alice:example.org")
	f.Next(challenge("S1", ""))
	f.Password("pw")
	if step := f.Next(challenge("S1", "")); step.Kind != UIADone || !errors.Is(step.Err, ErrUIANoAnswer) {
		t.Fatalf("same question after a password: %+v", step)
	}
}

func TestUIAFlowBrowserStage(t *testing.T) {
	f := NewUIAFlow("@alice:example.org")
	ch := &matrix.UIAChallenge{Flows: []matrix.UIAFlow{{Stages: []string{"m.login.sso"}}}, Session: "SSO1"}
	step := f.Next(ch)
	if step.Kind != UIABrowser || step.Stage != "m.login.sso" {
		t.Fatalf("SSO-only challenge: %+v", step)
	}
	if auth := f.Resend(); auth == nil || auth.Session != "SSO1" {
		t.Fatalf("resend after the browser: %+v", auth)
	}
	empty := &matrix.UIAChallenge{Session: "S2"}
	if step := f.Next(empty); step.Kind != UIADone || !errors.Is(step.Err, ErrUIANoWay) {
		t.Fatalf("no flows: %+v", step)
	}
}
