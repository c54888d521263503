package cli

import (
	"context"
	"fmt"
)

const tokenUsage = `Usage:
  mxauth token [--account @you:example.org]

Prints a currently valid access token and nothing else, refreshing it first if
it is about to expire. Meant for scripts: curl -H "Authorization: Bearer $(mxauth token)" ...`

func runToken(ctx context.Context, a *program, args []string) error {
	fs := a.newFlags("token", tokenUsage)
	account := fs.String("account", "", "user ID of the account (default: the default account)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("token: unexpected argument %q", shown(pos[0]))
	}
	svc, err := a.openService(openOptions{})
	if err != nil {
		return err
	}
	tok, err := svc.AccessToken(ctx, *account)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, tok.Reveal())
	return err
}
