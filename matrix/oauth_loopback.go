package matrix

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// LoopbackRedirectURI is the redirect URI registered for the authorization
// code grant: loopback, without a port, as RFC 8252 section 7.3 and the
// Matrix spec ask; the flow uses it with the listener's port.
const LoopbackRedirectURI = "http://127.0.0.1/callback"

const loopbackPath = "/callback"

// ErrLoopbackClosed ends a wait on a listener that was closed.
var ErrLoopbackClosed = errors.New("the sign-in listener was closed before the browser came back")

// LoopbackListener receives the browser's return from the authorization
// server (RFC 8252): an HTTP server on 127.0.0.1 with a port the system
// chose, answering one good callback. It serves only GET /callback with the
// Host it was reached at, so a page elsewhere cannot drive it through DNS
// rebinding, and it shows a page telling the user what happened.
type LoopbackListener struct {
	ln        net.Listener
	srv       *http.Server
	host      string // 127.0.0.1:port
	callbacks chan loopbackCallback
	closed    chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	ended *loopbackPage // the page for callbacks once the flow ended
}

type loopbackCallback struct {
	query url.Values
	reply chan loopbackPage // buffered: the handler may have gone
}

type loopbackPage struct {
	status      int
	title, text string
}

// ListenLoopback opens the listener on 127.0.0.1:0.
func ListenLoopback() (*LoopbackListener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("opening a loopback port for the browser's return: %w", err)
	}
	l := &LoopbackListener{
		ln:        ln,
		host:      ln.Addr().String(),
		callbacks: make(chan loopbackCallback),
		closed:    make(chan struct{}),
	}
	l.srv = &http.Server{Handler: http.HandlerFunc(l.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.srv.Serve(ln) }()
	return l, nil
}

// RedirectURI is the registered redirect URI with this listener's port.
func (l *LoopbackListener) RedirectURI() string { return "http://" + l.host + loopbackPath }

// Close stops the listener; a Wait on it ends with ErrLoopbackClosed.
//
// Pages being written finish first (for up to loopbackDrain), so the browser
// still learns how the sign-in ended when Close follows Wait at once.
func (l *LoopbackListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		ctx, cancel := context.WithTimeout(context.Background(), loopbackDrain)
		defer cancel()
		if err = l.srv.Shutdown(ctx); err != nil {
			err = l.srv.Close()
		}
	})
	return err
}

// loopbackDrain bounds how long Close waits for pages being written.
const loopbackDrain = 2 * time.Second

// end records the page later callbacks get.
func (l *LoopbackListener) end(p loopbackPage) {
	l.mu.Lock()
	if l.ended == nil {
		l.ended = &p
	}
	l.mu.Unlock()
}

func (l *LoopbackListener) endedPage() *loopbackPage {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended
}

// serve answers the browser; a callback waits for Wait to judge it.
func (l *LoopbackListener) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path != loopbackPath:
		http.NotFound(w, r)
		return
	case r.Method != http.MethodGet:
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	case r.Host != l.host:
		writeLoopbackPage(w, loopbackPage{http.StatusBadRequest, "Wrong address", "This page answers only at " + l.host + "."})
		return
	}
	if p := l.endedPage(); p != nil {
		writeLoopbackPage(w, *p)
		return
	}
	cb := loopbackCallback{query: r.URL.Query(), reply: make(chan loopbackPage, 1)}
	select {
	case l.callbacks <- cb:
	case <-l.closed:
		writeLoopbackPage(w, pageNotWaiting)
		return
	case <-r.Context().Done():
		return
	}
	select {
	case p := <-cb.reply:
		writeLoopbackPage(w, p)
	case <-r.Context().Done():
	}
}

var loopbackTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} - mxauth</title>
<style>body{font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;line-height:1.5}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>
`))

// writeLoopbackPage renders a page; html/template escapes every piece of
// server text in it. No caching, no referrer (the URL holds the code), no
// scripts.
func writeLoopbackPage(w http.ResponseWriter, p loopbackPage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(p.status)
	_ = loopbackTemplate.Execute(w, struct{ Title, Text string }{p.title, p.text})
}

const returnToTerminal = "You can close this page and return to the terminal."

var (
	pageSignedIn    = loopbackPage{http.StatusOK, "Signed in", "mxauth is signed in. " + returnToTerminal}
	pageAlreadyDone = loopbackPage{http.StatusOK, "Already signed in", "This sign-in is already done. " + returnToTerminal}
	pageNotWaiting  = loopbackPage{http.StatusGone, "Sign-in ended", "mxauth is no longer waiting for this sign-in. Return to the terminal."}
	pageWrongState  = loopbackPage{http.StatusBadRequest, "Sign-in refused",
		"This answer does not belong to the sign-in mxauth started (its state does not match), so mxauth refused it and is still waiting. Return to the terminal and open the address it shows."}
	pageWrongIssuer = loopbackPage{http.StatusBadRequest, "Sign-in refused",
		"This answer comes from another authorization server than the one mxauth asked, so mxauth refused it and is still waiting. Return to the terminal and open the address it shows."}
)

// AuthCodeFlow is one authorisation code grant with PKCE (S256) and a
// loopback redirect (RFC 8252).
type AuthCodeFlow struct {
	URL         string // authorization URL to open (response_type=code, response_mode=query, state, S256, scope, redirect_uri)
	RedirectURI string

	state    string
	verifier Secret
	meta     *AuthMetadata
	clientID string
}

// NewAuthCodeFlow prepares a grant: a fresh state and PKCE verifier, and the
// authorization URL carrying the S256 challenge. redirectURI is a loopback
// listener's (RedirectURI).
func NewAuthCodeFlow(meta *AuthMetadata, clientID, scope, redirectURI string) (*AuthCodeFlow, error) {
	if meta == nil || clientID == "" || scope == "" {
		return nil, errors.New("the browser sign-in needs the server's metadata, a client ID and a scope")
	}
	if _, err := checkOAuthURL("authorization_endpoint", meta.AuthorizationEndpoint, false); err != nil {
		return nil, err
	}
	if u, err := url.Parse(redirectURI); err != nil || u.Scheme != "http" || !IsLoopbackHost(u.Hostname()) || u.Port() == "" || u.Path != loopbackPath {
		return nil, fmt.Errorf("redirect URI %q is not a loopback listener's", displayURL(redirectURI))
	}
	state, err := randomState()
	if err != nil {
		return nil, err
	}
	verifier := oauth2.GenerateVerifier()
	cfg := oauthConfig(clientID, oauth2.Endpoint{AuthURL: meta.AuthorizationEndpoint})
	cfg.RedirectURL = redirectURI
	cfg.Scopes = []string{scope}
	return &AuthCodeFlow{
		URL:         cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("response_mode", "query")),
		RedirectURI: redirectURI,
		state:       state,
		verifier:    Secret(verifier),
		meta:        meta,
		clientID:    clientID,
	}, nil
}

// randomState is 128 bits, URL-safe: it ties the browser's return to this grant.
func randomState() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating the sign-in state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Wait takes the callback from l: checks state (a mismatch is refused and waited past: the
// page says so), an error parameter ends it (*OAuthError with the code, e.g. access_denied),
// a second callback after the good one gets a page saying the sign-in is already done.
// The success page tells the user to return to the terminal. Then it exchanges the code.
// The page is sent once the code was exchanged, so it says what really happened.
func (f *AuthCodeFlow) Wait(ctx context.Context, c *Client, l *LoopbackListener) (*OAuthTokenResponse, error) {
	if l.RedirectURI() != f.RedirectURI {
		return nil, errors.New("the browser sign-in was prepared for another listener")
	}
	if p := l.endedPage(); p != nil {
		return nil, errors.New("this sign-in listener already took its answer")
	}
	for {
		select {
		case <-ctx.Done():
			l.end(pageNotWaiting)
			return nil, ctx.Err()
		case <-l.closed:
			return nil, ErrLoopbackClosed
		case cb := <-l.callbacks:
			tok, page, done, err := f.answer(ctx, c, cb.query)
			switch {
			case done && err == nil:
				l.end(pageAlreadyDone)
			case done:
				l.end(pageNotWaiting)
			}
			cb.reply <- page
			if done {
				return tok, err
			}
		}
	}
}

// answer decides on one callback and exchanges its code; done is false for
// one that is refused and waited past.
func (f *AuthCodeFlow) answer(ctx context.Context, c *Client, q url.Values) (tok *OAuthTokenResponse, page loopbackPage, done bool, err error) {
	code, page, done, err := f.judge(q)
	if code.IsZero() {
		return nil, page, done, err
	}
	tok, err = f.exchange(ctx, c, code)
	if err != nil {
		return nil, loopbackPage{http.StatusOK, "Sign-in failed", "mxauth could not complete the sign-in: " + err.Error() + ". Return to the terminal."}, true, err
	}
	return tok, pageSignedIn, true, nil
}

// judge reads a callback's query: a code to exchange (only with the right
// state and issuer), or the page to show and whether the wait ends.
func (f *AuthCodeFlow) judge(q url.Values) (code Secret, page loopbackPage, done bool, err error) {
	switch {
	case q.Get("state") != f.state:
		return "", pageWrongState, false, nil
	case q.Has("iss") && q.Get("iss") != f.meta.Issuer:
		// RFC 9207: an answer naming another issuer is a mix-up attack.
		return "", pageWrongIssuer, false, nil
	case q.Has("error"):
		oe := &OAuthError{
			Endpoint:    "authorization redirect",
			Code:        truncateRunes(cleanServerText(q.Get("error"), nil), 64),
			Description: cleanServerText(q.Get("error_description"), nil),
		}
		text := "The authorization server did not sign mxauth in: " + strings.TrimPrefix(oe.Error(), oe.Endpoint+": ") + ". Return to the terminal."
		return "", loopbackPage{http.StatusOK, "Sign-in not completed", text}, true, oe
	case q.Get("code") == "":
		err := fmt.Errorf("%w: the authorization redirect carried neither a code nor an error", ErrMalformedResponse)
		return "", loopbackPage{http.StatusBadRequest, "Sign-in failed", "The authorization server sent no code. Return to the terminal."}, true, err
	}
	return Secret(q.Get("code")), loopbackPage{}, true, nil
}

// exchange redeems the code with the PKCE verifier; a reply refused as
// unusable is revoked, best effort.
func (f *AuthCodeFlow) exchange(ctx context.Context, c *Client, code Secret) (*OAuthTokenResponse, error) {
	target, err := c.oauthURL("token_endpoint", f.meta.TokenEndpoint)
	if err != nil {
		return nil, err
	}
	var out OAuthTokenResponse
	at, err := c.exchangeToken(ctx, target, TokenRequest{
		GrantType: GrantAuthorizationCode, ClientID: f.clientID, Code: code, CodeVerifier: f.verifier, RedirectURI: f.RedirectURI,
	}, &out)
	if errors.Is(err, ErrMalformedResponse) {
		c.discardTokens(ctx, f.meta, f.clientID, &out)
	}
	if err != nil {
		return nil, err
	}
	out.ReceivedAt = at
	return &out, nil
}
