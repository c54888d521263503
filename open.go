package main

import (
	"mxauth/keystore"
)

// openOptions are the knobs commands pass when opening the store.
type openOptions struct {
	InsecureHTTP bool
	DeviceName   string
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
	return newService(st, serviceOptions{InsecureHTTP: opt.InsecureHTTP, DeviceName: opt.DeviceName}), nil
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
