//go:build unix

package proctest

import (
	"os"
	"os/exec"
	"syscall"
)

// ownGroup starts the process in a process group of its own, so Stop ends it
// and anything it started.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup asks the group to stop, or kills it.
func signalGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

// LockFile holds an exclusive lock (flock) on path, creating it, until unlock
// is called, so test processes take turns at a shared step such as a build or
// an install. exclusive is true here: the lock really excludes the others.
func LockFile(path string) (unlock func(), exclusive bool, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, false, err
	}
	return func() { f.Close() }, true, nil
}
