package homeserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ExternalAuth makes the homeserver delegate authentication to an OAuth 2.0
// authorization server running elsewhere, as Synapse does with Matrix
// Authentication Service: auth_metadata is the issuer's own metadata, /login
// offers only the OAuth-aware SSO flow, get_token and device deletion are
// absent, and every bearer token is validated by RFC 7662 introspection over
// HTTP at the issuer. The token's sub names the user (a localpart on this
// server, or a full user ID), its device scope the device, which appears on
// first use.
type ExternalAuth struct {
	Issuer string
	// IntrospectionEndpoint defaults to the one the issuer's metadata names.
	IntrospectionEndpoint string
	// ClientID and ClientSecret are the homeserver's credentials at the
	// introspection endpoint (HTTP Basic, client_secret_basic).
	ClientID, ClientSecret string
	// HTTPClient reaches the issuer (default: a 10 s timeout, no redirects).
	HTTPClient *http.Client
}

// externalState caches the issuer's metadata once fetched.
type externalState struct {
	mu       sync.Mutex
	metadata map[string]any
	intro    string // introspection endpoint
}

// introspection is what the issuer said about a bearer token; it is learnt
// before the server's lock is taken, since it is an HTTP round trip.
type introspection struct {
	active    bool
	sub       string
	scope     string
	expiresAt time.Time
	err       error // the issuer could not answer
}

func (s *Server) external() bool { return s.opt.ExternalAuth != nil }

// delegates says whether sign-in belongs to an authorization server (in
// process or external).
func (s *Server) delegates() bool { return s.opt.Delegated || s.external() }

func (s *Server) issuerClient() *http.Client {
	if c := s.opt.ExternalAuth.HTTPClient; c != nil {
		return c
	}
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// issuerMetadata fetches (once) the issuer's RFC 8414 metadata, falling back
// to its OpenID Connect discovery document.
func (s *Server) issuerMetadata(ctx context.Context) (map[string]any, error) {
	st := s.extState
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.metadata != nil {
		return st.metadata, nil
	}
	base := strings.TrimRight(s.opt.ExternalAuth.Issuer, "/")
	var lastErr error
	for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		var m map[string]any
		if err := s.issuerJSON(ctx, http.MethodGet, base+p, nil, &m); err != nil {
			lastErr = err
			continue
		}
		if iss, _ := m["issuer"].(string); iss != s.opt.ExternalAuth.Issuer {
			lastErr = fmt.Errorf("issuer metadata names issuer %q, not %q", iss, s.opt.ExternalAuth.Issuer)
			continue
		}
		st.metadata = m
		st.intro = s.opt.ExternalAuth.IntrospectionEndpoint
		if st.intro == "" {
			st.intro, _ = m["introspection_endpoint"].(string)
		}
		return m, nil
	}
	return nil, lastErr
}

// issuerJSON makes one request to the issuer and decodes a 200 JSON reply.
func (s *Server) issuerJSON(ctx context.Context, method, target string, form url.Values, out any) error {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(s.opt.ExternalAuth.ClientID), url.QueryEscape(s.opt.ExternalAuth.ClientSecret))
	}
	resp, err := s.issuerClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: HTTP %d", method, target, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxBodyBytes)).Decode(out)
}

// handleExternalMetadata serves the issuer's metadata as auth_metadata, as
// Synapse does for MAS.
func (s *Server) handleExternalMetadata(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	m, err := s.issuerMetadata(r.Context())
	if err != nil {
		writeError(w, errf(http.StatusServiceUnavailable, "M_UNKNOWN", "the authorization server's metadata is unavailable"))
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// introspect asks the issuer about tok (RFC 7662, as an access token).
func (s *Server) introspectExternal(ctx context.Context, tok string) *introspection {
	if _, err := s.issuerMetadata(ctx); err != nil {
		return &introspection{err: err}
	}
	if s.extState.intro == "" {
		return &introspection{err: errors.New("the issuer names no introspection endpoint")}
	}
	var out struct {
		Active    bool   `json:"active"`
		Sub       string `json:"sub"`
		Scope     string `json:"scope"`
		TokenType string `json:"token_type"`
		Exp       int64  `json:"exp"`
	}
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	if err := s.issuerJSON(ctx, http.MethodPost, s.extState.intro, form, &out); err != nil {
		return &introspection{err: err}
	}
	// A refresh token is introspectable too, but is no bearer credential.
	if !out.Active || out.Sub == "" || !strings.EqualFold(out.TokenType, "Bearer") {
		return &introspection{}
	}
	in := &introspection{active: true, sub: out.Sub, scope: out.Scope}
	if out.Exp > 0 {
		in.expiresAt = time.Unix(out.Exp, 0)
	}
	return in
}

// publicPath says whether a request needs no access token, so a token it
// carries anyway is not introspected.
func publicPath(p string) bool {
	return strings.HasPrefix(p, "/.well-known/") || p == "/_matrix/client/versions" ||
		strings.HasSuffix(p, "/login") || strings.HasSuffix(p, "/auth_metadata") || strings.Contains(p, "/fallback/")
}

// preAuthenticate introspects the bearer token of r at the issuer, outside the
// server's lock, unless the token is one of this server's own.
func (s *Server) preAuthenticate(r *http.Request, ri *reqInfo) {
	tok, ok := bearer(r)
	if !ok || publicPath(r.URL.Path) {
		return
	}
	s.mu.Lock()
	local := s.access[tok] != nil
	s.mu.Unlock()
	if !local {
		ri.introspection = s.introspectExternal(r.Context(), tok)
	}
}

// authenticateExternal turns the issuer's answer into this server's user and
// device. Caller holds s.mu.
func (s *Server) authenticateExternal(tok string, r *http.Request, ri *reqInfo) (*accessTok, *apiError) {
	in := ri.introspection
	switch {
	case in == nil:
		return nil, unknownToken(false)
	case in.err != nil:
		return nil, errf(http.StatusServiceUnavailable, "M_UNKNOWN", "the authorization server could not check the access token")
	case !in.active:
		return nil, unknownToken(false)
	}
	deviceID, ok := checkScope(in.scope)
	if !ok {
		return nil, errf(http.StatusForbidden, "M_FORBIDDEN", "the access token's scope does not grant the Client-Server API for one device")
	}
	u := s.provisionUser(in.sub)
	if u.deactivated {
		return nil, unknownToken(false)
	}
	return s.oauthDevice(u, deviceID, tok, in.expiresAt, r, ri)
}

// provisionUser finds the user the issuer's sub names, creating it on first
// use (the issuer owns the accounts). Caller holds s.mu.
func (s *Server) provisionUser(sub string) *user {
	userID := s.qualify(sub)
	if u := s.lookupUser(userID); u != nil {
		return u
	}
	u := &user{id: userID, password: randomString(32, alnum), devices: map[string]*device{}}
	s.users[strings.ToLower(userID)] = u
	return u
}
