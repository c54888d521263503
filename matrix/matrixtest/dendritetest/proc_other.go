//go:build !unix

package dendritetest

import "os/exec"

func ownProcessGroup(*exec.Cmd) {}

// signalGroup has no process groups to use here; killing the server is all there is.
func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }

// lockFile does not lock here: two processes may both build, and the first complete build
// renamed into place is the one both use.
func lockFile(string) (unlock func(), exclusive bool, err error) { return func() {}, false, nil }
