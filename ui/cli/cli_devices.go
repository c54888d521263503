package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/ui/app"
)

// devicesOptions are mxauth devices' flags and what it is asked to do.
type devicesOptions struct {
	Account       string
	PasswordStdin bool
	JSON          bool
	Delete        []string // device IDs to delete (devices delete ID...), repeats dropped
	QR            bool     // delete on an OAuth 2.0 server: the account page as a QR code too
	Open          bool     // delete on an OAuth 2.0 server: open the account page in a browser
}

const devicesLong = `Lists the account's devices (sessions) on the server, or deletes some of them.
Deleting asks for the account password: on the terminal without echo, or with
--password-stdin as the first line of stdin. Deleting this device signs it out
here too.

A server that signs in through OAuth 2.0 signs devices out only on its account
page: there devices delete prints the page's link for the device (--qr also as
a QR code, to open on a phone; --open opens it in a browser here) and exits 5.

` + exitCodesHelp

func newCmdDevices(a *program, runF func(*devicesOptions) error) *cobra.Command {
	opts := &devicesOptions{}
	cmd := &cobra.Command{
		Use:   "devices [delete DEVICE_ID...]",
		Short: "list or delete the account's devices",
		Long:  devicesLong,
		Example: `mxauth devices --account @you:example.org --json
mxauth devices delete ABCDEFGHIJ KLMNOPQRST --password-stdin < password.txt
mxauth devices delete ABCDEFGHIJ --qr --open`,
		Args: func(cmd *cobra.Command, args []string) error {
			deleting := len(args) > 0 && args[0] == "delete"
			switch {
			case len(args) > 0 && !deleting:
				return usageErrorf("devices: unknown subcommand %q (only delete)", shown(args[0]))
			case deleting && len(args) == 1:
				return usageErrorf("devices delete: give the IDs of the devices to delete")
			}
			return nil
		},
		ValidArgs: []string{"delete"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				opts.Delete = uniqueIDs(args[1:])
			}
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runDevices(cmd.Context(), a, opts))
		},
	}
	a.accountFlag(cmd, &opts.Account)
	cmd.Flags().BoolVar(&opts.PasswordStdin, "password-stdin", false, "delete: read the password from the first line of stdin")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the devices as a JSON array")
	cmd.Flags().BoolVar(&opts.QR, "qr", false, "delete, OAuth 2.0 server: also print the account page's link as a QR code")
	cmd.Flags().BoolVar(&opts.Open, "open", false, "delete, OAuth 2.0 server: open the account page in a browser")
	return cmd
}

// deviceJSON is the --json shape of a device.
type deviceJSON struct {
	DeviceID    string     `json:"device_id"`
	DisplayName string     `json:"display_name,omitempty"`
	LastSeenIP  string     `json:"last_seen_ip,omitempty"`
	LastSeen    *time.Time `json:"last_seen,omitempty"`
	Current     bool       `json:"current"`
}

// maxNameRunes bounds a device's name (and IP) in the table, so that one long
// name cannot pad every row; --json has the full (sanitised) text.
const maxNameRunes = 48

func runDevices(ctx context.Context, a *program, opts *devicesOptions) error {
	deleting := len(opts.Delete) > 0
	if !deleting && (opts.QR || opts.Open) {
		return usageErrorf("devices: --qr and --open go with devices delete")
	}
	svc, acct, err := a.openAccount(opts.Account)
	if err != nil {
		return err
	}
	if deleting && oauthServerAccount(acct) {
		// Signed in through OAuth 2.0 or with a password through its
		// compatibility layer: either way only the account page deletes.
		return a.deleteOnAccountPage(ctx, svc, acct, opts)
	}
	if deleting {
		pw := a.secretReader(opts.PasswordStdin, "--password-stdin")
		if err := pw.check(); err != nil {
			return err
		}
		ids := opts.Delete
		// Servers answer a delete of an unknown device with success; check
		// first, so nothing is deleted and no password asked for in vain.
		if err := checkDevicesExist(ctx, svc, acct.UserID, ids); err != nil {
			return err
		}
		fallback := func(stage, session string) string { return svc.FallbackURL(acct.UserID, stage, session) }
		err := a.withUIA(acct.UserID, fallback, pw, func(auth *matrix.AuthData) error {
			return svc.DeleteDevices(ctx, acct.UserID, ids, auth)
		})
		if err != nil {
			return err
		}
		a.infof("Deleted %d device(s) of %s.", len(ids), acct.UserID)
		return nil
	}

	devs, err := svc.Devices(ctx, acct.UserID)
	if err != nil {
		return err
	}
	out := make([]deviceJSON, 0, len(devs))
	for _, d := range devs {
		j := deviceJSON{
			DeviceID:    matrix.Sanitize(d.DeviceID),
			DisplayName: matrix.Sanitize(d.DisplayName),
			LastSeenIP:  matrix.Sanitize(d.LastSeenIP),
			Current:     d.DeviceID == acct.DeviceID,
		}
		if d.LastSeenTS != nil {
			t := time.UnixMilli(*d.LastSeenTS).UTC()
			j.LastSeen = &t
		}
		out = append(out, j)
	}
	if opts.JSON {
		return writeJSON(a.stdout, out)
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tDEVICE\tNAME\tLAST SEEN\tIP")
	for _, d := range out {
		mark, seen := "", "-"
		if d.Current {
			mark = "*"
		}
		if d.LastSeen != nil {
			seen = d.LastSeen.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, shown(d.DeviceID), matrix.SanitizeLimit(d.DisplayName, maxNameRunes), seen, matrix.SanitizeLimit(d.LastSeenIP, maxNameRunes))
	}
	return tw.Flush()
}

// uniqueIDs drops repeated device IDs, keeping the first of each.
func uniqueIDs(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// checkDevicesExist fails, naming them, when any of ids is not one of the
// account's devices on the server.
func checkDevicesExist(ctx context.Context, svc *app.Service, userID string, ids []string) error {
	devs, err := svc.Devices(ctx, userID)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, d := range devs {
		have[d.DeviceID] = true
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, matrix.Sanitize(id))
		}
	}
	switch {
	case len(missing) == 0:
		return nil
	case len(ids) == 1:
		return fmt.Errorf("no device %s on %s (see mxauth devices)", missing[0], userID)
	case len(missing) == 1:
		return fmt.Errorf("no device %s on %s, so nothing was deleted (see mxauth devices)", missing[0], userID)
	}
	return fmt.Errorf("no devices %s on %s, so nothing was deleted (see mxauth devices)", strings.Join(missing, ", "), userID)
}

// oauthServerAccount says whether acct's server signs in through OAuth 2.0
// (the account signed in through it, or through its password compatibility
// layer): such a server deletes devices only on its account page.
func oauthServerAccount(acct keystore.Account) bool {
	k := matrix.ParseServerAuthKind(acct.Kind)
	return acct.OAuth != nil || k == matrix.AuthOAuthOnly || k == matrix.AuthOAuthPasswordCompat
}

// deleteOnAccountPage hands the deletion to the server's account page: the
// link on stdout (with --qr as a QR code), opened with --open. It exits 5,
// since nothing was deleted here. This device alone is signed out here, by
// revocation, as logout does.
func (a *program) deleteOnAccountPage(ctx context.Context, svc *app.Service, acct keystore.Account, opts *devicesOptions) error {
	if err := checkDevicesExist(ctx, svc, acct.UserID, opts.Delete); err != nil {
		return err
	}
	err := svc.DeleteDevices(ctx, acct.UserID, opts.Delete, nil)
	if err == nil {
		// Only this device was named: its session was ended here.
		if acct.OAuth != nil {
			a.infof("Signed this device (%s) of %s out: its session was revoked.", acct.DeviceID, acct.UserID)
		} else {
			a.infof("Signed this device (%s) of %s out.", acct.DeviceID, acct.UserID)
		}
		return nil
	}
	var page *app.AccountPageError
	if !errors.As(err, &page) {
		return err
	}
	fmt.Fprintln(a.stdout, page.URL)
	if opts.QR {
		if err := a.printQR(a.stdout, page.URL); err != nil {
			return err
		}
	}
	if opts.Open {
		if oerr := a.openBrowser(page.URL); oerr != nil {
			a.infof("mxauth: no browser to open here; open the link above on a device with one")
		} else {
			a.infof("Opened the account page in your browser.")
		}
	}
	return &codedError{exitUnsupported, err}
}
