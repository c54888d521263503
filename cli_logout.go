package main

import (
	"context"
	"errors"
)

const logoutUsage = `Usage:
  mxauth logout [--account @you:example.org]
  mxauth logout --all

Signs the session out on the server (its device is deleted there) and removes
its tokens from the keyring and the account from mxauth's list. If the server
says the session had already ended, the local copy is removed all the same.
--all does this for every account mxauth holds.`

func runLogout(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("logout", logoutUsage)
	account := fs.String("account", "", "user ID of the account (default: the default account)")
	all := fs.Bool("all", false, "sign out every account mxauth holds")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("logout: unexpected argument %q", pos[0])
	}
	if *all && *account != "" {
		return usageErrorf("logout: use either --account or --all")
	}
	svc, err := a.openService(openOptions{})
	if err != nil {
		return err
	}
	targets := []string{*account}
	if *all {
		targets = targets[:0]
		for _, acct := range svc.store.Accounts() {
			targets = append(targets, acct.UserID)
		}
		if len(targets) == 0 {
			a.infof("No accounts to sign out.")
			return nil
		}
	}
	var errs []error
	for _, user := range targets {
		acct, err := svc.account(user)
		if err != nil {
			return err
		}
		if err := svc.SignOut(ctx, acct.UserID); err != nil {
			a.infof("mxauth: %s: %s", acct.UserID, oneLine(errorMessage(err)))
			errs = append(errs, err)
			continue
		}
		a.infof("Signed out %s (device %s).", acct.UserID, acct.DeviceID)
	}
	if len(errs) > 0 {
		return &exitStatus{exitCode(errors.Join(errs...))}
	}
	return nil
}
