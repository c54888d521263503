//go:build unix

package cli

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// forwardedSignals are the signals exec passes on to its command. One that
// mxauth was started with ignored (nohup, a background job of a script) stays
// ignored, and the command inherits that.
func forwardedSignals() []os.Signal {
	var out []os.Signal
	for _, s := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT} {
		if !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// passOn sends sig to the command. Ctrl+C and Ctrl+\ at a terminal already
// reached the command (the terminal signals its whole foreground process
// group, which the command shares with mxauth); sending them again would
// deliver them twice, which many programs read as "force quit".
func passOn(p *os.Process, sig os.Signal) {
	if (sig == syscall.SIGINT || sig == syscall.SIGQUIT) && fromTerminal(p.Pid) {
		return
	}
	_ = p.Signal(sig) // it may have just ended; Wait reports that
}

// fromTerminal reports whether a keyboard signal reached pid from the
// terminal itself: mxauth is in its terminal's foreground process group and
// pid is still in mxauth's group.
func fromTerminal(pid int) bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false // no controlling terminal: the signal was sent to mxauth alone
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return false
	}
	own := unix.Getpgrp()
	child, err := unix.Getpgid(pid)
	return err == nil && fg == own && child == own
}

// childExitCode is the status a shell would report for the command.
func childExitCode(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := ee.ExitCode(); code >= 0 {
		return code
	}
	return exitError
}
