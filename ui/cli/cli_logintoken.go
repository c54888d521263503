package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/term"

	"mxauth/matrix"
	"mxauth/ui/app"
)

const loginTokenUsage = `Usage:
  mxauth login-token [--account @you:example.org] [--password-stdin] [--qr] [--json]

Mints a single-use login token that signs a new device in to the same account:
on the new device run  mxauth login --user @you:example.org --login-token-stdin
and paste it. The server asks for the account password first; without
--password-stdin it is asked for on the terminal, with it the first line of stdin
is the password. The token is printed to stdout; --qr prints it as a QR code
too, --json prints login_token, expires_in_ms, expires_at, homeserver, user_id.`

// loginTokenJSON is the --json shape of a minted token.
type loginTokenJSON struct {
	LoginToken  string `json:"login_token"`
	ExpiresInMS int64  `json:"expires_in_ms"`
	ExpiresAt   string `json:"expires_at"`
	Homeserver  string `json:"homeserver"`
	UserID      string `json:"user_id"`
}

func runLoginToken(ctx context.Context, a *program, args []string) error {
	fs := a.newFlags("login-token", loginTokenUsage)
	account := fs.String("account", "", "user ID of the account (default: the default account)")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	qr := fs.Bool("qr", false, "also print the token as a QR code")
	asJSON := fs.Bool("json", false, "print the token and its expiry as JSON")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("login-token: unexpected argument %q", shown(pos[0]))
	}
	pw := a.secretReader(*pwStdin, "--password-stdin")
	if err := pw.check(); err != nil {
		return err
	}
	svc, acct, err := a.openAccount(*account)
	if err != nil {
		return err
	}
	var resp *matrix.GetLoginTokenResponse
	fallback := func(stage, session string) string { return svc.FallbackURL(acct.UserID, stage, session) }
	err = a.withUIA(acct.UserID, fallback, pw, func(auth *matrix.AuthData) error {
		var err error
		resp, err = svc.MintLoginToken(ctx, acct.UserID, auth)
		return err
	})
	if err != nil {
		return err
	}
	exp := resp.ExpiresAt()
	if *asJSON {
		return writeJSON(a.stdout, loginTokenJSON{
			LoginToken:  resp.LoginToken.Reveal(),
			ExpiresInMS: resp.ExpiresInMS,
			ExpiresAt:   exp.UTC().Format(time.RFC3339),
			Homeserver:  shown(acct.Homeserver),
			UserID:      shown(acct.UserID),
		})
	}
	fmt.Fprintln(a.stdout, resp.LoginToken.Reveal())
	if *qr {
		out, isFile := a.stdout.(*os.File)
		colour := isFile && term.IsTerminal(int(out.Fd())) && a.getenv("NO_COLOR") == ""
		dark := !colour && isFile && terminalIsDark(out) // only matters without colour
		if err := writeQR(a.stdout, resp.LoginToken.Reveal(), colour, dark); err != nil {
			return err
		}
	}
	a.infof("Single use, valid for %s (until %s). On the new device:\n  mxauth login --user %s --login-token-stdin",
		app.FormatDuration(time.Until(exp)), exp.Local().Format("15:04:05"), acct.UserID)
	return nil
}
