package ui

import (
	"errors"
	"net/url"
	"os"
	"os/exec"
	"runtime"
)

// platformOpener is how this computer opens an address in its browser: the
// program and its leading arguments, or nil when there is no browser to
// open. On Linux and the BSDs that needs a graphical session: without one,
// xdg-open falls back to a text browser, which would take over the very
// terminal the app is drawing on.
func platformOpener(goos string, getenv func(string) string, lookPath func(string) (string, error)) []string {
	var argv []string
	switch goos {
	case "darwin":
		argv = []string{"open"}
	case "windows":
		argv = []string{"rundll32", "url.dll,FileProtocolHandler"}
	case "android", "ios", "plan9", "js", "wasip1":
		return nil
	default:
		if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
			return nil
		}
		argv = []string{"xdg-open"}
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return nil
	}
	return append([]string{path}, argv[1:]...)
}

// browserOpener returns a function that opens an address in this computer's
// browser, or nil when there is none.
func browserOpener() func(string) error {
	argv := platformOpener(runtime.GOOS, os.Getenv, exec.LookPath)
	if argv == nil {
		return nil
	}
	return func(addr string) error { return runOpener(argv, addr) }
}

// runOpener starts the opener on addr without a shell and without the
// terminal (its output would land on the screen), and reaps it in the
// background. Only http and https addresses are passed on, so nothing from
// a server can reach the opener as an option or a local file.
func runOpener(argv []string, addr string) error {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("not a web address")
	}
	cmd := exec.Command(argv[0], append(argv[1:len(argv):len(argv)], addr)...)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}
