package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
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

// cookieBrowser is a person's web browser on the authorization server's
// pages: a cookie jar, following redirects, filling in the plain HTML forms
// as a text browser would.
type cookieBrowser struct {
	t  *testing.T
	hc *http.Client
}

func newCookieBrowser(t *testing.T) *cookieBrowser {
	jar, _ := cookiejar.New(nil)
	return &cookieBrowser{t: t, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

var (
	pageFormAction  = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	pageHiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// get fetches a URL and returns where it ended up and the page.
func (b *cookieBrowser) get(u string) (*url.URL, string) {
	b.t.Helper()
	res, err := b.hc.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.Request.URL, string(raw)
}

// submit fills the page's form (its hidden fields plus fields) and posts it.
func (b *cookieBrowser) submit(at *url.URL, page string, fields map[string]string) (*url.URL, string) {
	b.t.Helper()
	m := pageFormAction.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no form on page %s:\n%s", at, page)
	}
	v := url.Values{}
	for _, h := range pageHiddenInput.FindAllStringSubmatch(page, -1) {
		v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	for k, val := range fields {
		v.Set(k, val)
	}
	action, _ := at.Parse(html.UnescapeString(m[1]))
	res, err := b.hc.PostForm(action.String(), v)
	if err != nil {
		b.t.Fatalf("POST %s: %v", action, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.Request.URL, string(raw)
}

// approveDevice opens the approval page, enters the user code, signs in as
// user when asked and answers the consent page with action (approve / deny).
// It returns the last page.
func (b *cookieBrowser) approveDevice(approvalURL, code, user, password, action string) string {
	b.t.Helper()
	at, page := b.get(approvalURL)
	if strings.Contains(page, `name="code"`) {
		at, page = b.submit(at, page, map[string]string{"code": code})
	}
	if strings.Contains(page, `name="password"`) {
		at, page = b.submit(at, page, map[string]string{"username": user, "password": password})
	}
	if !strings.Contains(page, `value="approve"`) {
		b.t.Fatalf("no consent page after entering code %s at %s:\n%s", code, approvalURL, page)
	}
	_, page = b.submit(at, page, map[string]string{"action": action})
	return page
}

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
