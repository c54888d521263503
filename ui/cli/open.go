package cli

import (
	"context"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/ui/app"
)

// openOptions are the knobs commands pass when opening the store.
type openOptions struct {
	InsecureHTTP bool
	DeviceName   string
	// DeferRepair leaves unfinished removals and sign-ins to the caller (the
	// full-screen app shows their notes itself).
	DeferRepair bool
}

// configDir is the keystore directory: MXAUTH_CONFIG_DIR, else the keystore's
// default (the user config dir + /mxauth).
func (a *program) configDir() string { return a.getenv("MXAUTH_CONFIG_DIR") }

// Environment variables that change how long a command waits.
const (
	keyringTimeoutEnv = "MXAUTH_KEYRING_TIMEOUT" // for the keyring, per command
	lockTimeoutEnv    = "MXAUTH_LOCK_TIMEOUT"    // for another mxauth process's lock
	httpTimeoutEnv    = "MXAUTH_HTTP_TIMEOUT"    // for each call to a homeserver
)

// waitBound reads a wait from the environment: a Go duration ("5s", "1m"),
// or zero for the default when unset.
func (a *program) waitBound(name string) (time.Duration, error) {
	v := a.getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, usageErrorf("%s=%q: give a positive duration such as 5s or 1m", name, v)
	}
	return d, nil
}

// openService opens the real keyring-backed store. There is deliberately no
// plaintext or in-memory fallback outside the demo.
func (a *program) openService(opt openOptions) (*app.Service, error) {
	deadline, err := a.waitBound(keyringTimeoutEnv)
	if err != nil {
		return nil, err
	}
	lockTimeout, err := a.waitBound(lockTimeoutEnv)
	if err != nil {
		return nil, err
	}
	httpTimeout, err := a.waitBound(httpTimeoutEnv)
	if err != nil {
		return nil, err
	}
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewKeyringBackend(), Dir: a.configDir(), Deadline: deadline, LockTimeout: lockTimeout})
	if err != nil {
		return nil, err
	}
	svc := newService(st, app.Options{InsecureHTTP: opt.InsecureHTTP, DeviceName: opt.DeviceName, HTTPTimeout: httpTimeout})
	if !opt.DeferRepair {
		a.finishPending(svc)
	}
	return svc, nil
}

// finishPending completes what an earlier run left half done (a removal, an
// old device's sign-out, a sign-in killed before its account was recorded)
// before the command runs, and says what it did on stderr. Without markers in
// the index it costs nothing.
func (a *program) finishPending(svc *app.Service) {
	if len(svc.Store().PendingRemovals()) == 0 {
		return
	}
	ctx := a.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	notes, _ := svc.Store().FinishPending(ctx, svc.SignOutLeftover)
	for _, n := range notes {
		a.infof("mxauth: %s", oneLine(matrix.Sanitize(n.Text))) // may quote a server's error text
	}
}

// openAccount opens the store and finds the account a command works on: the
// user ID given with --account, or the default account for "".
func (a *program) openAccount(userID string) (*app.Service, keystore.Account, error) {
	svc, err := a.openService(openOptions{})
	if err != nil {
		return nil, keystore.Account{}, err
	}
	acct, err := svc.Account(userID)
	return svc, acct, err
}
