package cli

import (
	"context"
	"errors"
	"strings"
	"time"

	"mxauth/matrix"
	"mxauth/ui"
	"mxauth/ui/app"
)

const loginUsage = `Usage:
  mxauth login --user @you:example.org [--homeserver URL] [--password-stdin] [--device-name NAME] [--json]
  mxauth login --user @you:example.org --login-token-stdin [--homeserver URL] [--json]
  mxauth login --homeserver URL --login-token-stdin [--json]

Signs in with a password and keeps the tokens in the OS keyring. The homeserver is
found from the user ID (.well-known) unless --homeserver is given. Without
--password-stdin the password is asked for on the terminal, without echo; with it,
the first line of stdin is the password.

With --login-token-stdin the first line of stdin is a single-use login token
minted on another device (mxauth login-token), and this becomes a new device of
the same account.

Signing in again to an account mxauth already has (by its user ID, or by a bare
name with --homeserver) reuses its device. Sign-ins of one user wait for each
other, and the keyring is checked before the server is asked.`

func runLogin(ctx context.Context, a *program, args []string) error {
	fs := a.newFlags("login", loginUsage)
	user := fs.String("user", "", "user ID, e.g. @you:example.org (a bare name needs --homeserver)")
	homeserver := fs.String("homeserver", "", "homeserver base URL; skips discovery")
	pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	tokStdin := fs.Bool("login-token-stdin", false, "read a login token from the first line of stdin")
	deviceName := fs.String("device-name", "", "display name for a new device (default \"mxauth on <host>\")")
	insecure := fs.Bool("insecure-http", false, "allow plain http:// to a non-loopback homeserver")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("login: unexpected argument %q", shown(pos[0]))
	}
	// A login token names its user itself; the user ID then only serves to
	// find the homeserver.
	if *user == "" && !(*tokStdin && *homeserver != "") {
		return usageErrorf("login: --user is required (e.g. --user @you:example.org)")
	}
	if *pwStdin && *tokStdin {
		return usageErrorf("login: use either --password-stdin or --login-token-stdin")
	}
	var secret *secretReader
	if *tokStdin {
		secret = a.secretReader(true, "--login-token-stdin")
	} else {
		secret = a.secretReader(*pwStdin, "--password-stdin")
		if err := secret.check(); err != nil {
			return err
		}
	}
	svc, err := a.openService(openOptions{InsecureHTTP: *insecure, DeviceName: *deviceName})
	if err != nil {
		return err
	}

	var view ui.AccountView
	if *tokStdin {
		tok, err := secret.read("")
		if err != nil {
			return err
		}
		view, err = svc.LoginWithToken(ctx, *homeserver, *user, tok, *deviceName)
		if err != nil {
			return insecureHint(err, *homeserver, *insecure)
		}
	} else {
		pw, err := secret.read("Password for " + shown(*user) + ": ")
		if err != nil {
			return err
		}
		view, err = svc.Login(ctx, ui.LoginParams{Homeserver: *homeserver, User: *user, Password: pw, DeviceName: *deviceName})
		if err != nil {
			return insecureHint(err, *homeserver, *insecure)
		}
	}

	st := view.Status
	if *asJSON {
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
