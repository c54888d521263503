//go:build !unix

package proctest

import "os/exec"

func ownGroup(*exec.Cmd) {}

// signalGroup has no process groups to use here; killing the server is all there is.
func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }

// LockFile does not lock here: exclusive is false, so a caller must allow for
// another process doing the same step at the same time.
func LockFile(string) (unlock func(), exclusive bool, err error) { return func() {}, false, nil }
