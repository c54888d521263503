package app

import (
	"errors"
	"time"

	"mxauth/matrix"
)

// UIAPolicy bounds one confirmation (user-interactive authentication) of a
// request: how many passwords it sends and how long a rate limit it sits out.
type UIAPolicy struct {
	// MaxTries is how many passwords one flow sends; after that many wrong
	// ones it ends with ErrWrongPassword. 0 means no limit.
	MaxTries int
	// MaxRateLimitWait is the longest rate-limit wait the flow sits out
	// before resending; a longer or unstated wait ends it with the server's
	// rate-limit error.
	MaxRateLimitWait time.Duration
}

// DefaultUIAPolicy is the policy of both front ends: three passwords, and a
// rate limit of up to two minutes waited out (the server has usually already
// taken the password by then, so it is not asked for again).
var DefaultUIAPolicy = UIAPolicy{MaxTries: 3, MaxRateLimitWait: 2 * time.Minute}

// ErrWrongPassword ends a flow whose passwords were all rejected.
var ErrWrongPassword = errors.New("wrong password")

// ErrUIANoAnswer ends a flow when the server answered a password with the same
// question, neither accepting nor rejecting it: asking again would not help.
var ErrUIANoAnswer = errors.New("the server asked again without accepting or rejecting the password; try again later")

// ErrUIANoWay ends a flow whose challenge offers no stage to complete.
var ErrUIANoWay = errors.New("the server asked for confirmation but offered no way to give it")

// UIAStepKind is what a front end does next in a flow.
type UIAStepKind int

const (
	// UIADone: the request has its answer; Err is nil or why it failed.
	UIADone UIAStepKind = iota
	// UIAPassword: ask for the password, then send Password(p).
	UIAPassword
	// UIABrowser: the user completes Stage in a browser (the fallback page),
	// then the request is sent again with Resend().
	UIABrowser
	// UIAWait: rate limited; after Wait, send the request again with Resend().
	UIAWait
)

// UIAStep is the flow's reading of the server's last answer.
type UIAStep struct {
	Kind      UIAStepKind
	Err       error                // UIADone: the outcome; UIAWait: the rate-limit error
	Challenge *matrix.UIAChallenge // UIAPassword, UIABrowser
	// WrongPassword: the password just sent was rejected (UIAPassword).
	WrongPassword bool
	Stage         string        // UIABrowser: the stage to complete
	Wait          time.Duration // UIAWait
}

type uiaSent int

const (
	sentFirst    uiaSent = iota // the request without auth
	sentPassword                // a password stage
	sentSession                 // the session only (after a browser stage or a wait)
)

// UIAFlow is one request's user-interactive authentication, the same for the
// command line and the full-screen app: the request is sent without auth,
// every answer goes through Next, and Next says whether to ask for the
// password, send the user to a browser, wait out a rate limit, or stop. The
// request itself stays the same; only its auth changes, and every auth after
// the first names the same UIA session.
type UIAFlow struct {
	Policy  UIAPolicy
	UserID  string
	session string
	tries   int
	sent    uiaSent
}

// NewUIAFlow starts a flow for userID under DefaultUIAPolicy.
func NewUIAFlow(userID string) *UIAFlow {
	return &UIAFlow{Policy: DefaultUIAPolicy, UserID: userID}
}

// Session is the UIA session the flow is in ("" before the first challenge).
func (f *UIAFlow) Session() string { return f.session }

// Next reads the server's answer to the request last sent (err is nil when it
// went through) and says what to do next.
func (f *UIAFlow) Next(err error) UIAStep {
	if err == nil {
		return UIAStep{Kind: UIADone}
	}
	if matrix.IsLimitExceeded(err) {
		wait, ok := matrix.RetryAfter(err)
		if !ok || wait <= 0 || wait > f.Policy.MaxRateLimitWait {
			return UIAStep{Kind: UIADone, Err: err}
		}
		return UIAStep{Kind: UIAWait, Err: err, Wait: wait}
	}
	ch, ok := matrix.AsUIA(err)
	if !ok {
		return UIAStep{Kind: UIADone, Err: err}
	}
	if ch.Session != "" {
		f.session = ch.Session
	}
	wrong := false
	if f.sent == sentPassword {
		switch {
		case ch.StageFailed():
			wrong = true
			if f.Policy.MaxTries > 0 && f.tries >= f.Policy.MaxTries {
				return UIAStep{Kind: UIADone, Err: ErrWrongPassword}
			}
		case ch.CanUsePassword():
			return UIAStep{Kind: UIADone, Err: ErrUIANoAnswer}
		}
	}
	if ch.CanUsePassword() {
		return UIAStep{Kind: UIAPassword, Challenge: ch, WrongPassword: wrong}
	}
	stages := ch.NextStages()
	if len(stages) == 0 {
		return UIAStep{Kind: UIADone, Err: ErrUIANoWay}
	}
	return UIAStep{Kind: UIABrowser, Challenge: ch, Stage: stages[0]}
}

// Password is the auth that answers the password stage with p; it counts as
// one try.
func (f *UIAFlow) Password(p matrix.Secret) *matrix.AuthData {
	f.tries++
	f.sent = sentPassword
	return matrix.PasswordAuth(f.session, f.UserID, p)
}

// Resend is the auth for sending the request again after a browser stage or a
// wait: the session alone, or none before the server opened one.
func (f *UIAFlow) Resend() *matrix.AuthData {
	if f.session == "" {
		f.sent = sentFirst
		return nil
	}
	f.sent = sentSession
	return matrix.SessionAuth(f.session)
}
