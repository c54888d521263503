//go:build !unix

package cli

import (
	"os"
	"os/exec"
)

// forwardedSignals is empty where processes cannot be sent signals: a console's
// Ctrl+C already reaches every process attached to it, the command included.
func forwardedSignals() []os.Signal { return nil }

func passOn(*os.Process, os.Signal) {}

// childExitCode is the command's exit code.
func childExitCode(ee *exec.ExitError) int {
	if code := ee.ExitCode(); code >= 0 {
		return code
	}
	return exitError
}
