package cli

import (
	"context"
	"time"

	"mxauth/matrix/session"
	"mxauth/ui/app"
)

const refreshUsage = `Usage:
  mxauth refresh [--account @you:example.org] [--json]

Refreshes the account's access token now. A server that issues tokens that do
not expire has nothing to refresh; that is not an error.`

func runRefresh(ctx context.Context, a *program, args []string) error {
	fs := a.newFlags("refresh", refreshUsage)
	account := fs.String("account", "", "user ID of the account (default: the default account)")
	asJSON := fs.Bool("json", false, "print the account's new state as JSON")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("refresh: unexpected argument %q", shown(pos[0]))
	}
	svc, err := a.openService(openOptions{})
	if err != nil {
		return err
	}
	sess, acct, err := svc.Session(ctx, *account)
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
	if *asJSON {
		return writeJSON(a.stdout, accountJSONFrom(view, time.Now()))
	}
	if refreshed {
		a.infof("Refreshed %s: the access token expires %s.", acct.UserID, expiryText(view.Status, time.Now()))
	}
	return nil
}
