package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mxauth/keystore/keyringtest"
	"mxauth/matrix/homeserver"
)

// TestFaultExecSignals sends each signal exec passes on to a running
// `mxauth exec`: the command must receive it, mxauth must wait for the command
// and exit with its status: 128+N when the signal ended it, the command's own
// code when it handled the signal.
func TestFaultExecSignals(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)
	signals := []struct {
		name string
		sig  syscall.Signal
	}{{"INT", syscall.SIGINT}, {"TERM", syscall.SIGTERM}, {"HUP", syscall.SIGHUP}, {"QUIT", syscall.SIGQUIT}}
	for _, s := range signals {
		t.Run(s.name+" ends the command", func(t *testing.T) {
			c.t = t
			// exec: the shell becomes sleep, which the signal ends.
			code, took := execSignalled(t, c, s.sig, `echo ready; exec sleep 60`)
			if want := 128 + int(s.sig); code != want {
				t.Fatalf("the command died of SIG%s: want exit %d, got %d", s.name, want, code)
			}
			t.Logf("figure: SIG%s to mxauth exec: exit %d after %v", s.name, code, took.Round(time.Millisecond))
		})
		t.Run(s.name+" handled by the command", func(t *testing.T) {
			c.t = t
			script := `trap 'exit 42' ` + s.name + `; echo ready; while :; do sleep 0.05; done`
			code, _ := execSignalled(t, c, s.sig, script)
			if code != 42 {
				t.Fatalf("the command handles SIG%s and exits 42: mxauth exited %d", s.name, code)
			}
		})
	}
}

// execSignalled runs `mxauth exec -- sh -c script` in a session of its own
// (no controlling terminal), waits for the script to print "ready", signals
// mxauth and returns mxauth's exit code and how long it took to exit.
func execSignalled(t *testing.T, c *cli, sig syscall.Signal, script string) (int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.command(ctx, "", "exec", "--", "sh", "-c", `echo "pid $$"; `+script)
	cmd.Dir = t.TempDir() // a SIGQUIT core dump, if enabled, lands here
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The whole session goes when the test ends, whatever mxauth did.
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()
	lines := bufio.NewScanner(out)
	for lines.Scan() && lines.Text() != "ready" {
	}
	if lines.Err() != nil {
		t.Fatal(lines.Err())
	}
	waited := make(chan error, 1)
	// Nothing more is read: Wait returns when mxauth exits, whatever its
	// command still holds open.
	go func() { waited <- cmd.Wait() }()
	start := time.Now()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-waited:
	case <-time.After(20 * time.Second):
		t.Fatalf("mxauth exec still running 20 s after %v; stderr: %s", sig, stderr.String())
	}
	took := time.Since(start)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, took
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), took
	}
	t.Fatalf("mxauth exec itself was ended by %v (%v); stderr: %s", sig, err, stderr.String())
	return 0, 0
}

// TestFaultExecCtrlCOnce presses Ctrl+C once at a real terminal (tmux) while
// `mxauth exec` runs a command that counts its SIGINTs: the terminal signals
// the whole foreground process group, so the command must see it once, not a
// second time passed on by mxauth, and mxauth exits with the command's code.
func TestFaultExecCtrlCOnce(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("MXAUTH_E2E_TMUX") == "1" {
			t.Fatal("MXAUTH_E2E_TMUX=1 but tmux is not installed")
		}
		t.Skip("tmux not installed (set MXAUTH_E2E_TMUX=1 to require it)")
	}
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range keyringtest.Merge(keyringEnv, []string{"MXAUTH_CONFIG_DIR=" + c.dir, "NO_COLOR=1", "PATH=" + os.Getenv("PATH"), sigintCounterEnv + "=1"}) {
		env = append(env, fmt.Sprintf("%q", kv))
	}
	// The launching shell survives the Ctrl+C (a handler is not inherited
	// across exec) to report mxauth's exit code.
	launcher := filepath.Join(t.TempDir(), "launch.sh")
	script := fmt.Sprintf("trap : INT\nenv -i %s %q exec -- %q\necho \"EXIT=$?\"\nsleep 60\n", strings.Join(env, " "), binPath, self)
	if err := os.WriteFile(launcher, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}

	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-exec-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	m.must("new-session", "-d", "-s", "e2e", "-x", "100", "-y", "20", "sh "+launcher)
	m.wait("the command running", regexp.MustCompile(`(?m)^ready$`))
	m.must("send-keys", "-t", "e2e", "C-c")
	screen, sub := m.wait("mxauth's exit", regexp.MustCompile(`(?s)SIGINTs: (\d+).*EXIT=(\d+)`))
	if sub[1] != "1" {
		t.Fatalf("one Ctrl+C reached the command %s times:\n%s", sub[1], screen)
	}
	if sub[2] != "42" {
		t.Fatalf("mxauth exec exited %s, want the command's 42:\n%s", sub[2], screen)
	}
}

// sigintCounterEnv makes the test binary, run as exec's command, count the
// SIGINTs it receives instead of running tests.
const sigintCounterEnv = "MXAUTH_TEST_COUNT_SIGINT"

func init() {
	if os.Getenv(sigintCounterEnv) == "1" {
		countSIGINTs()
	}
}

// countSIGINTs says ready, waits for a SIGINT, then gives a second copy of it
// a second to arrive, prints how many came and exits 42. Go's handler takes
// each delivery at once, so copies sent milliseconds apart are counted apart.
func countSIGINTs() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, os.Interrupt)
	fmt.Println("ready")
	<-sigs
	n := 1
	settle := time.After(time.Second)
	for counting := true; counting; {
		select {
		case <-sigs:
			n++
		case <-settle:
			counting = false
		}
	}
	fmt.Printf("SIGINTs: %d\n", n)
	os.Exit(42)
}
