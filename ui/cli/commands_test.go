package cli

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The commands' flags and arguments, parsed in process: each test builds one
// command with a runF that records the options instead of running it.

// commandNames are mxauth's own commands (not cobra's help and completion).
func commandNames() []string {
	var names []string
	for _, c := range newRootCmd(&program{}).Commands() {
		if !c.Hidden {
			names = append(names, c.Name())
		}
	}
	return names
}

// execute runs cmd under the root, as "mxauth NAME args...", with the
// single-dash long flags rewritten as main does, and returns what cobra
// returned.
func execute(t *testing.T, a *program, cmd *cobra.Command, args ...string) error {
	t.Helper()
	root := newRootBare(a)
	root.AddCommand(cmd)
	reportArgErrors(a, root)
	root.SetArgs(doubleDashLongFlags(root, append([]string{cmd.Name()}, args...)))
	if err := root.Execute(); err != nil {
		t.Fatalf("cobra returned %v; every failure is main's to report", err)
	}
	return a.failed
}

// parsed runs cmd and returns the options its runF saw (nil if it was not called).
func parsed[O any](t *testing.T, newCmd func(*program, func(*O) error) *cobra.Command, args ...string) (*O, error) {
	t.Helper()
	var got *O
	a := &program{stdout: io.Discard, stderr: io.Discard}
	err := execute(t, a, newCmd(a, func(o *O) error { got = o; return nil }), args...)
	return got, err
}

// wantOptions checks that args parse into want.
func wantOptions[O any](t *testing.T, newCmd func(*program, func(*O) error) *cobra.Command, want O, args ...string) {
	t.Helper()
	got, err := parsed(t, newCmd, args...)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if got == nil || !reflect.DeepEqual(*got, want) {
		t.Fatalf("%q parsed to %+v, want %+v", args, got, want)
	}
}

// wantUsageError checks that args are refused as a usage error (exit 2) with a
// message containing want, before the command runs.
func wantUsageError[O any](t *testing.T, newCmd func(*program, func(*O) error) *cobra.Command, want string, args ...string) {
	t.Helper()
	got, err := parsed(t, newCmd, args...)
	if got != nil {
		t.Fatalf("%q ran with %+v", args, got)
	}
	if exitCode(err) != exitUsage || !strings.Contains(errorMessage(err), want) {
		t.Fatalf("%q: %v (exit %d), want a usage error saying %q", args, err, exitCode(err), want)
	}
}

func TestTokenFlags(t *testing.T) {
	wantOptions(t, newCmdToken, tokenOptions{})
	wantOptions(t, newCmdToken, tokenOptions{Account: "@a:b"}, "--account", "@a:b")
	wantOptions(t, newCmdToken, tokenOptions{Account: "@a:b"}, "--account=@a:b")
	wantOptions(t, newCmdToken, tokenOptions{Account: "@a:b"}, "-account", "@a:b")
	wantUsageError(t, newCmdToken, `token: unexpected argument "extra"`, "extra")
	wantUsageError(t, newCmdToken, "token: unknown flag: --nope (see mxauth token --help)", "--nope")
	wantUsageError(t, newCmdToken, "token: flag needs an argument: --account (see mxauth token --help)", "--account")
}

func TestListFlags(t *testing.T) {
	wantOptions(t, newCmdList, listOptions{})
	wantOptions(t, newCmdList, listOptions{JSON: true}, "--json")
	wantOptions(t, newCmdList, listOptions{JSON: true}, "-json")
	wantOptions(t, newCmdList, listOptions{JSON: false}, "--json=false")
	wantUsageError(t, newCmdList, `list: unexpected argument "x"`, "--json", "x")
	wantUsageError(t, newCmdList, "list: unknown flag: --account", "--account", "@a:b")
}

func TestRefreshFlags(t *testing.T) {
	wantOptions(t, newCmdRefresh, refreshOptions{Account: "@a:b", JSON: true}, "--json", "--account", "@a:b")
	wantUsageError(t, newCmdRefresh, `refresh: unexpected argument "now"`, "now")
}

func TestLoginFlags(t *testing.T) {
	wantOptions(t, newCmdLogin, loginOptions{User: "@a:b", PasswordStdin: true, JSON: true},
		"--user", "@a:b", "--password-stdin", "--json")
	wantOptions(t, newCmdLogin, loginOptions{User: "a", Homeserver: "http://h.example", DeviceName: "-laptop-", InsecureHTTP: true},
		"--homeserver", "http://h.example", "--user", "a", "--device-name", "-laptop-", "--insecure-http")
	// A login token names its user: the homeserver alone will do.
	wantOptions(t, newCmdLogin, loginOptions{Homeserver: "https://h.example", LoginTokenStdin: true},
		"--homeserver", "https://h.example", "--login-token-stdin")
	wantUsageError(t, newCmdLogin, "login: --user is required (e.g. --user @you:example.org)")
	wantUsageError(t, newCmdLogin, "login: --user is required", "--login-token-stdin")
	wantUsageError(t, newCmdLogin, "login: use either --password-stdin or --login-token-stdin",
		"--user", "@a:b", "--password-stdin", "--login-token-stdin")
	wantUsageError(t, newCmdLogin, `login: unexpected argument "@a:b"`, "@a:b")
	wantOptions(t, newCmdLogin, loginOptions{User: "@a:b", QR: true, JSON: true}, "--user", "@a:b", "--qr", "--json")
	wantOptions(t, newCmdLogin, loginOptions{Homeserver: "https://h.example", Browser: true}, "--homeserver", "https://h.example", "--browser")
	wantOptions(t, newCmdLogin, loginOptions{User: "@a:b", Password: true}, "--user", "@a:b", "--password")
	wantUsageError(t, newCmdLogin, "login: --user is required", "--homeserver", "https://h.example", "--password")
	wantUsageError(t, newCmdLogin, "login: --browser signs in through OAuth 2.0", "--user", "@a:b", "--browser", "--password-stdin")
	wantUsageError(t, newCmdLogin, "login: --qr shows the page of a sign-in with a code", "--user", "@a:b", "--qr", "--browser")
}

func TestLoginTokenFlags(t *testing.T) {
	wantOptions(t, newCmdLoginToken, loginTokenOptions{Account: "@a:b", PasswordStdin: true, QR: true, JSON: true},
		"--qr", "--account", "@a:b", "--json", "--password-stdin")
	wantUsageError(t, newCmdLoginToken, `login-token: unexpected argument "x"`, "x")
}

func TestDevicesFlags(t *testing.T) {
	wantOptions(t, newCmdDevices, devicesOptions{JSON: true}, "--json")
	// Flags anywhere among the IDs; after "--" an ID may look like a flag;
	// a repeated ID is deleted once.
	wantOptions(t, newCmdDevices, devicesOptions{Account: "@a:b", PasswordStdin: true, Delete: []string{"A", "B", "--C"}},
		"delete", "A", "--password-stdin", "B", "--account", "@a:b", "A", "--", "--C")
	wantUsageError(t, newCmdDevices, `devices: unknown subcommand "rename" (only delete)`, "rename", "A")
	wantUsageError(t, newCmdDevices, "devices delete: give the IDs of the devices to delete", "delete")
	wantOptions(t, newCmdDevices, devicesOptions{Delete: []string{"A"}, QR: true, Open: true}, "delete", "A", "--qr", "--open")
	wantUsageError(t, newCmdDevices, "devices: unknown flag: --all", "--all")
}

func TestLogoutFlags(t *testing.T) {
	wantOptions(t, newCmdLogout, logoutOptions{Account: "@a:b", Local: true}, "--account", "@a:b", "--local")
	wantOptions(t, newCmdLogout, logoutOptions{All: true}, "--all")
	wantUsageError(t, newCmdLogout, "logout: use either --account or --all", "--all", "--account", "@a:b")
	wantUsageError(t, newCmdLogout, `logout: unexpected argument "@a:b"`, "@a:b")
}

func TestExecFlags(t *testing.T) {
	// Everything after "--" is the child's, however flag-like.
	wantOptions(t, newCmdExec, execOptions{Account: "@a:b", Argv: []string{"sh", "-c", "echo $0", "-x", "--account", "--"}},
		"--account", "@a:b", "--", "sh", "-c", "echo $0", "-x", "--account", "--")
	// Without "--" flags end at the command, so its own flags stay its own.
	wantOptions(t, newCmdExec, execOptions{Argv: []string{"env", "--account", "@x:y", "-json"}},
		"env", "--account", "@x:y", "-json")
	wantOptions(t, newCmdExec, execOptions{Account: "@a:b", Argv: []string{"env", "--help"}},
		"-account", "@a:b", "env", "--help")
	wantUsageError(t, newCmdExec, "exec: give a command to run after --")
	wantUsageError(t, newCmdExec, "exec: give a command to run after --", "--account", "@a:b", "--")
	wantUsageError(t, newCmdExec, "exec: unknown flag: --json", "--json", "--", "env")
}

func TestDemoFlags(t *testing.T) {
	wantOptions(t, newCmdDemo, demoOptions{Accounts: 100}, "--accounts", "100")
	wantOptions(t, newCmdDemo, demoOptions{Serve: "127.0.0.1:8008", Accounts: 3}, "--serve", "127.0.0.1:8008", "--accounts=3")
	wantUsageError(t, newCmdDemo, "demo: --accounts must be between 0 and 2000", "--accounts", "2001")
	wantUsageError(t, newCmdDemo, "demo: --accounts must be between 0 and 2000", "--accounts=-1")
	wantUsageError(t, newCmdDemo, `demo: invalid argument "many" for "--accounts" flag`, "--accounts", "many")
	wantUsageError(t, newCmdDemo, "demo: --serve 0.0.0.0:8008 would listen beyond this machine", "--serve", "0.0.0.0:8008")
	wantUsageError(t, newCmdDemo, "demo: --serve wants HOST:PORT", "--serve", "8008")
	wantOptions(t, newCmdDemo, demoOptions{Serve: "127.0.0.1:8009", OAuth: true}, "--serve", "127.0.0.1:8009", "--oauth")
	wantUsageError(t, newCmdDemo, "demo: --oauth goes with --serve", "--oauth")
}

func TestDoctorFlags(t *testing.T) {
	wantOptions(t, newCmdDoctor, doctorOptions{})
	wantUsageError(t, newCmdDoctor, `doctor: unexpected argument "now"`, "now")
}

// TestMainReportsOneLine: what cobra refuses comes out as one line and exit 2,
// with the wording every command shares.
func TestMainReportsOneLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "mxauth: unknown flag: --bogus (see mxauth --help)\n"},
		{[]string{"list", "--bogus"}, "mxauth: list: unknown flag: --bogus (see mxauth list --help)\n"},
		{[]string{"frobnicate"}, "mxauth: unknown command \"frobnicate\" (see mxauth --help)\n"},
		{[]string{"token", "\x1b[2Jx\ny"}, "mxauth: token: unexpected argument \"x y\"\n"},
		{[]string{"exec"}, "mxauth: exec: give a command to run after --\n"},
		{[]string{"help", "frobnicate"}, "mxauth: unknown command \"frobnicate\" (see mxauth --help)\n"},
	} {
		var stdout, stderr strings.Builder
		a := &program{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		if code := a.main(t.Context(), tc.args); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", tc.args, code, exitUsage)
		}
		if stderr.String() != tc.want || stdout.String() != "" {
			t.Errorf("%q: stderr %q stdout %q, want stderr %q", tc.args, stderr.String(), stdout.String(), tc.want)
		}
	}
}

// TestCommandFailureIsMapped: a command's own error reaches main's mapping.
func TestCommandFailureIsMapped(t *testing.T) {
	var stderr strings.Builder
	a := &program{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	fail := &cobra.Command{Use: "fail", RunE: func(*cobra.Command, []string) error {
		return a.finish(&codedError{exitSignIn, errors.New("no such account")})
	}}
	if err := execute(t, a, fail); exitStatusOf(err) != exitSignIn || stderr.Len() != 0 {
		t.Fatalf("recorded %v (exit %d), printed %q", err, exitStatusOf(err), stderr.String())
	}
}

func TestUnwrapParagraphs(t *testing.T) {
	in := "One paragraph\nin two lines.\n\nA list:\n  a  first\n  b  second\nand after it\ntext."
	want := "One paragraph in two lines.\n\nA list:\n  a  first\n  b  second\nand after it text."
	if got := unwrapParagraphs(in); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDoubleDashLongFlags(t *testing.T) {
	root := newRootCmd(&program{})
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-version"}, []string{"--version"}},
		{[]string{"-help"}, []string{"--help"}},
		{[]string{"list", "-json"}, []string{"list", "--json"}},
		{[]string{"list", "-json=true", "-h"}, []string{"list", "--json=true", "-h"}},
		// A flag's value is never touched, even when it looks like a flag.
		{[]string{"login", "-user", "-json", "-json"}, []string{"login", "--user", "-json", "--json"}},
		// Not a flag of that command, or after "--": left for cobra to judge.
		{[]string{"list", "-account", "x"}, []string{"list", "-account", "x"}},
		{[]string{"devices", "delete", "-json", "--", "-json"}, []string{"devices", "delete", "--json", "--", "-json"}},
		// exec's child's arguments are its own.
		{[]string{"exec", "-account", "@a:b", "env", "-account"}, []string{"exec", "--account", "@a:b", "env", "-account"}},
	} {
		if got := doubleDashLongFlags(root, tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q became %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFlagHelpFirstWords: the help shows each flag's description with its
// first word title-cased (the rest of that word lowercased), so a first word
// such as "OAuth" or "URL" would read "Oauth" or "Url": such words go later.
func TestFlagHelpFirstWords(t *testing.T) {
	var check func(c *cobra.Command)
	check = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			first, _, _ := strings.Cut(strings.TrimSpace(f.Usage), " ")
			if len(first) > 1 && strings.ToLower(first[1:]) != first[1:] {
				t.Errorf("%s --%s: the help would lowercase %q in %q", c.CommandPath(), f.Name, first, f.Usage)
			}
		})
		for _, sub := range c.Commands() {
			check(sub)
		}
	}
	check(newRootCmd(&program{}))
}
