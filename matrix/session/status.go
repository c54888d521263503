package session

import (
	"errors"
	"time"
)

// State is where a session stands, as the UI and the CLI show it.
type State int

const (
	StateActive       State = iota // token valid; refresh scheduled if it expires
	StateRefreshing                // a refresh is in flight
	StateRetrying                  // the last refresh failed transiently; retrying at RetryAt
	StateNeedsSignIn               // soft logout: sign in again, the device is kept
	StateSignedOut                 // the server ended the session; secrets removed
	StateLocked                    // M_USER_LOCKED: nothing to do until an admin unlocks
	StateStoreProblem              // the keyring is locked or unavailable
	StateExpiring                  // the token expires and there is no refresh token
	StateNonExpiring               // the server issued a token that does not expire
	StateLoading                   // not known yet: the tokens are still being read from the keyring
)

var stateNames = [...]string{
	StateActive:       "active",
	StateRefreshing:   "refreshing",
	StateRetrying:     "retrying",
	StateNeedsSignIn:  "sign in again",
	StateSignedOut:    "signed out",
	StateLocked:       "locked",
	StateStoreProblem: "keyring problem",
	StateExpiring:     "expiring",
	StateNonExpiring:  "non-expiring",
	StateLoading:      "loading",
}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "unknown"
	}
	return stateNames[s]
}

// Status is a snapshot of one session, safe to show: it holds no secrets.
type Status struct {
	Account         AccountKey
	BaseURL         string
	State           State
	ExpiresAt       time.Time // zero when the token never expires
	HasRefreshToken bool
	LastRefresh     time.Time
	NextRefresh     time.Time // zero when no refresh is planned
	RetryAt         time.Time // set in StateRetrying
	Problem         string    // human text for the state, sanitised, no secrets
	// TokensUnknown: the stored tokens could not be read (the keyring is
	// locked or unavailable), so ExpiresAt and HasRefreshToken say nothing.
	TokensUnknown bool
	Keyring       KeyringIssue // in StateStoreProblem: what is wrong with the keyring
}

// KeyringIssue says what is wrong with the keyring, so the advice can fit.
type KeyringIssue int

const (
	KeyringFailed      KeyringIssue = iota // any other keyring error
	KeyringLocked                          // locked and not unlocked
	KeyringUnavailable                     // no keyring to talk to
	KeyringNoAnswer                        // did not answer in time (often an unlock prompt)
	KeyringLockBusy                        // not the keyring: another process kept the account's lock
)

// KeyringIssueOf reads the issue from a store error that names one.
func KeyringIssueOf(err error) KeyringIssue {
	if errors.Is(err, ErrLockBusy) {
		return KeyringLockBusy
	}
	var k interface{ KeyringIssue() KeyringIssue }
	if errors.As(err, &k) {
		return k.KeyringIssue()
	}
	return KeyringFailed
}

// EventKind says what just happened to a session.
type EventKind int

const (
	EventRefreshed EventKind = iota
	EventRetrying
	EventNeedsSignIn
	EventSignedOut
	EventLocked
	EventStoreProblem
	EventRecovered
)

var eventNames = [...]string{
	EventRefreshed:    "refreshed",
	EventRetrying:     "retrying",
	EventNeedsSignIn:  "needs sign-in",
	EventSignedOut:    "signed out",
	EventLocked:       "locked",
	EventStoreProblem: "keyring problem",
	EventRecovered:    "recovered",
}

func (k EventKind) String() string {
	if k < 0 || int(k) >= len(eventNames) {
		return "unknown"
	}
	return eventNames[k]
}

// Event reports a change in one session, for the UI's status line.
type Event struct {
	Kind   EventKind
	Status Status
	At     time.Time
}
