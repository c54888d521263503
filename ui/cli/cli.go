// Package cli is mxauth's command line: every command with its flags, output and
// exit codes, the full-screen app's start and the offline demo's wiring.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"charm.land/fang/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"mxauth/matrix"
)

// program is one run of mxauth: its streams and environment. It is what every
// command's constructor gets (the factory of gh's commands): the commands open
// the keyring, the account list and the terminal through it.
type program struct {
	ctx     context.Context // ends on Ctrl+C / SIGTERM
	stdin   *os.File
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
	version string // what --version prints
	// failed is what the command that ran returned (see finish).
	failed error
}

// Main runs one command line (args without the program name) with the given
// streams and returns the exit code. ctx ends on Ctrl+C / SIGTERM.
func Main(ctx context.Context, version string, args []string, stdin *os.File, stdout, stderr io.Writer) int {
	matrix.Version = version
	a := &program{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, version: version}
	return a.main(ctx, args)
}

// main runs one command line and returns the exit code.
func (a *program) main(ctx context.Context, args []string) (code int) {
	a.ctx = ctx
	defer func() {
		// A bug must end in one line and exit 1, not a stack trace: the
		// full-screen app restores the terminal on its own before this.
		if r := recover(); r != nil {
			fmt.Fprintln(a.stderr, "mxauth: internal error:", oneLine(matrix.Sanitize(fmt.Sprint(r))))
			code = exitError
		}
	}()
	root := newRootCmd(a)
	reportArgErrors(a, root)
	root.SetArgs(doubleDashLongFlags(root, args))
	err := fang.Execute(ctx, root,
		fang.WithVersion(a.version),
		fang.WithErrorHandler(func(w io.Writer, _ fang.Styles, err error) { a.printError(w, err) }),
	)
	if err == nil {
		err = a.failed
		a.printError(a.stderr, err)
	} else if refusedByCobra(err) {
		return exitUsage
	}
	return exitStatusOf(err)
}

// refusedByCobra tells a bad command line given to the commands fang and
// cobra add (completion, man), which report it themselves, by cobra's wording.
func refusedByCobra(err error) bool {
	var ce *codedError
	if errors.As(err, &ce) {
		return false
	}
	for _, prefix := range []string{"unknown command ", "accepts ", "requires at least ", "invalid argument "} {
		if strings.HasPrefix(err.Error(), prefix) {
			return true
		}
	}
	return false
}

// finish records what a command returned (or a bad flag or argument) and
// hands cobra nil: main reports it, one line. fang would first ask the
// terminal for its background colour, which costs seconds in a terminal that
// does not answer and must not reach one that exec's child or the full-screen
// app has just handed back.
func (a *program) finish(err error) error {
	a.failed = err
	return nil
}

// reportArgErrors moves every command's argument check into its run, so that
// a bad argument, too, is recorded by finish instead of returned to fang.
func reportArgErrors(a *program, cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		reportArgErrors(a, sub)
	}
	check, run := cmd.Args, cmd.RunE
	if check == nil || run == nil {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return a.finish(err)
		}
		return run(c, args)
	}
}

// printError writes err as one sanitised line (nothing for a bare exit status).
func (a *program) printError(w io.Writer, err error) {
	var ex *exitStatus
	if err == nil || errors.As(err, &ex) {
		return
	}
	fmt.Fprintln(w, "mxauth: "+shownLine(errorMessage(err)))
}

// exitStatusOf is the process's exit code for what the command line returned.
func exitStatusOf(err error) int {
	var ex *exitStatus
	if errors.As(err, &ex) {
		return ex.code
	}
	return exitCode(err)
}

// exitStatus ends the process with a code and no message (exec passes its
// child's code through).
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

const rootLong = `mxauth manages Matrix login sessions: it signs accounts in, keeps their tokens in
the OS keyring, refreshes them before they expire and hands a login to a new device.
Without a command it opens the full-screen session manager: every account with a
live countdown to its token's expiry, refreshed in the background while it runs.

Environment:
  MXAUTH_CONFIG_DIR       where the account list is kept (default: the user config dir + /mxauth)
  MXAUTH_KEYRING_TIMEOUT  how long a command waits for the keyring (default 5s)
  MXAUTH_LOCK_TIMEOUT     how long a command waits for another mxauth process's lock (default 30s)
  MXAUTH_HTTP_TIMEOUT     how long a command waits for each answer from a homeserver (default 30s)
  NO_COLOR                any non-empty value turns colour off

`

// newRootCmd is the whole command line: the full-screen app and every command.
func newRootCmd(a *program) *cobra.Command {
	root := newRootBare(a)
	root.AddCommand(
		newCmdDemo(a, nil),
		newCmdLogin(a, nil),
		newCmdList(a, nil),
		newCmdToken(a, nil),
		newCmdLoginToken(a, nil),
		newCmdRefresh(a, nil),
		newCmdDevices(a, nil),
		newCmdLogout(a, nil),
		newCmdExec(a, nil),
		newCmdDoctor(a, nil),
		newCmdVersion(a),
	)
	for _, cmd := range append(root.Commands(), root) {
		cmd.Long = unwrapParagraphs(cmd.Long)
	}
	return root
}

// unwrapParagraphs joins the lines of each paragraph of a help text into one,
// so that the help fits the terminal's width and the man page flows; indented
// lines (tables, example commands) and the line before them stay as they are.
func unwrapParagraphs(text string) string {
	lines := strings.Split(text, "\n")
	var b strings.Builder
	for i, line := range lines {
		if i > 0 {
			prev := lines[i-1]
			if prev == "" || line == "" || strings.HasPrefix(line, " ") || strings.HasPrefix(prev, " ") || strings.HasSuffix(prev, ":") {
				b.WriteString("\n")
			} else {
				b.WriteString(" ")
			}
		}
		b.WriteString(line)
	}
	return b.String()
}

// newRootBare is the root command without its subcommands: the full-screen
// app, the streams, and the usage-error wording every command shares.
func newRootBare(a *program) *cobra.Command {
	root := &cobra.Command{
		Use:   "mxauth",
		Short: "Matrix login sessions: sign in, keep tokens in the OS keyring, refresh them",
		Long:  rootLong + exitCodesHelp,
		Example: `mxauth login --user @you:example.org
mxauth token
curl -H "Authorization: Bearer $(mxauth token)" https://example.org/_matrix/client/v3/account/whoami
mxauth exec -- ./bot
mxauth completion bash > /etc/bash_completion.d/mxauth
mxauth man > mxauth.1`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q (see mxauth --help)", shown(args[0]))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.finish(runTUI(cmd.Context(), a))
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("mxauth {{.Version}}\n")
	root.SetHelpCommand(newCmdHelp(a))
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return a.finish(flagError(cmd, err))
	})
	// main reports errors, one line each, and never prints usage for them.
	root.SilenceErrors, root.SilenceUsage = true, true
	return root
}

// flagError words a flag the command does not know (or a bad flag value) as
// one usage line that names the help to read.
func flagError(cmd *cobra.Command, err error) error {
	if !cmd.HasParent() {
		return usageErrorf("%v (see mxauth --help)", err)
	}
	return usageErrorf("%s: %v (see %s --help)", cmd.Name(), err, cmd.CommandPath())
}

// noArgs refuses positional arguments, naming the first one.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s: unexpected argument %q", cmd.Name(), shown(args[0]))
	}
	return nil
}

// newCmdHelp is "mxauth help [COMMAND]": the command's --help, and for a
// command that does not exist the same usage error as running it would give
// (cobra's own help command prints the whole help and exits 0).
func newCmdHelp(a *program) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "help about any command",
		Args:  cobra.ArbitraryArgs,
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, c := range cmd.Root().Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name()+"\t"+c.Short)
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, _, err := cmd.Root().Find(args)
			if err != nil || (target == cmd.Root() && len(args) > 0) {
				return a.finish(usageErrorf("unknown command %q (see mxauth --help)", shown(args[0])))
			}
			// As running the command would, so its help lists -h and -v too.
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return a.finish(target.Help())
		},
	}
}

// newCmdVersion keeps "mxauth version" working beside --version.
func newCmdVersion(a *program) *cobra.Command {
	return &cobra.Command{
		Use:    "version",
		Short:  "print the version",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "mxauth "+a.version)
			return a.finish(err)
		},
	}
}

// doubleDashLongFlags keeps the single-dash long flags mxauth has always
// accepted (-json, -account X, -help, -version) working: they become --json
// and so on before cobra, which reads -json as -j -s -o -n, sees them. Only
// arguments before "--" that name a long flag of the command are changed, and
// never a flag's value; exec's child's arguments are left alone.
func doubleDashLongFlags(root *cobra.Command, args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	cmd, positional, takesValue := root, false, false
	for i, arg := range args {
		switch {
		case takesValue:
			takesValue = false
			continue
		case arg == "--":
			return out
		case !strings.HasPrefix(arg, "-") || arg == "-":
			if sub := subcommand(cmd, arg); sub != nil && !positional {
				cmd = sub
				continue
			}
			positional = true
			if cmd.Name() == "exec" {
				return out // the child's own arguments follow
			}
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		f := cmd.Flags().Lookup(name)
		if f == nil && (name == "help" || name == "version") {
			f = &pflag.Flag{Name: name, Value: boolFlag{}}
		}
		if f == nil {
			continue
		}
		if !strings.HasPrefix(arg, "--") {
			out[i] = "-" + arg
		}
		takesValue = !hasValue && f.Value.Type() != "bool"
	}
	return out
}

// subcommand is cmd's subcommand called name, or nil.
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// boolFlag stands in for --help and --version, which cobra adds later.
type boolFlag struct{}

func (boolFlag) String() string   { return "false" }
func (boolFlag) Set(string) error { return nil }
func (boolFlag) Type() string     { return "bool" }

// oneLine keeps messages to one line whatever the error text holds.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// infof writes a human message to stderr. Text arguments (IDs, URLs, error
// texts) are made safe and bounded; the format's own line breaks stay.
func (a *program) infof(format string, args ...any) {
	for i, v := range args {
		switch v := v.(type) {
		case string:
			args[i] = shownLine(v)
		case error:
			args[i] = shownLine(v.Error())
		}
	}
	fmt.Fprintf(a.stderr, format+"\n", args...)
}
