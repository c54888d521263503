package keystore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zalando/go-keyring"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

// Kind sorts keyring failures by what the user can do about them.
type Kind int

const (
	// KindOther is a failure that fits no other kind.
	KindOther Kind = iota
	// KindNotFound: the account has no item in the keyring.
	KindNotFound
	// KindUnavailable: no keyring to talk to (no D-Bus session bus, no Secret Service).
	KindUnavailable
	// KindLocked: the keyring is locked and was not unlocked.
	KindLocked
	// KindTimeout: the keyring did not answer within the deadline.
	KindTimeout
	// KindTooLarge: the keyring refused the item's size.
	KindTooLarge
	// KindCorrupt: an item or the index file holds data mxauth cannot read.
	KindCorrupt
)

func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not found"
	case KindUnavailable:
		return "unavailable"
	case KindLocked:
		return "locked"
	case KindTimeout:
		return "timed out"
	case KindTooLarge:
		return "too large"
	case KindCorrupt:
		return "corrupt"
	default:
		return "failed"
	}
}

// ErrItemNotFound is what a Backend returns for a missing item (go-keyring's own
// value, so the OS backends need no translation).
var ErrItemNotFound = keyring.ErrNotFound

// ErrLockTimeout is matched by the error of LockAccount, and of index updates,
// when another holder kept the lock past the wait (see LockBusyError). It is
// session.ErrLockBusy, so the session engine can tell it from a keyring problem.
var ErrLockTimeout = session.ErrLockBusy

// Error is a keystore failure. Its text says what happened and what to do; it
// never holds a secret (causes that might echo stored data are dropped).
type Error struct {
	Kind Kind
	Op   string // "load tokens", "save tokens", "read the account index", ...
	Err  error  // the cause, when there is one worth keeping

	Account  session.AccountKey // zero when the failure is not about one account
	Backend  string             // Backend.Name(), for the message
	Path     string             // the file concerned, for index and lock failures
	Deadline time.Duration      // the deadline that passed, for KindTimeout
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("keystore: ")
	b.WriteString(e.Op)
	if e.Account.UserID != "" {
		fmt.Fprintf(&b, " for %s", e.Account.UserID)
		if e.Account.DeviceID != "" {
			fmt.Fprintf(&b, " (device %s)", e.Account.DeviceID)
		}
	}
	if e.Path != "" {
		fmt.Fprintf(&b, " (%s)", e.Path)
	}
	b.WriteString(": ")
	b.WriteString(e.what())
	if e.Err != nil && e.Kind != KindNotFound {
		fmt.Fprintf(&b, " [%s]", matrix.Sanitize(e.Err.Error()))
	}
	if a := e.advice(); a != "" {
		b.WriteString("; ")
		b.WriteString(a)
	}
	return b.String()
}

// Summary is the problem and what to do about it, without the operation and
// account that Error names: for a notice that is not about one account.
func (e *Error) Summary() string {
	if a := e.advice(); a != "" {
		return e.what() + ": " + a
	}
	return e.what()
}

func (e *Error) backend() string {
	if e.Backend == "" {
		return "the keyring"
	}
	return "the keyring (" + e.Backend + ")"
}

func (e *Error) what() string {
	switch e.Kind {
	case KindNotFound:
		return "no saved tokens in " + e.backend()
	case KindUnavailable:
		return e.backend() + " is not available"
	case KindLocked:
		return e.backend() + " is locked"
	case KindTimeout:
		if e.Deadline > 0 {
			return fmt.Sprintf("%s did not answer within %s", e.backend(), e.Deadline)
		}
		return e.backend() + " did not answer in time"
	case KindTooLarge:
		return "the tokens are too large for " + e.backend()
	case KindCorrupt:
		if e.Path != "" {
			return "the file is not a valid mxauth index"
		}
		return "the saved item is not valid mxauth data"
	default:
		return e.backend() + " failed"
	}
}

func (e *Error) advice() string {
	switch e.Kind {
	case KindNotFound:
		return "sign in again"
	case KindUnavailable:
		if e.Backend == secretServiceName || e.Backend == "" {
			return "start gnome-keyring-daemon, or enable KeePassXC's Secret Service integration, " +
				"in your desktop or D-Bus session; or try `mxauth demo`, which keeps nothing"
		}
		return "check that the system keyring is working, or try `mxauth demo`, which keeps nothing"
	case KindLocked:
		return "unlock the keyring (your desktop's keyring or password manager) and try again"
	case KindTimeout:
		return "it may be waiting for an unlock prompt: unlock the keyring and try again"
	case KindCorrupt:
		if e.Path != "" {
			return "mxauth left it untouched: fix or move the file away"
		}
		return "sign in again to replace it"
	case KindTooLarge:
		return "the keyring cannot hold this session"
	}
	return ""
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, session.ErrNoStoredTokens) hold for a missing item.
func (e *Error) Is(target error) bool {
	return target == session.ErrNoStoredTokens && e.Kind == KindNotFound
}

// StoreUnavailable reports a keyring that cannot be used right now, as opposed to
// a missing or bad item (session.StoreProblem).
func (e *Error) StoreUnavailable() bool {
	switch e.Kind {
	case KindUnavailable, KindLocked, KindTimeout:
		return true
	}
	return false
}

// KeyringIssue says what is wrong with the keyring, for the interface's advice.
func (e *Error) KeyringIssue() session.KeyringIssue {
	switch e.Kind {
	case KindLocked:
		return session.KeyringLocked
	case KindUnavailable:
		return session.KeyringUnavailable
	case KindTimeout:
		return session.KeyringNoAnswer
	}
	return session.KeyringFailed
}

// KindOf returns the Kind of a keystore error in err's chain.
func KindOf(err error) (Kind, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind, true
	}
	return KindOther, false
}

// classify maps a backend error to a Kind. It looks at go-keyring's sentinels,
// D-Bus error names and, last, the texts godbus and go-keyring produce.
func classify(err error) Kind {
	switch {
	case err == nil:
		return KindOther
	case errors.Is(err, keyring.ErrNotFound):
		return KindNotFound
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return KindTooLarge
	case errors.Is(err, errNoSessionBus):
		return KindUnavailable
	}
	if name, ok := dbusErrorName(err); ok {
		switch name {
		case "org.freedesktop.DBus.Error.ServiceUnknown",
			"org.freedesktop.DBus.Error.NameHasNoOwner",
			"org.freedesktop.DBus.Error.NoServer",
			"org.freedesktop.DBus.Error.Disconnected",
			"org.freedesktop.DBus.Error.Spawn.ExecFailed",
			"org.freedesktop.DBus.Error.Spawn.ChildExited",
			"org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
			"org.freedesktop.DBus.Error.UnknownObject",
			"org.freedesktop.DBus.Error.UnknownMethod",
			"org.freedesktop.DBus.Error.AccessDenied",
			"org.freedesktop.Secret.Error.NoSuchObject",
			"org.freedesktop.Secret.Error.NoSession":
			return KindUnavailable
		case "org.freedesktop.Secret.Error.IsLocked":
			return KindLocked
		case "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout",
			"org.freedesktop.DBus.Error.TimedOut":
			return KindTimeout
		}
	}
	msg := strings.ToLower(err.Error())
	switch {
	// go-keyring's Unlock when the unlock prompt was dismissed or could not be shown.
	case strings.Contains(msg, "failed to unlock correct collection"),
		strings.Contains(msg, "is locked"), strings.Contains(msg, "dismissed"):
		return KindLocked
	case strings.Contains(msg, "org.freedesktop.secrets was not provided"),
		strings.Contains(msg, "serviceunknown"),
		strings.Contains(msg, "cannot autolaunch"),
		strings.Contains(msg, "couldn't determine address of session bus"),
		strings.Contains(msg, "dbus-launch"),
		strings.Contains(msg, "dbus: authentication failed"),
		strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "connection refused"),
		strings.Contains(msg, "unsupported platform"),
		strings.Contains(msg, "connection closed by user"),
		strings.Contains(msg, "dial unix"):
		return KindUnavailable
	}
	if errors.Is(err, keyring.ErrUnsupportedPlatform) {
		return KindUnavailable
	}
	return KindOther
}
