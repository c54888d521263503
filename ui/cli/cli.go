// Package cli is mxauth's command line: every command with its flags, output and
// exit codes, the full-screen app's start and the offline demo's wiring.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"mxauth/matrix"
)

// program is one run of mxauth: its streams and environment.
type program struct {
	ctx     context.Context // ends on Ctrl+C / SIGTERM
	stdin   *os.File
	stdout  io.Writer
	stderr  io.Writer
	getenv  func(string) string
	version string // what --version prints
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *program, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"demo", "the full-screen app against an embedded homeserver (nothing is saved)", runDemo},
		{"login", "sign in with a password or a login token", runLogin},
		{"list", "list accounts with their state and token expiry", runList},
		{"token", "print a currently valid access token", runToken},
		{"login-token", "mint a single-use login token for a new device", runLoginToken},
		{"refresh", "refresh an account's access token now", runRefresh},
		{"devices", "list or delete the account's devices", runDevices},
		{"logout", "sign out on the server and remove local secrets", runLogout},
		{"exec", "run a command with a fresh access token in its environment", runExec},
		{"doctor", "check the keyring, the config directory and every account", runDoctor},
	}
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
	err := a.dispatch(ctx, args)
	if err == nil {
		return exitOK
	}
	var ex *exitStatus
	if errors.As(err, &ex) {
		return ex.code
	}
	fmt.Fprintln(a.stderr, "mxauth: "+shownLine(errorMessage(err)))
	return exitCode(err)
}

// exitStatus ends the process with a code and no message (exec passes its
// child's code through; --help exits 0).
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func (a *program) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return runTUI(ctx, a, nil)
	}
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintln(a.stdout, "mxauth "+a.version)
		return nil
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return a.dispatch(ctx, []string{args[1], "--help"})
		}
		a.printUsage(a.stdout)
		return nil
	}
	if strings.HasPrefix(args[0], "-") {
		return runTUI(ctx, a, args)
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, a, args[1:])
		}
	}
	return usageErrorf("unknown command %q (see mxauth --help)", shown(args[0]))
}

func (a *program) printUsage(w io.Writer) {
	fmt.Fprintln(w, `mxauth manages Matrix login sessions: it signs accounts in, keeps their tokens in
the OS keyring, refreshes them before they expire and hands a login to a new device.

Usage:
  mxauth                 the full-screen session manager
  mxauth COMMAND [flags] one command (each has --help)

Commands:`)
	names := make([]string, 0, len(commands))
	for _, c := range commands {
		names = append(names, c.name)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, c := range commands {
			if c.name == n {
				fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
			}
		}
	}
	fmt.Fprintln(w, `
Flags:
  --version    print the version
  --help       this help

Environment:
  MXAUTH_CONFIG_DIR       where the account list is kept (default: the user config dir + /mxauth)
  MXAUTH_KEYRING_TIMEOUT  how long a command waits for the keyring (default 5s)
  MXAUTH_LOCK_TIMEOUT     how long a command waits for another mxauth process's lock (default 30s)
  MXAUTH_HTTP_TIMEOUT     how long a command waits for each answer from a homeserver (default 30s)
  NO_COLOR                any non-empty value turns colour off

`+exitCodesHelp)
}

// flagSet is a command's flags plus its --help text.
type flagSet struct {
	*flag.FlagSet
	help func()
}

// newFlags makes a flag set whose --help prints the given usage to stdout and
// whose parse errors become one-line usage errors.
func (a *program) newFlags(name, usage string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs.SetOutput(io.Discard)
	// flag calls Usage itself on every parse error; flagError decides instead.
	fs.Usage = func() {}
	fs.help = func() {
		fmt.Fprintln(a.stdout, strings.TrimSpace(usage))
		if hasFlags(fs.FlagSet) {
			fmt.Fprintln(a.stdout, "\nFlags:")
			fs.SetOutput(a.stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
		fmt.Fprintln(a.stdout, "\n"+exitCodesHelp)
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parse parses flags anywhere among the arguments (flag alone stops at the
// first positional one) and returns the positional arguments.
func (a *program) parse(fs *flagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagError turns a parse failure into help (exit 0) or a usage error.
func flagError(fs *flagSet, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fs.help()
		return &exitStatus{exitOK}
	}
	if fs.Name() == "mxauth" { // the full-screen app's own flags
		return usageErrorf("%v (see mxauth --help)", err)
	}
	return usageErrorf("%s: %v (see mxauth %s --help)", fs.Name(), err, fs.Name())
}

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
