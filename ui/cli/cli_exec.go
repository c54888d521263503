package cli

import (
	"context"
	"os"
	"os/exec"
)

const execUsage = `Usage:
  mxauth exec [--account @you:example.org] -- COMMAND [ARGS...]

Runs COMMAND with MATRIX_HOMESERVER, MATRIX_USER_ID and MATRIX_ACCESS_TOKEN set
to the account's homeserver, user ID and a freshly valid access token, and exits
with COMMAND's exit code (128+N when signal N ended it). SIGINT, SIGTERM, SIGHUP
and SIGQUIT sent to mxauth are passed on to COMMAND, and mxauth waits for it;
Ctrl+C at a terminal reaches COMMAND directly, once.`

func runExec(ctx context.Context, a *program, args []string) error {
	fs := a.newFlags("exec", execUsage)
	account := fs.String("account", "", "user ID of the account (default: the default account)")
	// Plain Parse: everything from the command on belongs to the command.
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err)
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return usageErrorf("exec: give a command to run after --")
	}
	svc, acct, err := a.openAccount(*account)
	if err != nil {
		return err
	}
	tok, err := svc.AccessToken(ctx, acct.UserID)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, a.stderr
	cmd.Env = append(os.Environ(),
		"MATRIX_HOMESERVER="+acct.Homeserver,
		"MATRIX_USER_ID="+acct.UserID,
		"MATRIX_ACCESS_TOKEN="+tok.Reveal(),
	)
	return runChild(cmd)
}
