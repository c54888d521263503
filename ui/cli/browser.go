package cli

import (
	"errors"
	"net/url"
	"os/exec"
	"runtime"
	"strings"
)

// browserEnv names the program that opens a URL, as many tools honour it
// (a command, possibly with arguments; the URL is added as the last one).
const browserEnv = "BROWSER"

// errNoOpener says there is no program here that would open a browser.
var errNoOpener = errors.New("no browser opener here")

// openerCommand is the command line that opens link in the user's browser:
// $BROWSER when set, else the platform's opener. On Linux and the BSDs
// xdg-open is used only with a graphical session: without one (over SSH)
// it would start a text browser on the terminal mxauth is writing to.
func (a *program) openerCommand(link string) ([]string, error) {
	if b := strings.Fields(a.getenv(browserEnv)); len(b) > 0 {
		return append(b, link), nil
	}
	switch runtime.GOOS {
	case "darwin":
		return []string{"open", link}, nil
	case "windows":
		return []string{"rundll32", "url.dll,FileProtocolHandler", link}, nil
	}
	if a.getenv("DISPLAY") == "" && a.getenv("WAYLAND_DISPLAY") == "" {
		return nil, errNoOpener
	}
	return []string{"xdg-open", link}, nil
}

// openBrowser opens link in the user's browser without waiting for it, and
// says whether an opener was started. Only http and https links are opened,
// so a server-provided value cannot become an opener's option or a local file.
func (a *program) openBrowser(link string) error {
	u, err := url.Parse(link)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("not a web address")
	}
	argv, err := a.openerCommand(link)
	if err != nil {
		return err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return errNoOpener
	}
	cmd := exec.Command(path, argv[1:]...)
	// The opener's own chatter must not mix with mxauth's output.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it whenever it ends
	return nil
}
