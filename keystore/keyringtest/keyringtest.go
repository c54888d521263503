// Package keyringtest runs a real, private Secret Service (gnome-keyring-daemon on
// its own D-Bus session bus) so tests can exercise the OS keyring without touching
// the user's own keyring.
//
// Typical use in a TestMain, sharing one keyring with child processes:
//
//	func TestMain(m *testing.M) {
//		env, stop, err := keyringtest.StartForMain()
//		if err != nil && keyringtest.Required() {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		restore := keyringtest.Setenv(env) // env is nil when err != nil
//		code := m.Run()
//		restore()
//		stop()
//		os.Exit(code)
//	}
//
// or, per test, k := keyringtest.StartKeyring(t, keyringtest.Options{}).
package keyringtest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// RequiredEnv names the variable that makes the real-keyring tests mandatory: set
// to "1" (as CI does), a missing daemon is a failure instead of a skip.
const RequiredEnv = "MXAUTH_REAL_KEYRING"

// DefaultPassword unlocks the private login keyring.
const DefaultPassword = "mxauth-test-password"

// ErrNotInstalled is wrapped by Launch's error when dbus-daemon or
// gnome-keyring-daemon is missing, so callers can skip rather than fail.
var ErrNotInstalled = errors.New("dbus-daemon and gnome-keyring-daemon are needed for the real keyring tests")

// Required reports whether the real-keyring tests must run (MXAUTH_REAL_KEYRING=1).
func Required() bool { return os.Getenv(RequiredEnv) == "1" }

// Options tune Launch.
type Options struct {
	// Password for the login keyring; DefaultPassword when empty. It is written
	// to gnome-keyring-daemon's stdin byte for byte, without a newline.
	Password string
	// NoSecretService starts only the bus: nothing owns org.freedesktop.secrets,
	// as on a desktop without a keyring daemon.
	NoSecretService bool
	// HangingPrompter puts a system prompter on the bus that accepts prompts
	// and never answers, like an unlock dialog nobody clicks: operations on a
	// locked collection then block instead of failing at once.
	HangingPrompter bool
	// Timeout bounds the start-up; 15 s when zero.
	Timeout time.Duration
}

// Keyring is a running private bus, with gnome-keyring-daemon unless
// Options.NoSecretService was set.
type Keyring struct {
	// Env holds DBUS_SESSION_BUS_ADDRESS, HOME and the XDG_* directories, all
	// pointing into Dir, as "KEY=value" entries for os/exec or Setenv.
	Env []string
	// Address is the bus address (also in Env).
	Address string
	// Dir is the temporary root holding home, config, data and the bus socket.
	Dir string
	// Password unlocks the login keyring.
	Password string

	impl
}

// Launch starts a private bus and, unless opt.NoSecretService, a Secret Service
// on it with an unlocked login keyring. Stop releases everything.
func Launch(opt Options) (*Keyring, error) {
	if opt.Password == "" {
		opt.Password = DefaultPassword
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 15 * time.Second
	}
	return launch(opt)
}

// StartForMain launches a keyring for a whole test binary. env is nil when err
// is not; errors.Is(err, ErrNotInstalled) tells a machine without the daemons.
// died is the keyring's Died, for the binary to report after its tests.
func StartForMain() (env []string, stop func(), died func() string, err error) {
	k, err := Launch(Options{})
	if err != nil {
		return nil, func() {}, func() string { return "" }, err
	}
	return k.Env, k.Stop, k.Died, nil
}

// StartKeyring launches a keyring for one test and stops it at cleanup (Stop
// may also be called earlier). Without the daemons it skips the test, or fails
// it when Required. It does not change the process environment: pass k.Env to
// child processes or to Setenv.
func StartKeyring(tb testing.TB, opt Options) *Keyring {
	tb.Helper()
	k, err := Launch(opt)
	if err != nil {
		if errors.Is(err, ErrNotInstalled) && !Required() {
			tb.Skipf("real keyring not available: %v (set %s=1 to require it)", err, RequiredEnv)
		}
		tb.Fatalf("starting a private Secret Service: %v", err)
	}
	tb.Cleanup(k.Stop)
	return k
}

// Setenv applies "KEY=value" entries to the process environment (godbus and
// go-keyring read DBUS_SESSION_BUS_ADDRESS from it) and returns a function
// restoring the previous values.
func Setenv(env []string) (restore func()) {
	type old struct {
		val string
		set bool
	}
	saved := map[string]old{}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if _, seen := saved[k]; !seen {
			val, set := os.LookupEnv(k)
			saved[k] = old{val, set}
		}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.set {
				os.Setenv(k, o.val)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

// Merge returns base with the entries of over replacing same-named ones, for a
// child process's environment.
func Merge(base, over []string) []string {
	drop := map[string]bool{}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	out := make([]string, 0, len(base)+len(over))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

// Lookup returns the value of key in env ("" when absent).
func Lookup(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

func errorf(format string, args ...any) error { return fmt.Errorf("keyringtest: "+format, args...) }
