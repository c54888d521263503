package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// tokenOptions are mxauth token's flags.
type tokenOptions struct {
	Account string
}

func newCmdToken(a *program, runF func(*tokenOptions) error) *cobra.Command {
	opts := &tokenOptions{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "print a currently valid access token",
		Long: `Prints a currently valid access token and nothing else, refreshing it first if
it is about to expire. Meant for scripts: curl -H "Authorization: Bearer $(mxauth token)" ...

` + exitCodesHelp,
		Example: `curl -H "Authorization: Bearer $(mxauth token)" https://example.org/_matrix/client/v3/account/whoami
mxauth token --account @you:example.org`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runToken(cmd.Context(), a, opts))
		},
	}
	accountFlag(cmd, &opts.Account)
	return cmd
}

// accountFlag adds --account, which picks the account a command acts on.
func accountFlag(cmd *cobra.Command, account *string) {
	cmd.Flags().StringVar(account, "account", "", "user ID of the account (default: the default account)")
}

func runToken(ctx context.Context, a *program, opts *tokenOptions) error {
	svc, err := a.openService(openOptions{})
	if err != nil {
		return err
	}
	tok, err := svc.AccessToken(ctx, opts.Account)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, tok.Reveal())
	return err
}
