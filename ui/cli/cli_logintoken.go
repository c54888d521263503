package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mxauth/matrix"
	"mxauth/ui/app"
)

// loginTokenOptions are mxauth login-token's flags.
type loginTokenOptions struct {
	Account       string
	PasswordStdin bool
	QR            bool
	JSON          bool
}

const loginTokenLong = `Mints a single-use login token that signs a new device in to the same account:
on the new device run  mxauth login --user @you:example.org --login-token-stdin
and paste it. The server asks for the account password first; without
--password-stdin it is asked for on the terminal, with it the first line of stdin
is the password. The token is printed to stdout; --qr prints it as a QR code
too, --json prints login_token, expires_in_ms, expires_at, homeserver, user_id.

` + exitCodesHelp

func newCmdLoginToken(a *program, runF func(*loginTokenOptions) error) *cobra.Command {
	opts := &loginTokenOptions{}
	cmd := &cobra.Command{
		Use:   "login-token",
		Short: "mint a single-use login token for a new device",
		Long:  loginTokenLong,
		Example: `mxauth login-token --qr
mxauth login-token --account @you:example.org --password-stdin --json < password.txt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runLoginToken(cmd.Context(), a, opts))
		},
	}
	a.accountFlag(cmd, &opts.Account)
	f := cmd.Flags()
	f.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.BoolVar(&opts.QR, "qr", false, "also print the token as a QR code")
	f.BoolVar(&opts.JSON, "json", false, "print the token and its expiry as JSON")
	return cmd
}

// loginTokenJSON is the --json shape of a minted token.
type loginTokenJSON struct {
	LoginToken  string `json:"login_token"`
	ExpiresInMS int64  `json:"expires_in_ms"`
	ExpiresAt   string `json:"expires_at"`
	Homeserver  string `json:"homeserver"`
	UserID      string `json:"user_id"`
}

func runLoginToken(ctx context.Context, a *program, opts *loginTokenOptions) error {
	svc, acct, err := a.openAccount(opts.Account)
	if err != nil {
		return err
	}
	if oauthServerAccount(acct) {
		chk, err := svc.CheckLoginToken(ctx, acct.UserID)
		if err != nil {
			return err
		}
		if !chk.Supported {
			return a.noLoginTokens(chk)
		}
	}
	pw := a.secretReader(opts.PasswordStdin, "--password-stdin")
	if err := pw.check(); err != nil {
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
	if opts.JSON {
		return writeJSON(a.stdout, loginTokenJSON{
			LoginToken:  resp.LoginToken.Reveal(),
			ExpiresInMS: resp.ExpiresInMS,
			ExpiresAt:   exp.UTC().Format(time.RFC3339),
			Homeserver:  shown(acct.Homeserver),
			UserID:      shown(acct.UserID),
		})
	}
	fmt.Fprintln(a.stdout, resp.LoginToken.Reveal())
	if opts.QR {
		if err := a.printQR(a.stdout, resp.LoginToken.Reveal()); err != nil {
			return err
		}
	}
	a.infof("Single use, valid for %s (until %s). On the new device:\n  mxauth login --user %s --login-token-stdin",
		app.FormatDuration(time.Until(exp)), exp.Local().Format("15:04:05"), acct.UserID)
	return nil
}

// noLoginTokens explains, for an account of an OAuth 2.0 server, that login
// tokens do not exist there and what to do instead: the account page's link
// goes to stdout. It exits 5.
func (a *program) noLoginTokens(chk app.LoginTokenCheck) error {
	if chk.AccountURL != "" {
		fmt.Fprintln(a.stdout, chk.AccountURL)
		return unsupportedErrorf("login-token: %s; the account page is %s", chk.Reason, shown(chk.AccountURL))
	}
	return unsupportedErrorf("login-token: %s", chk.Reason)
}
