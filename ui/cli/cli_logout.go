package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

// logoutOptions are mxauth logout's flags.
type logoutOptions struct {
	Account string
	All     bool
	Local   bool
}

const logoutLong = `Signs the session out on the server (its device is deleted there) and removes
its tokens from the keyring and the account from mxauth's list. If the server
says the session had already ended, the local copy is removed all the same.
--all does this for every account mxauth holds.

If the server cannot be reached, nothing is removed and the command fails, so it
can be retried. --local removes the local copy without asking the server, for a
homeserver that is gone for good; the device then stays on the server until it
is deleted from another session.

` + exitCodesHelp

func newCmdLogout(a *program, runF func(*logoutOptions) error) *cobra.Command {
	opts := &logoutOptions{}
	cmd := &cobra.Command{
		Use:     "logout",
		Short:   "sign out on the server and remove local secrets",
		Long:    logoutLong,
		Example: "mxauth logout --account @you:example.org\nmxauth logout --all --local",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.All && opts.Account != "" {
				return a.finish(usageErrorf("logout: use either --account or --all"))
			}
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runLogout(cmd.Context(), a, opts))
		},
	}
	a.accountFlag(cmd, &opts.Account)
	cmd.Flags().BoolVar(&opts.All, "all", false, "sign out every account mxauth holds")
	cmd.Flags().BoolVar(&opts.Local, "local", false, "only remove the local secrets and entry; do not contact the server")
	return cmd
}

func runLogout(ctx context.Context, a *program, opts *logoutOptions) error {
	svc, err := a.openService(openOptions{})
	if err != nil {
		return err
	}
	targets := []string{opts.Account}
	if opts.All {
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
		if opts.Local {
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
