package cli

import (
	"context"
	"errors"
)

const logoutUsage = `Usage:
  mxauth logout [--account @you:example.org] [--local]
  mxauth logout --all [--local]

Signs the session out on the server (its device is deleted there) and removes
its tokens from the keyring and the account from mxauth's list. If the server
says the session had already ended, the local copy is removed all the same.
--all does this for every account mxauth holds.

If the server cannot be reached, nothing is removed and the command fails, so it
can be retried. --local removes the local copy without asking the server, for a
homeserver that is gone for good; the device then stays on the server until it
is deleted from another session.`

func runLogout(ctx context.Context, a *program, args []string) error {
	fs := a.newFlags("logout", logoutUsage)
	account := fs.String("account", "", "user ID of the account (default: the default account)")
	all := fs.Bool("all", false, "sign out every account mxauth holds")
	local := fs.Bool("local", false, "only remove the local secrets and entry; do not contact the server")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("logout: unexpected argument %q", shown(pos[0]))
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
		for _, acct := range svc.Store().Accounts() {
			targets = append(targets, acct.UserID)
		}
		if len(targets) == 0 {
			a.infof("No accounts to sign out.")
			return nil
		}
	}
	var errs []error
	for _, user := range targets {
		acct, err := svc.Account(user)
		if err != nil {
			return err
		}
		signOut, done := svc.SignOut, "Signed out %s (device %s)."
		if *local {
			signOut, done = svc.ForgetLocally, "Removed %s from this machine (device %s stays on the server)."
		}
		if err := signOut(ctx, acct.UserID); err != nil {
			a.infof("mxauth: %s: %s", acct.UserID, oneLine(errorMessage(err)))
			errs = append(errs, err)
			continue
		}
		a.infof(done, acct.UserID, acct.DeviceID)
	}
	if len(errs) > 0 {
		return &exitStatus{exitCode(errors.Join(errs...))}
	}
	return nil
}
