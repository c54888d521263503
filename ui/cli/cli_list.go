package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"mxauth/matrix/session"
	"mxauth/ui/app"
)

const listUsage = `Usage:
  mxauth list [--json]

Lists the accounts mxauth holds, with each session's state and when its access
token expires. The default account is marked with *.`

func runList(ctx context.Context, a *program, args []string) error {
	fs := a.newFlags("list", listUsage)
	asJSON := fs.Bool("json", false, "print the accounts as a JSON array")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("list: unexpected argument %q", shown(pos[0]))
	}
	svc, err := a.openService(openOptions{})
	if err != nil {
		return err
	}
	svc.LoadAll(ctx)
	views := svc.Accounts()
	now := time.Now()

	// A keyring that cannot be read is worth an exit code, after the list.
	var keyringErr error
	for _, v := range views {
		if v.Status.State == session.StateStoreProblem && keyringErr == nil {
			keyringErr = &codedError{exitKeyring, fmt.Errorf("%s", v.Status.Problem)}
		}
	}

	if *asJSON {
		out := make([]accountJSON, 0, len(views))
		for _, v := range views {
			out = append(out, accountJSONFrom(v, now))
		}
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
		return keyringErr
	}
	if len(views) == 0 {
		a.infof("No accounts yet: add one with mxauth login --user @you:example.org")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tUSER\tDEVICE\tHOMESERVER\tSTATE\tEXPIRES")
	for _, v := range views {
		mark := ""
		if v.IsDefault {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, shown(v.UserID), shown(v.DeviceID), shown(v.Homeserver), v.Status.State, expiryText(v.Status, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range views {
		if expiryKind(v.Status) == "never" && (v.Status.State == session.StateNonExpiring || v.Status.State == session.StateActive) {
			a.infof("%s: %s.", v.UserID, app.NonExpiringNote)
		}
	}
	return keyringErr
}
