package homeserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The authorization server of delegated mode: an in-process OAuth 2.0 server
// that behaves like Matrix Authentication Service (MAS), served under
// authPrefix on the homeserver's listener. The homeserver validates bearer
// tokens through its introspection, as Synapse does with MAS.

const (
	authPrefix        = "/auth"
	scopeAPI          = "urn:matrix:client:api:*"
	scopeDevicePrefix = "urn:matrix:client:device:"
	grantAuthCode     = "authorization_code"
	grantRefresh      = "refresh_token"
	grantDeviceCode   = "urn:ietf:params:oauth:grant-type:device_code"
	browserCookie     = "mxhs_browser"
	userCodeAlphabet  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	deviceCodeExpiry  = 1200 * time.Second
	authCodeExpiry    = 10 * time.Minute
)

type oauthClient struct {
	id           string
	grantTypes   []string
	redirectURIs []string
}

func (c *oauthClient) allows(grant string) bool {
	for _, g := range c.grantTypes {
		if g == grant {
			return true
		}
	}
	return false
}

// oauthSession is one signed-in device; all its tokens end together.
type oauthSession struct {
	user     *user
	deviceID string
	clientID string
	scope    string
	ended    bool
}

type oauthAccess struct {
	token     string
	sess      *oauthSession
	expiresAt time.Time
	used      bool
	revoked   bool // replaced by a refresh: MAS ends an access token when its refresh token is redeemed
}

// oauthRefresh is one link of a rotation chain: produced is the pair its
// redemption issued (nil while unused).
type oauthRefresh struct {
	token    string
	sess     *oauthSession
	produced *oauthRefresh
	access   *oauthAccess // issued together with this refresh token
}

type deviceGrant struct {
	deviceCode, userCode string
	clientID, scope      string
	expiresAt, lastPoll  time.Time
	interval             time.Duration
	approvedBy           *user
	denied, done         bool
}

type authRequest struct {
	id, clientID, redirectURI, scope, state, challenge string
}

type authCode struct {
	req       *authRequest
	user      *user
	expiresAt time.Time
}

// authState is the authorization server's memory; guarded by Server.mu.
type authState struct {
	clients     map[string]*oauthClient
	access      map[string]*oauthAccess
	refresh     map[string]*oauthRefresh
	devices     map[string]*deviceGrant // by device_code
	userCodes   map[string]*deviceGrant
	requests    map[string]*authRequest
	codes       map[string]*authCode
	browsers    map[string]*user // browser session cookie -> signed-in user
	introSecret string           // the homeserver's credential for introspection
}

func newAuthState() *authState {
	return &authState{
		clients: map[string]*oauthClient{}, access: map[string]*oauthAccess{},
		refresh: map[string]*oauthRefresh{}, devices: map[string]*deviceGrant{},
		userCodes: map[string]*deviceGrant{}, requests: map[string]*authRequest{},
		codes: map[string]*authCode{}, browsers: map[string]*user{},
		introSecret: randomString(32, alnum),
	}
}

// Issuer is the authorization server's issuer URL in delegated mode.
func (s *Server) Issuer() string { return s.url + authPrefix + "/" }

func (s *Server) authURL(p string) string { return s.url + authPrefix + p }

func (s *Server) addAuthRoutes(rs []route) []route {
	add := func(p string, m map[string]handlerFunc) { rs = s.addRoute(rs, []string{authPrefix + p}, m) }
	rs = s.addRoute(rs, []string{"/_matrix/client/v1/auth_metadata", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata"},
		map[string]handlerFunc{"GET": s.handleAuthMetadata})
	add("/.well-known/openid-configuration", map[string]handlerFunc{"GET": s.handleAuthMetadata})
	add("/oauth2/registration", map[string]handlerFunc{"POST": s.handleRegister})
	add("/oauth2/device", map[string]handlerFunc{"POST": s.handleDeviceAuthorization})
	add("/oauth2/token", map[string]handlerFunc{"POST": s.handleToken})
	add("/oauth2/revoke", map[string]handlerFunc{"POST": s.handleRevoke})
	add("/oauth2/introspect", map[string]handlerFunc{"POST": s.handleIntrospect})
	add("/authorize", map[string]handlerFunc{"GET": s.handleAuthorize})
	add("/link", map[string]handlerFunc{"GET": s.handleLink, "POST": s.handleLink})
	add("/login", map[string]handlerFunc{"GET": s.handleBrowserLogin, "POST": s.handleBrowserLogin})
	add("/consent", map[string]handlerFunc{"GET": s.handleConsent, "POST": s.handleConsent})
	add("/account", map[string]handlerFunc{"GET": s.handleAccount, "POST": s.handleAccount})
	return rs
}

func (s *Server) handleAuthMetadata(w http.ResponseWriter, _ *http.Request, _ *reqInfo, _ []string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.Issuer(),
		"authorization_endpoint":                s.authURL("/authorize"),
		"token_endpoint":                        s.authURL("/oauth2/token"),
		"registration_endpoint":                 s.authURL("/oauth2/registration"),
		"revocation_endpoint":                   s.authURL("/oauth2/revoke"),
		"introspection_endpoint":                s.authURL("/oauth2/introspect"),
		"device_authorization_endpoint":         s.authURL("/oauth2/device"),
		"account_management_uri":                s.authURL("/account"),
		"account_management_actions_supported":  []string{"org.matrix.profile", "org.matrix.devices_list", "org.matrix.device_view", "org.matrix.device_delete"},
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query", "fragment"},
		"grant_types_supported":                 []string{grantAuthCode, grantRefresh, grantDeviceCode},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
	})
}

// oauthError writes an RFC 6749 error body.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	var m struct {
		ApplicationType string   `json:"application_type"`
		ClientURI       string   `json:"client_uri"`
		AuthMethod      string   `json:"token_endpoint_auth_method"`
		GrantTypes      []string `json:"grant_types"`
		RedirectURIs    []string `json:"redirect_uris"`
		ResponseTypes   []string `json:"response_types"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&m); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "body is not a JSON object")
		return
	}
	if desc := checkClientMetadata(m.ApplicationType, m.ClientURI, m.AuthMethod, m.RedirectURIs); desc != "" {
		oauthError(w, http.StatusBadRequest, "invalid_client_metadata", desc)
		return
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{grantAuthCode}
	}
	var granted []string
	for _, g := range m.GrantTypes {
		switch g {
		case grantAuthCode, grantRefresh:
			granted = append(granted, g)
		case grantDeviceCode:
			if !s.opt.DeviceGrantDisabled { // MAS drops it silently
				granted = append(granted, g)
			}
		default:
			oauthError(w, http.StatusBadRequest, "invalid_client_metadata", "unsupported grant type")
			return
		}
	}
	c := &oauthClient{id: randomString(26, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"), grantTypes: granted, redirectURIs: m.RedirectURIs}
	if c.allows(grantAuthCode) && len(c.redirectURIs) == 0 {
		oauthError(w, http.StatusBadRequest, "invalid_redirect_uri", "authorization_code needs redirect_uris")
		return
	}
	s.mu.Lock()
	s.auth.clients[c.id] = c
	s.mu.Unlock()
	resp := map[string]any{
		"client_id": c.id, "client_id_issued_at": s.now().Unix(), "application_type": "native",
		"client_uri": m.ClientURI, "token_endpoint_auth_method": "none",
		"grant_types": granted, "response_types": []string{"code"},
	}
	if len(c.redirectURIs) > 0 {
		resp["redirect_uris"] = c.redirectURIs
	}
	writeJSON(w, http.StatusCreated, resp)
}

// checkClientMetadata applies MAS's rules for a public native client.
func checkClientMetadata(appType, clientURI, authMethod string, redirects []string) string {
	if appType != "" && appType != "native" {
		return "only native clients are accepted"
	}
	if authMethod != "" && authMethod != "none" {
		return "only public clients (token_endpoint_auth_method none) are accepted"
	}
	u, err := url.Parse(clientURI)
	if clientURI == "" || err != nil || u.Scheme != "https" || u.User != nil || u.Host == "" || u.Hostname() == "localhost" {
		return "client_uri must be an https URL without userinfo on a public host"
	}
	for _, ru := range redirects {
		p, err := url.Parse(ru)
		if err != nil || p.Scheme == "" || p.Scheme == "https" || (p.Scheme == "http" && !isLoopbackHost(p.Hostname())) {
			return "redirect_uris of a native client must be loopback or private-use"
		}
	}
	return ""
}

func isLoopbackHost(h string) bool { return h == "127.0.0.1" || h == "::1" || h == "localhost" }

// redirectAllowed matches a registered URI; loopback ones match any port (RFC 8252).
func (c *oauthClient) redirectAllowed(got string) bool {
	g, err := url.Parse(got)
	if err != nil {
		return false
	}
	for _, reg := range c.redirectURIs {
		if reg == got {
			return true
		}
		r, err := url.Parse(reg)
		if err == nil && r.Scheme == "http" && g.Scheme == "http" && isLoopbackHost(r.Hostname()) &&
			r.Hostname() == g.Hostname() && r.Path == g.Path && g.User == nil && g.RawQuery == "" {
			return true
		}
	}
	return false
}

// checkScope accepts exactly the API scope and one device scope (stable or
// MSC2967's unstable forms) and returns the device ID.
func checkScope(scope string) (string, bool) {
	var api, dev int
	deviceID := ""
	for _, sc := range strings.Fields(scope) {
		switch {
		case sc == scopeAPI || sc == "urn:matrix:org.matrix.msc2967.client:api:*":
			api++
		case strings.HasPrefix(sc, scopeDevicePrefix):
			dev++
			deviceID = strings.TrimPrefix(sc, scopeDevicePrefix)
		case strings.HasPrefix(sc, "urn:matrix:org.matrix.msc2967.client:device:"):
			dev++
			deviceID = strings.TrimPrefix(sc, "urn:matrix:org.matrix.msc2967.client:device:")
		default:
			return "", false
		}
	}
	if api != 1 || dev != 1 || deviceID == "" || strings.TrimLeft(deviceID, alnum+"-._~") != "" {
		return "", false
	}
	return deviceID, true
}

// parseForm reads a form body; done before taking s.mu, so a slow client
// cannot stall the server.
func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return false
	}
	return true
}

// formClient finds the client a parsed form names. Caller holds s.mu.
func (s *Server) formClient(w http.ResponseWriter, r *http.Request) (*oauthClient, bool) {
	c := s.auth.clients[r.PostForm.Get("client_id")]
	if c == nil {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client")
		return nil, false
	}
	return c, true
}

func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	if !parseForm(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	if !c.allows(grantDeviceCode) {
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "the client may not use the device code grant")
		return
	}
	scope := r.PostForm.Get("scope")
	if _, ok := checkScope(scope); !ok {
		oauthError(w, http.StatusBadRequest, "invalid_scope", "scope must be the Matrix API scope and one device scope")
		return
	}
	g := &deviceGrant{deviceCode: randomString(32, alnum), clientID: c.id, scope: scope,
		expiresAt: s.now().Add(deviceCodeExpiry), interval: s.opt.DeviceInterval}
	for g.userCode == "" || s.auth.userCodes[g.userCode] != nil {
		g.userCode = randomString(6, userCodeAlphabet)
	}
	s.auth.devices[g.deviceCode] = g
	s.auth.userCodes[g.userCode] = g
	resp := map[string]any{
		"device_code": g.deviceCode, "user_code": g.userCode,
		"verification_uri": s.authURL("/link"),
		"expires_in":       int(deviceCodeExpiry.Seconds()), "interval": int(g.interval / time.Second),
	}
	if s.opt.VerificationURIComplete {
		resp["verification_uri_complete"] = s.authURL("/link") + "?code=" + g.userCode
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	if !parseForm(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	grant := r.PostForm.Get("grant_type")
	if grant != grantDeviceCode && grant != grantAuthCode && grant != grantRefresh {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant type")
		return
	}
	if !c.allows(grant) {
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "grant type not allowed for this client")
		return
	}
	switch grant {
	case grantDeviceCode:
		s.deviceCodeGrant(w, c, r.PostForm.Get("device_code"))
	case grantAuthCode:
		s.authCodeGrant(w, c, r.PostForm)
	case grantRefresh:
		s.refreshGrant(w, c, r.PostForm.Get("refresh_token"))
	}
}

// deviceCodeGrant answers one poll. Caller holds s.mu.
func (s *Server) deviceCodeGrant(w http.ResponseWriter, c *oauthClient, code string) {
	g := s.auth.devices[code]
	now := s.now()
	switch {
	case g == nil || g.clientID != c.id || g.done:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown device code")
	case !now.Before(g.expiresAt):
		s.dropDeviceGrant(g)
		oauthError(w, http.StatusBadRequest, "expired_token", "the device code has expired")
	case g.denied:
		s.dropDeviceGrant(g)
		oauthError(w, http.StatusBadRequest, "access_denied", "the user denied the request")
	case g.approvedBy != nil:
		s.dropDeviceGrant(g)
		g.done = true
		s.writeTokenPair(w, s.startSession(g.approvedBy, c.id, g.scope))
	case !g.lastPoll.IsZero() && now.Sub(g.lastPoll) < g.interval:
		g.lastPoll = now
		g.interval += 5 * time.Second
		oauthError(w, http.StatusBadRequest, "slow_down", "polling too fast")
	default:
		g.lastPoll = now
		oauthError(w, http.StatusBadRequest, "authorization_pending", "the user has not answered yet")
	}
}

func (s *Server) dropDeviceGrant(g *deviceGrant) {
	delete(s.auth.devices, g.deviceCode)
	delete(s.auth.userCodes, g.userCode)
}

// authCodeGrant redeems a code with its PKCE verifier. Caller holds s.mu.
func (s *Server) authCodeGrant(w http.ResponseWriter, c *oauthClient, f url.Values) {
	ac := s.auth.codes[f.Get("code")]
	delete(s.auth.codes, f.Get("code")) // single use
	if ac == nil || ac.req.clientID != c.id || !s.now().Before(ac.expiresAt) || ac.req.redirectURI != f.Get("redirect_uri") {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "invalid authorization code")
		return
	}
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != ac.req.challenge {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		return
	}
	s.writeTokenPair(w, s.startSession(ac.user, c.id, ac.req.scope))
}

// refreshGrant rotates a refresh token. Like MAS, a refresh token already
// redeemed is accepted again only while the access token its redemption
// produced has never been used (the client lost that response).
func (s *Server) refreshGrant(w http.ResponseWriter, c *oauthClient, tok string) {
	rt := s.auth.refresh[tok]
	if rt == nil || rt.sess.clientID != c.id || rt.sess.ended {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "invalid refresh token")
		return
	}
	if p := rt.produced; p != nil {
		if p.access.used {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token already used")
			return
		}
		s.dropRefresh(p)
	}
	rt.produced = s.issueOAuth(rt.sess)
	rt.access.revoked = true // as MAS does: the pair's access token ends with the refresh
	s.writeTokenPair(w, rt.produced)
}

func (s *Server) dropRefresh(rt *oauthRefresh) {
	if rt.produced != nil {
		s.dropRefresh(rt.produced)
	}
	delete(s.auth.refresh, rt.token)
	delete(s.auth.access, rt.access.token)
}

func (s *Server) startSession(u *user, clientID, scope string) *oauthRefresh {
	deviceID, _ := checkScope(scope)
	return s.issueOAuth(&oauthSession{user: u, deviceID: deviceID, clientID: clientID, scope: scope})
}

func (s *Server) issueOAuth(sess *oauthSession) *oauthRefresh {
	a := &oauthAccess{token: "mat_" + randomString(30, alnum), sess: sess, expiresAt: s.now().Add(s.opt.OAuthAccessLifetime)}
	rt := &oauthRefresh{token: "mar_" + randomString(30, alnum), sess: sess, access: a}
	s.auth.access[a.token] = a
	s.auth.refresh[rt.token] = rt
	return rt
}

func (s *Server) writeTokenPair(w http.ResponseWriter, rt *oauthRefresh) {
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": rt.access.token, "refresh_token": rt.token, "token_type": "Bearer",
		"expires_in": int(s.opt.OAuthAccessLifetime.Seconds()), "scope": rt.sess.scope,
	})
}

// handleRevoke ends the whole session of an access or refresh token (RFC 7009:
// unknown tokens are not an error).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	if !parseForm(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	// As MAS does, only a token still valid ends its session: a refresh
	// token already redeemed, or an access token a refresh replaced or that
	// expired, is answered 200 and changes nothing (RFC 7009 section 2.2).
	tok := r.PostForm.Get("token")
	var sess *oauthSession
	if a := s.auth.access[tok]; a != nil && !a.revoked && s.now().Before(a.expiresAt) {
		sess = a.sess
	} else if rt := s.auth.refresh[tok]; rt != nil && rt.produced == nil {
		sess = rt.sess
	}
	if sess != nil && sess.clientID == c.id {
		s.endSession(sess)
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

// endSession revokes every token of a session and removes its device.
func (s *Server) endSession(sess *oauthSession) {
	sess.ended = true
	for t, a := range s.auth.access {
		if a.sess == sess {
			delete(s.auth.access, t)
		}
	}
	for t, rt := range s.auth.refresh {
		if rt.sess == sess {
			delete(s.auth.refresh, t)
		}
	}
	if d := sess.user.devices[sess.deviceID]; d != nil {
		s.deleteDevice(d)
	}
}

// introspect is RFC 7662 on an access token; an active token counts as used.
// Caller holds s.mu.
func (s *Server) introspect(tok string) *oauthAccess {
	a := s.auth.access[tok]
	if a == nil || a.revoked || a.sess.ended || !s.now().Before(a.expiresAt) || a.sess.user.deactivated {
		return nil
	}
	a.used = true
	return a
}

func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	if t, ok := bearer(r); !ok || !samePassword(t, s.auth.introSecret) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "introspection needs the homeserver's credential")
		return
	}
	if !parseForm(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.introspect(r.PostForm.Get("token"))
	if a == nil {
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	local := strings.TrimPrefix(a.sess.user.id, "@")
	if i := strings.IndexByte(local, ':'); i >= 0 {
		local = local[:i]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"active": true, "scope": a.sess.scope, "client_id": a.sess.clientID, "token_type": "access_token",
		"sub": a.sess.user.id, "username": local, "device_id": a.sess.deviceID, "exp": a.expiresAt.Unix(),
	})
}

// IntrospectionCredential is the bearer credential the homeserver presents at
// the introspection endpoint.
func (s *Server) IntrospectionCredential() string { return s.auth.introSecret }

// authenticateOAuth validates a bearer token through introspection, as Synapse
// does with MAS; the device scope makes the device exist. Caller holds s.mu.
func (s *Server) authenticateOAuth(tok string, r *http.Request, ri *reqInfo) (*accessTok, *apiError) {
	a := s.introspect(tok)
	if a == nil {
		return nil, unknownToken(false)
	}
	return s.oauthDevice(a.sess.user, a.sess.deviceID, tok, a.expiresAt, r, ri)
}

// oauthDevice is the device an introspected OAuth token acts as, made on first
// use. Caller holds s.mu.
func (s *Server) oauthDevice(u *user, deviceID, tok string, expiresAt time.Time, r *http.Request, ri *reqInfo) (*accessTok, *apiError) {
	d := u.devices[deviceID]
	if d == nil {
		d = &device{id: deviceID, user: u, access: map[string]*accessTok{}, refresh: map[string]*refreshTok{}}
		u.devices[d.id] = d
	}
	ri.userID, ri.deviceID = u.id, d.id
	if u.locked {
		return nil, userLocked()
	}
	ri.authenticated = true
	s.seen(d, r, ri)
	return &accessTok{token: tok, dev: d, expiresAt: expiresAt, oauth: true}, nil
}

// ---- the browser side: sign-in, device link, authorize, consent ----

var authPage = template.Must(template.New("auth").Parse(`<!DOCTYPE html>
<html><head><title>{{.Title}}</title></head><body>
<h1>{{.Title}}</h1>
{{if .Problem}}<p><strong>{{.Problem}}</strong></p>{{end}}
{{if .Text}}<p>{{.Text}}</p>{{end}}
{{if .Form}}<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}{{if eq .Form "code"}}<label>Code <input type="text" name="code" autofocus></label>
<input type="submit" value="Continue">
{{else if eq .Form "login"}}<label>Username <input type="text" name="username" autofocus></label>
<label>Password <input type="password" name="password"></label>
<input type="submit" value="Sign in">
{{else if eq .Form "consent"}}<button type="submit" name="action" value="approve">Allow</button>
<button type="submit" name="action" value="deny">Deny</button>
{{else if eq .Form "confirm"}}<input type="submit" value="Sign out">
{{end}}</form>{{end}}
{{range .List}}<p>{{.}}</p>
{{end}}</body></html>
`))

type pageData struct {
	Title, Problem, Text, Form, Action string
	Hidden                             map[string]string
	List                               []string
}

func renderPage(w http.ResponseWriter, status int, p pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = authPage.Execute(w, p)
}

// browserUser is the signed-in user of the browser, if any. Caller holds s.mu.
func (s *Server) browserUser(r *http.Request) *user {
	if c, err := r.Cookie(browserCookie); err == nil {
		return s.auth.browsers[c.Value]
	}
	return nil
}

// requireBrowserUser sends an anonymous browser to the sign-in page, to come back to r.
func (s *Server) requireBrowserUser(w http.ResponseWriter, r *http.Request) *user {
	if u := s.browserUser(r); u != nil {
		return u
	}
	http.Redirect(w, r, s.authURL("/login")+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	return nil
}

func (s *Server) handleBrowserLogin(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	_ = r.ParseForm()
	next := r.Form.Get("next")
	if !strings.HasPrefix(next, authPrefix+"/") || strings.HasPrefix(next, authPrefix+"//") {
		next = authPrefix + "/account"
	}
	page := pageData{Title: "Sign in", Form: "login", Action: authPrefix + "/login", Hidden: map[string]string{"next": next}}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, page)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	userID := s.qualify(r.PostForm.Get("username"))
	key := strings.ToLower(userID)
	if wait := s.failureWait(key); wait > 0 {
		page.Problem = "Too many attempts; try again later"
		renderPage(w, http.StatusTooManyRequests, page)
		return
	}
	u := s.lookupUser(userID)
	if u == nil || u.deactivated || !samePassword(u.password, r.PostForm.Get("password")) {
		s.recordFailure(key)
		page.Problem = "Invalid username or password"
		renderPage(w, http.StatusForbidden, page)
		return
	}
	id := randomString(32, alnum)
	s.auth.browsers[id] = u
	http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: id, Path: authPrefix + "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleLink is the device grant's verification page: enter the code, then consent.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	_ = r.ParseForm()
	code := strings.ToUpper(strings.TrimSpace(r.Form.Get("code")))
	page := pageData{Title: "Link a device", Text: "Enter the code shown on your device.", Form: "code", Action: authPrefix + "/link"}
	if code == "" {
		renderPage(w, http.StatusOK, page)
		return
	}
	s.mu.Lock()
	g := s.auth.userCodes[code]
	ok := g != nil && s.now().Before(g.expiresAt) && g.approvedBy == nil && !g.denied
	s.mu.Unlock()
	if !ok {
		page.Problem = "Unknown or expired code"
		renderPage(w, http.StatusBadRequest, page)
		return
	}
	http.Redirect(w, r, authPrefix+"/consent?device="+url.QueryEscape(code), http.StatusSeeOther)
}

// handleAuthorize starts the authorization code grant (PKCE S256 required).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.auth.clients[q.Get("client_id")]
	redirect := q.Get("redirect_uri")
	if c == nil || !c.allows(grantAuthCode) || !c.redirectAllowed(redirect) {
		renderPage(w, http.StatusBadRequest, pageData{Title: "Invalid request", Problem: "Unknown client or redirect URI"})
		return
	}
	fail := func(code string) {
		http.Redirect(w, r, withQuery(redirect, url.Values{"error": {code}, "state": {q.Get("state")}}), http.StatusSeeOther)
	}
	if q.Get("response_type") != "code" || (q.Get("response_mode") != "" && q.Get("response_mode") != "query") {
		fail("unsupported_response_type")
		return
	}
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		fail("invalid_request")
		return
	}
	if _, ok := checkScope(q.Get("scope")); !ok {
		fail("invalid_scope")
		return
	}
	req := &authRequest{id: randomString(24, alnum), clientID: c.id, redirectURI: redirect,
		scope: q.Get("scope"), state: q.Get("state"), challenge: q.Get("code_challenge")}
	s.auth.requests[req.id] = req
	http.Redirect(w, r, authPrefix+"/consent?request="+req.id, http.StatusSeeOther)
}

func withQuery(base string, v url.Values) string {
	for k := range v {
		if v.Get(k) == "" {
			v.Del(k)
		}
	}
	if strings.Contains(base, "?") {
		return base + "&" + v.Encode()
	}
	return base + "?" + v.Encode()
}

// handleConsent asks the signed-in user to allow or deny a device grant or an
// authorization request.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	_ = r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.requireBrowserUser(w, r)
	if u == nil {
		return
	}
	var g *deviceGrant
	var req *authRequest
	var scope, clientID string
	if code := r.Form.Get("device"); code != "" {
		if g = s.auth.userCodes[code]; g != nil && s.now().Before(g.expiresAt) && g.approvedBy == nil && !g.denied {
			scope, clientID = g.scope, g.clientID
		} else {
			g = nil
		}
	} else if req = s.auth.requests[r.Form.Get("request")]; req != nil {
		scope, clientID = req.scope, req.clientID
	}
	if g == nil && req == nil {
		renderPage(w, http.StatusBadRequest, pageData{Title: "Invalid request", Problem: "Unknown or expired request"})
		return
	}
	if r.Method == http.MethodGet {
		deviceID, _ := checkScope(scope)
		renderPage(w, http.StatusOK, pageData{Title: "Allow access?", Form: "consent", Action: authPrefix + "/consent",
			Hidden: map[string]string{"device": r.Form.Get("device"), "request": r.Form.Get("request")},
			Text:   "Client " + clientID + " asks to sign in as " + u.id + " with device " + deviceID + "."})
		return
	}
	approve := r.PostForm.Get("action") == "approve"
	if g != nil {
		if approve {
			g.approvedBy = u
		} else {
			g.denied = true
		}
		renderPage(w, http.StatusOK, pageData{Title: "Done", Text: "You may return to your device."})
		return
	}
	delete(s.auth.requests, req.id)
	if !approve {
		http.Redirect(w, r, withQuery(req.redirectURI, url.Values{"error": {"access_denied"}, "state": {req.state}}), http.StatusSeeOther)
		return
	}
	code := randomString(32, alnum)
	s.auth.codes[code] = &authCode{req: req, user: u, expiresAt: s.now().Add(authCodeExpiry)}
	http.Redirect(w, r, withQuery(req.redirectURI, url.Values{"code": {code}, "state": {req.state}}), http.StatusSeeOther)
}

// handleAccount is the account-management page: the user's devices, and
// signing one out (action org.matrix.device_delete), which ends its OAuth
// sessions too.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request, _ *reqInfo, _ []string) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	_ = r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.requireBrowserUser(w, r)
	if u == nil {
		return
	}
	if r.Form.Get("action") == "org.matrix.device_delete" {
		s.accountDeviceDelete(w, r, u, r.Form.Get("device_id"))
		return
	}
	ids := make([]string, 0, len(u.devices))
	for id := range u.devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	list := make([]string, 0, len(ids))
	for _, id := range ids {
		list = append(list, "Device "+id)
	}
	renderPage(w, http.StatusOK, pageData{Title: "Account " + u.id, List: list})
}

// accountDeviceDelete confirms (GET) and performs (POST) a device sign-out. Caller holds s.mu.
func (s *Server) accountDeviceDelete(w http.ResponseWriter, r *http.Request, u *user, deviceID string) {
	d := u.devices[deviceID]
	if d == nil {
		renderPage(w, http.StatusNotFound, pageData{Title: "Sign out a device", Problem: "No such device"})
		return
	}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, pageData{Title: "Sign out a device", Form: "confirm", Action: authPrefix + "/account",
			Text:   "Sign out device " + deviceID + "?",
			Hidden: map[string]string{"action": "org.matrix.device_delete", "device_id": deviceID}})
		return
	}
	for _, rt := range s.auth.refresh {
		if rt.sess.user == u && rt.sess.deviceID == deviceID && !rt.sess.ended {
			s.endSession(rt.sess)
		}
	}
	s.deleteDevice(d)
	renderPage(w, http.StatusOK, pageData{Title: "Sign out a device", Text: "Device " + deviceID + " has been signed out."})
}

// oauthLogoutRefused is the compatibility layer's answer to /logout with an
// OAuth token: only revocation ends an OAuth session.
func oauthLogoutRefused() *apiError {
	return errf(http.StatusBadRequest, "M_UNRECOGNIZED", "OAuth 2.0 sessions end through token revocation")
}
