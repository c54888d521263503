package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// listOptions are mxauth list's flags.
type listOptions struct {
	JSON bool
}

func newCmdList(a *program, runF func(*listOptions) error) *cobra.Command {
	opts := &listOptions{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "list accounts with their state and token expiry",
		Long: `Lists the accounts mxauth holds, with each session's state and when its access
token expires. The default account is marked with *.

` + exitCodesHelp,
		Example: `mxauth list --json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runList(cmd.Context(), a, opts))
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the accounts as a JSON array")
	return cmd
}

func runList(ctx context.Context, a *program, opts *listOptions) error {
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

	if opts.JSON {
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
