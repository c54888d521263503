package cli

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mxauth/matrix"
	"mxauth/ui/app"
)

// loginOptions are mxauth login's flags.
type loginOptions struct {
	User            string
	Homeserver      string
	PasswordStdin   bool
	LoginTokenStdin bool
	DeviceName      string
	InsecureHTTP    bool
	JSON            bool
}

const loginLong = `Signs in with a password and keeps the tokens in the OS keyring. The homeserver is
found from the user ID (.well-known) unless --homeserver is given. Without
--password-stdin the password is asked for on the terminal, without echo; with it,
the first line of stdin is the password.

With --login-token-stdin the first line of stdin is a single-use login token
minted on another device (mxauth login-token), and this becomes a new device of
the same account.

Signing in again to an account mxauth already has (by its user ID, or by a bare
name with --homeserver) reuses its device. Sign-ins of one user wait for each
other, and the keyring is checked before the server is asked.

` + exitCodesHelp

func newCmdLogin(a *program, runF func(*loginOptions) error) *cobra.Command {
	opts := &loginOptions{}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "sign in with a password or a login token",
		Long:  loginLong,
		Example: `# with a password, asked for on the terminal
mxauth login --user @you:example.org
# with a password from a file, printing the account as JSON
mxauth login --user @you:example.org --password-stdin --json < password.txt
# as a new device, with a login token minted by mxauth login-token elsewhere
mxauth login --user @you:example.org --login-token-stdin
mxauth login --homeserver https://matrix.example.org --login-token-stdin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return a.finish(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runLogin(cmd.Context(), a, opts))
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.User, "user", "", "user ID, e.g. @you:example.org (a bare name needs --homeserver)")
	f.StringVar(&opts.Homeserver, "homeserver", "", "homeserver base URL; skips discovery")
	f.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the password from the first line of stdin")
	f.BoolVar(&opts.LoginTokenStdin, "login-token-stdin", false, "read a login token from the first line of stdin")
	f.StringVar(&opts.DeviceName, "device-name", "", "display name for a new device (default \"mxauth on <host>\")")
	f.BoolVar(&opts.InsecureHTTP, "insecure-http", false, "allow plain http:// to a non-loopback homeserver")
	f.BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// validate refuses flag combinations that cannot sign in.
func (opts *loginOptions) validate() error {
	// A login token names its user itself; the user ID then only serves to
	// find the homeserver.
	if opts.User == "" && !(opts.LoginTokenStdin && opts.Homeserver != "") {
		return usageErrorf("login: --user is required (e.g. --user @you:example.org)")
	}
	if opts.PasswordStdin && opts.LoginTokenStdin {
		return usageErrorf("login: use either --password-stdin or --login-token-stdin")
	}
	return nil
}

func runLogin(ctx context.Context, a *program, opts *loginOptions) error {
	var secret *secretReader
	if opts.LoginTokenStdin {
		secret = a.secretReader(true, "--login-token-stdin")
	} else {
		secret = a.secretReader(opts.PasswordStdin, "--password-stdin")
		if err := secret.check(); err != nil {
			return err
		}
	}
	svc, err := a.openService(openOptions{InsecureHTTP: opts.InsecureHTTP, DeviceName: opts.DeviceName})
	if err != nil {
		return err
	}

	var view app.Account
	if opts.LoginTokenStdin {
		tok, err := secret.read("")
		if err != nil {
			return err
		}
		view, err = svc.LoginWithToken(ctx, opts.Homeserver, opts.User, tok, opts.DeviceName)
		if err != nil {
			return insecureHint(err, opts.Homeserver, opts.InsecureHTTP)
		}
	} else {
		pw, err := secret.read("Password for " + shown(opts.User) + ": ")
		if err != nil {
			return err
		}
		view, err = svc.Login(ctx, app.LoginParams{Homeserver: opts.Homeserver, User: opts.User, Password: pw, DeviceName: opts.DeviceName})
		if err != nil {
			return insecureHint(err, opts.Homeserver, opts.InsecureHTTP)
		}
	}

	st := view.Status
	if opts.JSON {
		return writeJSON(a.stdout, accountJSONFrom(view, time.Now()))
	}
	a.infof("Signed in as %s (device %s) on %s.", view.UserID, view.DeviceID, view.Homeserver)
	if st.ExpiresAt.IsZero() {
		a.infof("Note: %s.", app.NonExpiringNote)
	}
	return nil
}

// insecureHint names the flag when a plain-http homeserver was refused.
func insecureHint(err error, homeserver string, insecure bool) error {
	if insecure || !strings.HasPrefix(strings.ToLower(homeserver), "http://") || !errors.Is(err, matrix.ErrInsecureURL) {
		return err
	}
	return usageErrorf("%v (pass --insecure-http to use it anyway; the password would travel unencrypted)", err)
}
