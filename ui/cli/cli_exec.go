package cli

import (
	"context"
	"os"
	"os/exec"

	"github.com/spf13/cobra"
)

// execOptions are mxauth exec's flags and the command it runs.
type execOptions struct {
	Account string
	Argv    []string // the command and its arguments, untouched
}

const execLong = `Runs COMMAND with MATRIX_HOMESERVER, MATRIX_USER_ID and MATRIX_ACCESS_TOKEN set
to the account's homeserver, user ID and a freshly valid access token, and exits
with COMMAND's exit code (128+N when signal N ended it). SIGINT, SIGTERM, SIGHUP
and SIGQUIT sent to mxauth are passed on to COMMAND, and mxauth waits for it;
Ctrl+C at a terminal reaches COMMAND directly, once.

` + exitCodesHelp

func newCmdExec(a *program, runF func(*execOptions) error) *cobra.Command {
	opts := &execOptions{}
	cmd := &cobra.Command{
		Use:     "exec -- COMMAND [ARGS...]",
		Short:   "run a command with a fresh access token in its environment",
		Long:    execLong,
		Example: "mxauth exec -- ./bot --verbose\nmxauth exec --account @you:example.org -- sh -c 'echo $MATRIX_USER_ID'",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("exec: give a command to run after --")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Argv = args
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runExec(cmd.Context(), a, opts))
		},
	}
	a.accountFlag(cmd, &opts.Account)
	// Flags end at the command: everything from it on belongs to it.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func runExec(ctx context.Context, a *program, opts *execOptions) error {
	argv := opts.Argv
	svc, acct, err := a.openAccount(opts.Account)
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
