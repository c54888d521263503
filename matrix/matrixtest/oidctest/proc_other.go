//go:build !unix

package oidctest

import "os/exec"

func ownProcessGroup(*exec.Cmd) {}

// signalGroup has no process groups to use here; killing the server is all there is.
func signalGroup(cmd *exec.Cmd, _ bool) { _ = cmd.Process.Kill() }

// lockFile does not lock here: run one test process at a time for a first install.
func lockFile(string) (unlock func(), err error) { return func() {}, nil }
