package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// refreshOptions are mxauth refresh's flags.
type refreshOptions struct {
	Account string
	JSON    bool
}

func newCmdRefresh(a *program, runF func(*refreshOptions) error) *cobra.Command {
	opts := &refreshOptions{}
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "refresh an account's access token now",
		Long: `Refreshes the account's access token now. A server that issues tokens that do
not expire has nothing to refresh; that is not an error.

` + exitCodesHelp,
		Example: `mxauth refresh --account @you:example.org --json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runRefresh(cmd.Context(), a, opts))
		},
	}
	a.accountFlag(cmd, &opts.Account)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the account's new state as JSON")
	return cmd
}

func runRefresh(ctx context.Context, a *program, opts *refreshOptions) error {
	svc, err := a.openService(openOptions{})
	if err != nil {
		return err
	}
	sess, acct, err := svc.Session(ctx, opts.Account)
	if err != nil {
		return err
	}
	tok := sess.Tokens()
	refreshed := session.CanRefresh(tok)
	switch {
	case session.RenewalOf(tok) == session.RenewalBySignIn:
		return unsupportedErrorf("%s: this server gave no refresh token; sign in again before the token expires", shown(acct.UserID))
	case !refreshed:
		a.infof("%s: %s; nothing to refresh.", acct.UserID, app.NonExpiringNote)
	default:
		if err := svc.Refresh(ctx, acct.UserID); err != nil {
			return err
		}
	}
	view := svc.View(acct, svc.DefaultUserID())
	if opts.JSON {
		return writeJSON(a.stdout, accountJSONFrom(view, time.Now()))
	}
	if refreshed {
		if exp := view.Status.ExpiresAt; !exp.IsZero() && !exp.After(time.Now()) {
			a.infof("Refreshed %s, but the server's new access token has already expired.", acct.UserID)
		} else {
			a.infof("Refreshed %s: the access token expires %s.", acct.UserID, expiryText(view.Status, time.Now()))
		}
	}
	return nil
}
