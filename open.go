package main

import (
	"context"

	"mxauth/keystore"
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
func (a *app) configDir() string { return a.getenv("MXAUTH_CONFIG_DIR") }

// openService opens the real keyring-backed store. There is deliberately no
// plaintext or in-memory fallback outside the demo.
func (a *app) openService(opt openOptions) (*Service, error) {
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewKeyringBackend(), Dir: a.configDir()})
	if err != nil {
		return nil, err
	}
	svc := newService(st, serviceOptions{InsecureHTTP: opt.InsecureHTTP, DeviceName: opt.DeviceName})
	if !opt.DeferRepair {
		a.finishPending(svc)
	}
	return svc, nil
}

// finishPending completes what an earlier run left half done (a removal, an
// old device's sign-out, a sign-in killed before its account was recorded)
// before the command runs, and says what it did on stderr. Without markers in
// the index it costs nothing.
func (a *app) finishPending(svc *Service) {
	if len(svc.store.PendingRemovals()) == 0 {
		return
	}
	ctx := a.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	notes, _ := svc.store.FinishPending(ctx, svc.signOutLeftover)
	for _, n := range notes {
		a.infof("mxauth: %s", oneLine(n.Text))
	}
}

// openAccount opens the store and finds the account a command works on: the
// user ID given with --account, or the default account for "".
func (a *app) openAccount(userID string) (*Service, keystore.Account, error) {
	svc, err := a.openService(openOptions{})
	if err != nil {
		return nil, keystore.Account{}, err
	}
	acct, err := svc.account(userID)
	return svc, acct, err
}
