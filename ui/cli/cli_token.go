package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"mxauth/keystore"
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
	a.accountFlag(cmd, &opts.Account)
	return cmd
}

// accountFlag adds --account, which picks the account a command acts on; the
// shells complete it with the user IDs in the account list.
func (a *program) accountFlag(cmd *cobra.Command, account *string) {
	cmd.Flags().StringVar(account, "account", "", "user ID of the account (default: the default account)")
	_ = cmd.RegisterFlagCompletionFunc("account", a.completeAccounts)
}

// completeAccounts lists the accounts' user IDs for completion. It reads only
// the account list (an unsafe or unreadable one offers nothing), never the
// keyring, so a Tab never waits for an unlock prompt.
func (a *program) completeAccounts(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	st, err := keystore.Open(keystore.Options{Dir: a.configDir()})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer st.Close()
	var ids []string
	for _, acct := range st.Accounts() {
		ids = append(ids, shown(acct.UserID))
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
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
