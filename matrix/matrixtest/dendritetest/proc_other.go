//go:build !unix

package dendritetest

import "os/exec"

func ownProcessGroup(*exec.Cmd) {}

// signalGroup has no process groups to use here; killing the server is all there is.
func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }
