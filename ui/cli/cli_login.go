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
	Password        bool // sign in with a password, through the compatibility layer on an OAuth 2.0 server
	Browser         bool // OAuth 2.0 in a browser on this machine instead of the device grant
	QR              bool // the device grant's page as a QR code too
}

const loginLong = `Signs in and keeps the tokens in the OS keyring. The homeserver is found from
the user ID (.well-known) unless --homeserver is given, and login says how it
signs users in: with passwords, through OAuth 2.0, or through OAuth 2.0 with a
password compatibility layer.

On a server that uses OAuth 2.0, login signs in with a code by default (the
device authorisation grant): it prints a page to open on any device (a phone
will do) and a code to enter there, with --qr also a QR code of the page, then
waits until you approve it there. This works over SSH and without a browser on
this machine. --browser instead opens the server's sign-in page in a browser on
this machine (or prints it when there is none) and takes the answer on a
loopback port. --password signs in with a password through the server's
compatibility layer, where it has one.

On a server without OAuth 2.0 the password is asked for on the terminal, without
echo; with --password-stdin the first line of stdin is the password (and a
password sign-in is asked for on any server).

With --login-token-stdin the first line of stdin is a single-use login token
minted on another device (mxauth login-token), and this becomes a new device of
the same account.

Signing in again to an account mxauth already has (by its user ID, or by a bare
name with --homeserver) reuses its device. Sign-ins of one user wait for each
other, and the keyring is checked before the server is asked.

--json prints the account as JSON on stdout; for an OAuth 2.0 sign-in it also
says how it ended: "status" is signed-in, denied, expired, cancelled or error
(with "error"). A denied or expired sign-in exits 1; a server that does not
offer the way asked for exits 5.

` + exitCodesHelp

func newCmdLogin(a *program, runF func(*loginOptions) error) *cobra.Command {
	opts := &loginOptions{}
	cmd := &cobra.Command{
		Use:   "login",
		Short: "sign in: OAuth 2.0 (a code or a browser), a password, or a login token",
		Long:  loginLong,
		Example: `# sign in, the way the server offers: on an OAuth 2.0 server with a code
# entered on another device, else with a password asked for on the terminal
mxauth login --user @you:example.org
# OAuth 2.0 with a QR code of the page to open on a phone
mxauth login --user @you:example.org --qr
# OAuth 2.0 in a browser on this machine
mxauth login --user @you:example.org --browser
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
	f.BoolVar(&opts.Password, "password", false, "sign in with a password, also on an OAuth 2.0 server that takes passwords")
	f.BoolVar(&opts.Browser, "browser", false, "sign in in a browser on this machine instead of with a code (OAuth 2.0)")
	f.BoolVar(&opts.QR, "qr", false, "also print the page to open as a QR code (OAuth 2.0)")
	return cmd
}

// validate refuses flag combinations that cannot sign in.
func (opts *loginOptions) validate() error {
	// A login token names its user itself, and so does the person approving
	// an OAuth 2.0 sign-in; the user ID then only serves to find the homeserver.
	if opts.User == "" && (opts.Homeserver == "" || opts.passwordOnly()) {
		return usageErrorf("login: --user is required (e.g. --user @you:example.org)")
	}
	if opts.PasswordStdin && opts.LoginTokenStdin {
		return usageErrorf("login: use either --password-stdin or --login-token-stdin")
	}
	if opts.LoginTokenStdin && opts.Password {
		return usageErrorf("login: use either --password or --login-token-stdin")
	}
	if opts.Browser && (opts.Password || opts.PasswordStdin || opts.LoginTokenStdin) {
		return usageErrorf("login: --browser signs in through OAuth 2.0, without a password or a login token")
	}
	if opts.QR && (opts.Browser || opts.Password || opts.PasswordStdin || opts.LoginTokenStdin) {
		return usageErrorf("login: --qr shows the page of a sign-in with a code, which --browser, --password and the stdin flags do not use")
	}
	return nil
}

// passwordOnly says the command line asks for a password sign-in.
func (opts *loginOptions) passwordOnly() bool { return opts.Password || opts.PasswordStdin }

func runLogin(ctx context.Context, a *program, opts *loginOptions) error {
	if opts.LoginTokenStdin {
		return runTokenLogin(ctx, a, opts)
	}
	secret := a.secretReader(opts.PasswordStdin, "--password-stdin")
	if opts.PasswordStdin {
		if err := secret.check(); err != nil {
			return err
		}
	}
	svc, err := a.openService(openOptions{InsecureHTTP: opts.InsecureHTTP, DeviceName: opts.DeviceName})
	if err != nil {
		return err
	}
	if opts.PasswordStdin && !opts.Password {
		// As before OAuth 2.0: straight to the password sign-in, no probe.
		return passwordLogin(ctx, a, svc, secret, opts)
	}
	probe, err := svc.ProbeAuth(ctx, opts.Homeserver, opts.User)
	if err != nil {
		err = insecureHint(err, opts.Homeserver, opts.InsecureHTTP)
		if opts.passwordOnly() {
			return err
		}
		return a.loginFailed(opts, err)
	}
	kind := kindLine(probe.BaseURL, probe.Kind, probe.Issuer)
	switch {
	case probe.Kind == matrix.AuthOAuthOnly && opts.passwordOnly():
		return unsupportedErrorf("login: %s; it takes no passwords, so sign in without --password", kind)
	case probe.Kind == matrix.AuthLegacy && opts.Browser:
		return a.loginFailed(opts, unsupportedErrorf("login: %s, so --browser cannot be used; sign in with a password", kind))
	case probe.Kind == matrix.AuthLegacy || opts.passwordOnly():
		if opts.User == "" {
			return usageErrorf("login: %s; a password sign-in needs --user", kind)
		}
		if err := secret.check(); err != nil {
			return err
		}
		a.infof("%s.", kind)
		// The probe found the server: no second discovery.
		return passwordLogin(ctx, a, svc, secret, opts, probe.BaseURL)
	}
	a.infof("%s.", kind)
	return runOAuthLogin(ctx, a, svc, probe, opts)
}

// runTokenLogin signs a new device in with a login token from stdin.
func runTokenLogin(ctx context.Context, a *program, opts *loginOptions) error {
	secret := a.secretReader(true, "--login-token-stdin")
	svc, err := a.openService(openOptions{InsecureHTTP: opts.InsecureHTTP, DeviceName: opts.DeviceName})
	if err != nil {
		return err
	}
	tok, err := secret.read("")
	if err != nil {
		return err
	}
	view, err := svc.LoginWithToken(ctx, opts.Homeserver, opts.User, tok, opts.DeviceName)
	if err != nil {
		return insecureHint(err, opts.Homeserver, opts.InsecureHTTP)
	}
	return reportLogin(a, view, opts)
}

// passwordLogin signs in with the password from the terminal or stdin, at
// baseURL when a probe already found the server.
func passwordLogin(ctx context.Context, a *program, svc *app.Service, secret *secretReader, opts *loginOptions, baseURL ...string) error {
	pw, err := secret.read("Password for " + shown(opts.User) + ": ")
	if err != nil {
		return err
	}
	homeserver := opts.Homeserver
	if len(baseURL) > 0 {
		homeserver = baseURL[0]
	}
	view, err := svc.Login(ctx, app.LoginParams{Homeserver: homeserver, User: opts.User, Password: pw, DeviceName: opts.DeviceName})
	if err != nil {
		if errors.Is(err, app.ErrUnsupported) && !opts.Password {
			return oauthHint(ctx, svc, err, opts)
		}
		return insecureHint(err, opts.Homeserver, opts.InsecureHTTP)
	}
	return reportLogin(a, view, opts)
}

// oauthHint adds, to a password sign-in a server refused as unsupported, the
// way that works there when the server signs in through OAuth 2.0.
func oauthHint(ctx context.Context, svc *app.Service, err error, opts *loginOptions) error {
	probe, perr := svc.ProbeAuth(ctx, opts.Homeserver, opts.User)
	if perr != nil || probe.Kind != matrix.AuthOAuthOnly {
		return err
	}
	return unsupportedErrorf("%s signs in through OAuth 2.0 only and takes no passwords; sign in without --password-stdin (mxauth login --user %s)", shown(probe.BaseURL), shown(opts.User))
}

// reportLogin says who signed in, or prints the account with --json.
func reportLogin(a *program, view app.Account, opts *loginOptions) error {
	if opts.JSON {
		return writeJSON(a.stdout, loginJSON{Status: loginSignedIn, accountJSON: ptr(accountJSONFrom(view, time.Now()))})
	}
	a.infof("Signed in as %s (device %s) on %s.", view.UserID, view.DeviceID, view.Homeserver)
	if view.Status.ExpiresAt.IsZero() {
		a.infof("Note: %s.", app.NonExpiringNote)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// insecureHint names the flag when a plain-http homeserver was refused.
func insecureHint(err error, homeserver string, insecure bool) error {
	if insecure || !strings.HasPrefix(strings.ToLower(homeserver), "http://") || !errors.Is(err, matrix.ErrInsecureURL) {
		return err
	}
	return usageErrorf("%v (pass --insecure-http to use it anyway; the password would travel unencrypted)", err)
}
