// Package browsertest is a person's web browser on the test homeserver's
// authorization pages (matrix/homeserver in delegated mode, under /auth/): a
// cookie jar that follows redirects and fills in the plain HTML forms, with
// the steps the tests take there: answer a device code, sign in and answer
// the consent for an authorization URL, open the account page.
//
// A step that does not find the page it expects fails the test, showing the
// page (control characters dropped, cut short). The package uses the standard
// library only, so that any package's tests can use it, the homeserver's own
// included.
package browsertest

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// Browser is one person's browser: its cookies keep the sign-in between pages.
type Browser struct {
	t  testing.TB
	hc *http.Client
}

// Option changes how a Browser reaches the server.
type Option func(*http.Client)

// Transport sends the browser's requests through rt (for example, a server
// reached in memory inside a synctest bubble).
func Transport(rt http.RoundTripper) Option {
	return func(hc *http.Client) { hc.Transport = rt }
}

// New returns a browser with an empty cookie jar that fails t when a page is
// not what a step expects.
func New(t testing.TB, opts ...Option) *Browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("browsertest: cookie jar: %v", err)
	}
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	for _, o := range opts {
		o(hc)
	}
	return &Browser{t: t, hc: hc}
}

// Page is where the browser ended up after following redirects, and what it shows.
type Page struct {
	URL    *url.URL
	Status int
	Body   string
}

// maxPageBytes bounds what the browser reads of a page.
const maxPageBytes = 1 << 20

// Get opens u.
func (b *Browser) Get(u string) *Page {
	b.t.Helper()
	res, err := b.hc.Get(u)
	if err != nil {
		b.t.Fatalf("browsertest: GET %s: %v", u, err)
	}
	return b.read(res)
}

var (
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// Submit fills in the form of p (its hidden fields, then fields) and posts it.
func (b *Browser) Submit(p *Page, fields map[string]string) *Page {
	b.t.Helper()
	m := formAction.FindStringSubmatch(p.Body)
	if m == nil {
		b.fail("no form", p)
	}
	v := url.Values{}
	for _, h := range hiddenInput.FindAllStringSubmatch(p.Body, -1) {
		v.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	for k, val := range fields {
		v.Set(k, val)
	}
	action, err := p.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		b.fail(fmt.Sprintf("a form posting to %q", m[1]), p)
	}
	res, err := b.hc.PostForm(action.String(), v)
	if err != nil {
		b.t.Fatalf("browsertest: POST %s: %v", action, err)
	}
	return b.read(res)
}

func (b *Browser) read(res *http.Response) *Page {
	b.t.Helper()
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxPageBytes))
	if err != nil {
		b.t.Fatalf("browsertest: reading %s: %v", res.Request.URL, err)
	}
	return &Page{URL: res.Request.URL, Status: res.StatusCode, Body: string(raw)}
}

// Decision is the answer on the consent page, as its form sends it.
type Decision string

const (
	Approve Decision = "approve"
	Deny    Decision = "deny"
)

// Answer is what the person does on the way through the pages.
type Answer struct {
	// User and Password sign in when a page asks; with no User, a page
	// asking to sign in fails the test (the browser must be signed in already).
	User, Password string
	Decision       Decision
	// Device, when set, is the device ID the consent page must name.
	Device string
}

// AnswerDevice opens the device grant's verification page, enters userCode if
// the page asks for it, signs in if asked and answers the consent. The last
// page must tell the person to return to their device; it is returned.
func (b *Browser) AnswerDevice(linkURI, userCode string, a Answer) *Page {
	b.t.Helper()
	p := b.Get(linkURI)
	if strings.Contains(p.Body, `name="code"`) {
		p = b.Submit(p, map[string]string{"code": userCode})
	}
	p = b.signInIfAsked(p, a)
	p = b.consent(p, a)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "return to your device") {
		b.fail(fmt.Sprintf("the page after answering %s to code %s", a.Decision, userCode), p)
	}
	return p
}

// Authorize opens an authorization URL, signs in if asked and answers the
// consent. It returns the page the server's redirect led to (for a native
// client, its loopback listener's).
func (b *Browser) Authorize(authURL string, a Answer) *Page {
	b.t.Helper()
	p := b.Get(authURL)
	p = b.signInIfAsked(p, a)
	return b.consent(p, a)
}

// Account opens the account page at accountURL (as a client links to it, with
// any action in its query) and signs in as user if asked.
func (b *Browser) Account(accountURL, user, password string) *Page {
	b.t.Helper()
	return b.signInIfAsked(b.Get(accountURL), Answer{User: user, Password: password})
}

func isSignIn(p *Page) bool { return strings.Contains(p.Body, `name="password"`) }

// signInIfAsked answers p when it is the sign-in page; the next page must not be.
func (b *Browser) signInIfAsked(p *Page, a Answer) *Page {
	b.t.Helper()
	if !isSignIn(p) {
		return p
	}
	if a.User == "" {
		b.fail("a page other than the sign-in page (this browser has no user to sign in as)", p)
	}
	next := b.Submit(p, map[string]string{"username": a.User, "password": a.Password})
	if isSignIn(next) {
		b.fail("the sign-in as "+a.User+" to be accepted", next)
	}
	return next
}

// consent answers the consent page p with a.Decision.
func (b *Browser) consent(p *Page, a Answer) *Page {
	b.t.Helper()
	if a.Decision != Approve && a.Decision != Deny {
		b.t.Fatalf("browsertest: the decision %q is neither %q nor %q", a.Decision, Approve, Deny)
	}
	if !strings.Contains(p.Body, `name="action" value="approve"`) {
		b.fail("the consent page", p)
	}
	if a.Device != "" && !strings.Contains(p.Body, a.Device) {
		b.fail("a consent page naming device "+a.Device, p)
	}
	return b.Submit(p, map[string]string{"action": string(a.Decision)})
}

// fail ends the test: the browser expected want and found p.
func (b *Browser) fail(want string, p *Page) {
	b.t.Helper()
	b.t.Fatalf("browsertest: expected %s at %s (HTTP %d); the page:\n%s", want, p.URL, p.Status, shown(p.Body))
}

// maxShown bounds how much of a page a failure message shows.
const maxShown = 2000

// shown is a page as a failure message shows it: without control or
// direction-changing characters (a page could carry terminal escapes), and
// cut after maxShown bytes.
func shown(body string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			return -1
		}
		return r
	}, body)
	if len(clean) <= maxShown {
		return clean
	}
	cut := maxShown
	for !utf8.RuneStart(clean[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d more bytes)", clean[:cut], len(clean)-cut)
}
