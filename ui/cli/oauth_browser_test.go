package cli

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
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
