package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"mxauth/matrix/matrixtest/dendritetest"
	"mxauth/matrix/matrixtest/oidctest"
)

// skippedLine says in one line which real components the tests of the whole
// module could not use on this machine, and why. This package runs last in
// `go test ./...` (its import path sorts last) and checks all five.
func skippedLine() string {
	var skipped []string
	if keyringErr != nil {
		skipped = append(skipped, fmt.Sprintf("real keyring (%v)", keyringErr))
	}
	if _, err := exec.LookPath("tmux"); err != nil {
		skipped = append(skipped, "tmux (not installed)")
	}
	spec := filepath.Join("..", "..", "..", "shared", "spec", "openapi")
	if st, err := os.Stat(spec); err != nil || !st.IsDir() {
		skipped = append(skipped, "spec files (no "+filepath.Clean(filepath.Join("..", "shared", "spec", "openapi"))+" beside the checkout)")
	}
	if why := dendritetest.SkipReason(); why != "" {
		skipped = append(skipped, "real homeserver ("+why+")")
	}
	if why := oidctest.SkipReason(); why != "" {
		skipped = append(skipped, "real authorization server ("+why+")")
	}
	if len(skipped) == 0 {
		return "mxauth tests: nothing skipped (real keyring, tmux, spec files, real homeserver and real authorization server all used)"
	}
	return "mxauth tests skipped: " + strings.Join(skipped, "; ")
}

// reportSkipped makes the line visible. `go test ./...` shows a passing
// package's output only with -v, so the line goes to the go command's own
// standard output when that is a terminal or a pipe (on Linux, through
// /proc), else to the terminal; failing that to stderr, which go test shows
// when the package fails. In CI the switches make every component mandatory,
// so nothing is skipped there.
func reportSkipped() {
	line := skippedLine()
	for _, path := range []string{fmt.Sprintf("/proc/%d/fd/1", os.Getppid()), "/dev/tty"} {
		if strings.HasPrefix(path, "/proc/") && !parentIsGo() {
			continue
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		// A regular file would be written at its end while go writes at its
		// own offset, over this line: only streams are used.
		if err == nil && st.Mode()&(os.ModeNamedPipe|os.ModeCharDevice|os.ModeSocket) != 0 {
			fmt.Fprintln(f, line)
			f.Close()
			return
		}
		f.Close()
	}
	fmt.Fprintln(os.Stderr, line)
}

// parentIsGo says whether the go command started this test binary.
func parentIsGo() bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", os.Getppid()))
	return err == nil && filepath.Base(exe) == "go"
}
