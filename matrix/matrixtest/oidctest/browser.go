package oidctest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// Browser is a person's browser at the authorization server: a cookie jar
// that reads the pages and submits their forms. It follows redirects on the
// issuer and stops at one leading elsewhere (the client's redirect URI).
type Browser struct {
	s *Server
	c *http.Client
	// Trace, when set, sees each page the browser lands on.
	Trace func(method, url string, status int, body string)
}

// Browser returns a browser with an empty cookie jar.
func (s *Server) Browser() *Browser {
	jar, _ := cookiejar.New(nil)
	issuer, _ := url.Parse(s.Issuer)
	return &Browser{s: s, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != issuer.Host || len(via) > 20 {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// Decision is what the person answers on the consent page.
type Decision bool

const (
	Approve Decision = true
	Deny    Decision = false
)

// page is one HTML page the browser is on.
type page struct {
	url    *url.URL
	status int
	body   string
	// location is set when the server sent the browser off the issuer.
	location string
}

func (b *Browser) do(ctx context.Context, method, target string, form url.Values) (*page, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	p := &page{url: resp.Request.URL, status: resp.StatusCode, body: string(raw)}
	if b.Trace != nil {
		b.Trace(method, resp.Request.URL.String(), resp.StatusCode, p.body)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		loc, err := resp.Location()
		if err != nil {
			return nil, fmt.Errorf("redirect without a location from %s", resp.Request.URL)
		}
		p.location = loc.String()
	}
	return p, nil
}

// htmlForm is a form of a page: where it posts and its hidden fields.
type htmlForm struct {
	id, action string
	fields     url.Values
}

var (
	formRE  = regexp.MustCompile(`(?is)<form\b([^>]*)>(.*?)</form>`)
	inputRE = regexp.MustCompile(`(?is)<input\b([^>]*)>`)
	attrRE  = regexp.MustCompile(`(?is)([a-z_-]+)\s*=\s*"([^"]*)"`)
)

func attrs(s string) map[string]string {
	out := map[string]string{}
	for _, m := range attrRE.FindAllStringSubmatch(s, -1) {
		out[strings.ToLower(m[1])] = html.UnescapeString(m[2])
	}
	return out
}

func (p *page) forms() []htmlForm {
	var out []htmlForm
	for _, m := range formRE.FindAllStringSubmatch(p.body, -1) {
		a := attrs(m[1])
		f := htmlForm{id: a["id"], action: a["action"], fields: url.Values{}}
		for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
			ia := attrs(in[1])
			if ia["type"] == "hidden" && ia["name"] != "" {
				f.fields.Set(ia["name"], ia["value"])
			}
		}
		out = append(out, f)
	}
	return out
}

func (p *page) form(match func(htmlForm) bool) (htmlForm, bool) {
	for _, f := range p.forms() {
		if match(f) {
			return f, true
		}
	}
	return htmlForm{}, false
}

func (b *Browser) submit(ctx context.Context, p *page, f htmlForm, extra url.Values) (*page, error) {
	target, err := p.url.Parse(f.action)
	if err != nil {
		return nil, err
	}
	for k, v := range extra {
		f.fields[k] = v
	}
	return b.do(ctx, http.MethodPost, target.String(), f.fields)
}

// ErrPage is a page the browser did not expect; its text says which.
var ErrPage = errors.New("unexpected page at the authorization server")

func pageError(p *page) error {
	text := p.body
	if len(text) > 600 {
		text = text[:600]
	}
	return fmt.Errorf("%w: %s (HTTP %d): %s", ErrPage, p.url, p.status, text)
}

// drive answers the pages from p on: the device code, its confirmation, the
// sign-in as user, and the consent. It returns the last page: one without a
// form, or a redirect off the issuer.
func (b *Browser) drive(ctx context.Context, p *page, userCode, user, password string, d Decision) (*page, error) {
	for range 12 {
		if p.location != "" {
			return p, nil
		}
		if p.status >= 400 {
			return nil, pageError(p)
		}
		if strings.Contains(p.body, `class="problem"`) {
			return p, nil // the server says why it stopped; the caller judges
		}
		var next *page
		var err error
		if f, ok := p.form(func(f htmlForm) bool { return f.id == "op.deviceInputForm" }); ok {
			next, err = b.submit(ctx, p, f, url.Values{"user_code": {userCode}})
		} else if f, ok := p.form(func(f htmlForm) bool { return f.id == "op.deviceConfirmForm" }); ok {
			next, err = b.submit(ctx, p, f, nil)
		} else if f, ok := p.form(func(f htmlForm) bool { return strings.HasSuffix(f.action, "/login") }); ok {
			next, err = b.submit(ctx, p, f, url.Values{"username": {user}, "password": {password}})
		} else if f, ok := p.form(func(f htmlForm) bool { return strings.HasSuffix(f.action, consentAction(d)) }); ok {
			next, err = b.submit(ctx, p, f, nil)
		} else if f, ok := p.form(func(f htmlForm) bool { return f.id == "account.confirm" }); ok {
			next, err = b.submit(ctx, p, f, nil)
		} else if fs := p.forms(); len(fs) == 1 && fs[0].id == "" && strings.Contains(p.body, "forms[0].submit()") {
			next, err = b.submit(ctx, p, fs[0], nil) // a form the page's script submits on load
		} else {
			return p, nil
		}
		if err != nil {
			return nil, err
		}
		p = next
	}
	return nil, fmt.Errorf("%w: the sign-in did not end after 12 pages, at %s", ErrPage, p.url)
}

func consentAction(d Decision) string {
	if d {
		return "/confirm"
	}
	return "/abort"
}

// ApproveDevice opens the verification URI (the plain one or the one with the
// code), types userCode, signs in as user and answers the consent with d. It
// returns the text of the last page.
func (b *Browser) ApproveDevice(ctx context.Context, verificationURI, userCode, user, password string, d Decision) (string, error) {
	p, err := b.do(ctx, http.MethodGet, verificationURI, nil)
	if err != nil {
		return "", err
	}
	last, err := b.drive(ctx, p, userCode, user, password, d)
	if err != nil {
		return "", err
	}
	if last.location != "" {
		return "", fmt.Errorf("%w: the device sign-in sent the browser to %s", ErrPage, last.location)
	}
	if last.status != http.StatusOK || (d == Approve && strings.Contains(last.body, `class="problem"`)) {
		return "", pageError(last)
	}
	return last.body, nil
}

// Authorize opens an authorization URL, signs in as user and answers the
// consent with d. It returns the redirect the server sent the browser to (the
// client's redirect URI with code and state, or error), without following it.
func (b *Browser) Authorize(ctx context.Context, authURL, user, password string, d Decision) (string, error) {
	p, err := b.do(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return "", err
	}
	last, err := b.drive(ctx, p, "", user, password, d)
	if err != nil {
		return "", err
	}
	if last.location == "" {
		return "", pageError(last)
	}
	return last.location, nil
}

// SignOutDevice opens an account-management link (as a client builds it, with
// action=org.matrix.device_delete and device_id), signs in as user and
// confirms. It returns the text of the last page.
func (b *Browser) SignOutDevice(ctx context.Context, accountURL, user, password string) (string, error) {
	p, err := b.do(ctx, http.MethodGet, accountURL, nil)
	if err != nil {
		return "", err
	}
	last, err := b.drive(ctx, p, "", user, password, Approve)
	if err != nil {
		return "", err
	}
	if last.status != http.StatusOK || last.location != "" || strings.Contains(last.body, `class="problem"`) {
		return "", pageError(last)
	}
	return last.body, nil
}
