package app

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

// browser is a person's web browser on the authorization server's pages:
// a cookie jar, following redirects.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

var (
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

func (b *browser) get(u string) (*url.URL, string) {
	b.t.Helper()
	res, err := b.hc.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.Request.URL, string(raw)
}

// submit fills the page's form (hidden fields plus fields) and posts it.
func (b *browser) submit(at *url.URL, page string, fields map[string]string) (*url.URL, string) {
	b.t.Helper()
	m := formAction.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no form on page %s:\n%s", at, page)
	}
	v := url.Values{}
	for _, h := range hiddenInput.FindAllStringSubmatch(page, -1) {
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

// signIn signs the browser in to the authorization server if its page asks.
func (b *browser) signIn(at *url.URL, page, user, password string) (*url.URL, string) {
	if strings.Contains(page, `name="password"`) {
		return b.submit(at, page, map[string]string{"username": user, "password": password})
	}
	return at, page
}

// answerDevice enters the user code on the link page, signs in and answers
// the consent page with action ("approve" or "deny").
func (b *browser) answerDevice(linkURI, code, user, password, action string) {
	b.t.Helper()
	at, page := b.get(linkURI)
	at, page = b.submit(at, page, map[string]string{"code": code})
	at, page = b.signIn(at, page, user, password)
	if _, page = b.submit(at, page, map[string]string{"action": action}); !strings.Contains(page, "return to your device") {
		b.t.Fatalf("consent answer page: %s", page)
	}
}

// authorize opens the authorization URL, signs in and answers the consent
// page; it returns the page the browser ends on (the loopback listener's).
func (b *browser) authorize(authURL, user, password, action string) string {
	b.t.Helper()
	at, page := b.get(authURL)
	at, page = b.signIn(at, page, user, password)
	_, page = b.submit(at, page, map[string]string{"action": action})
	return page
}
