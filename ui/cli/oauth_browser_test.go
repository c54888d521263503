package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// background is mxauth running in the background; done ends it and returns
// its result.
type background struct {
	cmd      *exec.Cmd
	out, err *lockedBuffer
	exited   chan struct{}
	code     int
}

// lockedBuffer is an output buffer read while the process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs mxauth in the background (stdin empty, not a terminal).
func (c *cli) start(ctx context.Context, args ...string) *background {
	c.t.Helper()
	bg := &background{cmd: c.command(ctx, "", args...), out: &lockedBuffer{}, err: &lockedBuffer{}, exited: make(chan struct{})}
	bg.cmd.Stdout, bg.cmd.Stderr = bg.out, bg.err
	if err := bg.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		err := bg.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			bg.code = ee.ExitCode()
		case err != nil:
			bg.code = -1
		}
		close(bg.exited)
	}()
	c.t.Cleanup(func() {
		_ = bg.cmd.Process.Kill()
		<-bg.exited
	})
	return bg
}

// wait waits for the process to end and returns what it did.
func (bg *background) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-bg.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("mxauth %v still running; stderr so far: %s", bg.cmd.Args[1:], bg.err.String())
	}
	return result{bg.out.String(), bg.err.String(), bg.code}
}

// waitStderr polls stderr until re matches it, and returns the submatches.
func (bg *background) waitStderr(t *testing.T, what string, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(bg.err.String()); m != nil {
			return m
		}
		select {
		case <-bg.exited:
			if m := re.FindStringSubmatch(bg.err.String()); m != nil {
				return m
			}
			t.Fatalf("mxauth ended (exit %d) before %s:\nstdout: %s\nstderr: %s", bg.code, what, bg.out.String(), bg.err.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %s on stderr after 30 s: %s", what, bg.err.String())
	return nil
}

// deviceCodeOnStderr is how login prints the device grant's page and code.
var deviceCodeOnStderr = regexp.MustCompile(`open this page[^\n]*\n\s+(\S+)\nand enter the code:\n\s+(\S+)\n`)

// recordingOpener returns a BROWSER value: a script that appends the URL it
// is asked to open to a file, and the file.
func recordingOpener(t *testing.T) (browserEnv, file string) {
	t.Helper()
	dir := t.TempDir()
	file = filepath.Join(dir, "opened")
	script := filepath.Join(dir, "opener")
	body := "#!/bin/sh\nprintf '%s\\n' \"$1\" >> " + strconv.Quote(file) + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return "BROWSER=" + script, file
}

// openedURL waits until the opener recorded a URL and returns it; bg, when
// not nil, is the process expected to open it.
func openedURL(t *testing.T, file string, bg *background) *url.URL {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(file); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			u, err := url.Parse(strings.TrimSpace(strings.Split(string(b), "\n")[0]))
			if err != nil {
				t.Fatalf("the opener got %q: %v", b, err)
			}
			return u
		}
		var exited chan struct{}
		if bg != nil {
			exited = bg.exited
		}
		select {
		case <-exited:
			t.Fatalf("mxauth ended (exit %d) without opening a browser: %s", bg.code, bg.err.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no browser opened after 30 s")
	return nil
}

// callback sends the browser's redirect back to the loopback listener named
// in the authorization URL, with params, and returns the page it shows.
func callback(t *testing.T, authURL *url.URL, params url.Values) (int, string) {
	t.Helper()
	status, page, err := tryCallback(authURL, params)
	if err != nil {
		t.Fatal(err)
	}
	return status, page
}

// tryCallback is callback that reports a listener that no longer answers.
func tryCallback(authURL *url.URL, params url.Values) (int, string, error) {
	redirect, err := url.Parse(authURL.Query().Get("redirect_uri"))
	if err != nil || redirect.Hostname() != "127.0.0.1" {
		return 0, "", fmt.Errorf("authorization URL without a loopback redirect_uri: %s", authURL)
	}
	redirect.RawQuery = params.Encode()
	res, err := (&http.Client{Timeout: 30 * time.Second}).Get(redirect.String())
	if err != nil {
		return 0, "", fmt.Errorf("callback %s: %w", redirect, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw), nil
}
