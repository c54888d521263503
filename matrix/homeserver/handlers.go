package homeserver

import (
	"crypto/subtle"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

type handlerFunc func(w http.ResponseWriter, r *http.Request, ri *reqInfo, vars []string)

// route maps path patterns (segments, "{}" = one variable segment) to handlers per method.
type route struct {
	patterns [][]string
	methods  map[string]handlerFunc
}

func (rt *route) match(segs []string) ([]string, bool) {
	for _, p := range rt.patterns {
		if len(p) != len(segs) {
			continue
		}
		var vars []string
		ok := true
		for i, want := range p {
			if want == "{}" {
				v, err := url.PathUnescape(segs[i])
				if err != nil || v == "" {
					ok = false
					break
				}
				vars = append(vars, v)
			} else if segs[i] != want {
				ok = false
				break
			}
		}
		if ok {
			return vars, true
		}
	}
	return nil, false
}

// clientPaths expands "login" to the given versions: /_matrix/client/<v>/login.
func clientPaths(rest string, versions ...string) []string {
	out := make([]string, 0, len(versions))
	for _, v := range versions {
		out = append(out, "/_matrix/client/"+v+"/"+rest)
	}
	return out
}

func (s *Server) addRoute(routes []route, paths []string, methods map[string]handlerFunc) []route {
	rt := route{methods: methods}
	for _, p := range paths {
		rt.patterns = append(rt.patterns, strings.Split(p, "/"))
	}
	return append(routes, rt)
}

// buildRoutes registers only the endpoints the options switch on, so that
// switched-off features answer 404 M_UNRECOGNIZED like a server lacking them.
func (s *Server) buildRoutes() []route {
	var rs []route
	cv := []string{"v3", "r0"}
	rs = s.addRoute(rs, []string{"/.well-known/matrix/client"}, map[string]handlerFunc{"GET": s.handleWellKnown})
	rs = s.addRoute(rs, []string{"/_matrix/client/versions"}, map[string]handlerFunc{"GET": s.handleVersions})
	if !s.opt.OAuthOnly {
		rs = s.addRoute(rs, clientPaths("login", cv...), map[string]handlerFunc{"GET": s.handleLoginFlows, "POST": s.handleLogin})
	}
	if !s.opt.NoRefresh {
		rs = s.addRoute(rs, clientPaths("refresh", "v3", "r0", "unstable"), map[string]handlerFunc{"POST": s.handleRefresh})
	}
	if !s.opt.NoGetToken {
		if s.opt.GetTokenUnstableOnly {
			rs = s.addRoute(rs, []string{
				"/_matrix/client/unstable/org.matrix.msc3882/login/get_token",
				"/_matrix/client/unstable/org.matrix.msc3882/login/token",
			}, map[string]handlerFunc{"POST": s.handleGetToken})
		} else {
			rs = s.addRoute(rs, []string{"/_matrix/client/v1/login/get_token"}, map[string]handlerFunc{"POST": s.handleGetToken})
		}
	}
	rs = s.addRoute(rs, clientPaths("account/whoami", cv...), map[string]handlerFunc{"GET": s.handleWhoAmI})
	rs = s.addRoute(rs, clientPaths("logout", cv...), map[string]handlerFunc{"POST": s.handleLogout})
	rs = s.addRoute(rs, clientPaths("logout/all", cv...), map[string]handlerFunc{"POST": s.handleLogoutAll})
	rs = s.addRoute(rs, clientPaths("capabilities", cv...), map[string]handlerFunc{"GET": s.handleCapabilities})
	rs = s.addRoute(rs, clientPaths("devices", cv...), map[string]handlerFunc{"GET": s.handleDevices})
	if s.delegates() {
		// With delegation, devices are deleted through account management.
		rs = s.addRoute(rs, clientPaths("devices/{}", cv...), map[string]handlerFunc{
			"GET": s.handleGetDevice, "PUT": s.handlePutDevice, "DELETE": handleUnrecognized})
		if s.external() {
			rs = s.addRoute(rs, []string{"/_matrix/client/v1/auth_metadata", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata"},
				map[string]handlerFunc{"GET": s.handleExternalMetadata})
		} else {
			rs = s.addAuthRoutes(rs)
		}
	} else {
		rs = s.addRoute(rs, clientPaths("devices/{}", cv...), map[string]handlerFunc{
			"GET": s.handleGetDevice, "PUT": s.handlePutDevice, "DELETE": s.handleDeleteDevice})
		rs = s.addRoute(rs, clientPaths("delete_devices", cv...), map[string]handlerFunc{"POST": s.handleDeleteDevices})
	}
	rs = s.addRoute(rs, clientPaths("auth/{}/fallback/web", cv...), map[string]handlerFunc{
		"GET": s.handleFallback, "POST": s.handleFallback})
	return rs
}

// handle dispatches to the matching route: unknown path 404, known path with
// another method 405, both M_UNRECOGNIZED.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, ri *reqInfo) {
	segs := strings.Split(r.URL.EscapedPath(), "/")
	var allowed []string
	for i := range s.routes {
		rt := &s.routes[i]
		vars, ok := rt.match(segs)
		if !ok {
			continue
		}
		if h := rt.methods[r.Method]; h != nil {
			h(w, r, ri, vars)
			return
		}
		for m := range rt.methods {
			allowed = append(allowed, m)
		}
	}
	if allowed != nil {
		sort.Strings(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, unrecognized(http.StatusMethodNotAllowed))
		return
	}
	writeError(w, unrecognized(http.StatusNotFound))
}

func handleUnrecognized(w http.ResponseWriter, _ *http.Request, _ *reqInfo, _ []string) {
	writeError(w, unrecognized(http.StatusNotFound))
}

func (s *Server) wellKnown() map[string]any {
	return map[string]any{"m.homeserver": map[string]any{"base_url": s.url}}
}

func (s *Server) handleWellKnown(w http.ResponseWriter, _ *http.Request, _ *reqInfo, _ []string) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, s.wellKnown())
}

func (s *Server) handleVersions(w http.ResponseWriter, _ *http.Request, _ *reqInfo, _ []string) {
	// A server without the stable get_token must not claim v1.7+, or clients
	// would rightly pick the stable path.
	last := 12
	if s.opt.GetTokenUnstableOnly {
		last = 6
	}
	versions := []string{"r0.6.1"}
	for i := 1; i <= last; i++ {
		versions = append(versions, "v1."+strconv.Itoa(i))
	}
	unstable := map[string]bool{"org.matrix.msc3882": s.opt.GetTokenUnstableOnly && !s.opt.NoGetToken}
	writeJSON(w, http.StatusOK, map[string]any{"versions": versions, "unstable_features": unstable})
}

func (s *Server) handleLoginFlows(w http.ResponseWriter, _ *http.Request, _ *reqInfo, _ []string) {
	flows := []map[string]any{{"type": "m.login.password"}}
	if s.delegates() {
		// MAS's compatibility layer: SSO that OAuth-aware clients should
		// replace with OAuth, plus passwords when the provider has them.
		flows = []map[string]any{{"type": "m.login.sso", "oauth_aware_preferred": true,
			"org.matrix.msc3824.delegated_oidc_compatibility": true}}
		if s.opt.Delegated && s.opt.PasswordCompat {
			flows = append(flows, map[string]any{"type": "m.login.password"})
		}
	}
	if !s.opt.NoGetToken {
		tf := map[string]any{"type": "m.login.token"}
		if s.opt.GetTokenUnstableOnly {
			tf["org.matrix.msc3882.get_login_token"] = true
		} else {
			tf["get_login_token"] = true
		}
		flows = append(flows, tf)
	}
	writeJSON(w, http.StatusOK, map[string]any{"flows": flows})
}

// qualify turns a localpart into a full user ID on this server.
func (s *Server) qualify(u string) string {
	if strings.HasPrefix(u, "@") {
		return u
	}
	return "@" + u + ":" + s.serverName
}

// identifiedUser reads who a login or UIA password stage names: identifier
// m.id.user (MXID or localpart), or the deprecated top-level "user".
func (s *Server) identifiedUser(m map[string]json.RawMessage) (string, *apiError) {
	ident, has, e := getObject(m, "identifier")
	if e != nil {
		return "", e
	}
	if has {
		typ, ok, e := getString(ident, "type")
		if e != nil {
			return "", e
		}
		if !ok {
			return "", errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing identifier type")
		}
		switch typ {
		case "m.id.user":
			u, ok, e := getString(ident, "user")
			if e != nil {
				return "", e
			}
			if !ok || u == "" {
				return "", errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing user in identifier")
			}
			return s.qualify(u), nil
		case "m.id.thirdparty", "m.id.phone":
			// No third-party identifiers are ever bound here.
			return "", errf(http.StatusForbidden, "M_FORBIDDEN", "Unknown third-party identifier")
		default:
			return "", errf(http.StatusBadRequest, "M_INVALID_PARAM", "Unknown login identifier type")
		}
	}
	if u, ok, e := getString(m, "user"); e != nil {
		return "", e
	} else if ok && u != "" {
		return s.qualify(u), nil
	}
	if present(m, "medium") || present(m, "address") {
		return "", errf(http.StatusForbidden, "M_FORBIDDEN", "Unknown third-party identifier")
	}
	return "", errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing identifier")
}

func samePassword(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	body, e := readObject(r, false)
	if e != nil {
		writeError(w, e)
		return
	}
	if e := s.login(w, r, ri, body); e != nil {
		writeError(w, e)
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, ri *reqInfo, body map[string]json.RawMessage) *apiError {
	typ, ok, e := getString(body, "type")
	if e != nil {
		return e
	}
	if !ok {
		return errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing type")
	}
	wantRefresh, e := getBool(body, "refresh_token")
	if e != nil {
		return e
	}
	deviceID, _, e := getString(body, "device_id")
	if e != nil {
		return e
	}
	displayName, _, e := getString(body, "initial_device_display_name")
	if e != nil {
		return e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var u *user
	switch {
	case typ == "m.login.password" && (!s.delegates() || (s.opt.Delegated && s.opt.PasswordCompat)):
		userID, e := s.identifiedUser(body)
		if e != nil {
			return e
		}
		password, ok, e := getString(body, "password")
		if e != nil {
			return e
		}
		if !ok {
			return errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing password")
		}
		key := strings.ToLower(userID)
		if wait := s.failureWait(key); wait > 0 {
			return limitExceeded(wait)
		}
		u = s.lookupUser(userID)
		if u == nil || !samePassword(u.password, password) {
			s.recordFailure(key)
			return errf(http.StatusForbidden, "M_FORBIDDEN", "Invalid username or password")
		}
	case typ == "m.login.token" && !s.opt.NoGetToken:
		tok, ok, e := getString(body, "token")
		if e != nil {
			return e
		}
		if !ok {
			return errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing token")
		}
		lt := s.loginTokens[tok]
		delete(s.loginTokens, tok) // single use, even when it turns out expired
		if lt == nil || !ri.arrival.Before(lt.expiresAt) {
			return errf(http.StatusForbidden, "M_FORBIDDEN", "Invalid login token")
		}
		u = lt.user
	default:
		return errf(http.StatusBadRequest, "M_UNKNOWN", "Unknown login type")
	}
	if u.deactivated {
		return errf(http.StatusForbidden, "M_USER_DEACTIVATED", "This account has been deactivated")
	}

	d := u.devices[deviceID]
	if d != nil {
		// A known device keeps its ID (and its keys); its old tokens die.
		s.clearDeviceTokens(d)
		d.soft = false
	} else {
		if deviceID == "" {
			for deviceID == "" || u.devices[deviceID] != nil {
				deviceID = newDeviceID()
			}
		}
		d = &device{id: deviceID, user: u, displayName: displayName,
			access: map[string]*accessTok{}, refresh: map[string]*refreshTok{}}
		u.devices[deviceID] = d
	}
	s.seen(d, r, ri)
	ri.userID, ri.deviceID = u.id, d.id
	a, rt := s.issue(d, wantRefresh && s.refreshEnabled())
	resp := map[string]any{
		"user_id":      u.id,
		"access_token": a.token,
		"device_id":    d.id,
		"home_server":  s.serverName,
		"well_known":   s.wellKnown(),
	}
	if rt != nil {
		resp["refresh_token"] = rt.token
		resp["expires_in_ms"] = s.opt.AccessTokenLifetime.Milliseconds()
	} else if !a.expiresAt.IsZero() {
		resp["expires_in_ms"] = s.opt.NonRefreshableLifetime.Milliseconds()
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// seen updates a device's last-seen data. Caller holds s.mu.
func (s *Server) seen(d *device, r *http.Request, ri *reqInfo) {
	d.lastSeenTS = ri.arrival.UnixMilli()
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		d.lastSeenIP = host
	}
}

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	body, e := readObject(r, false)
	if e != nil {
		writeError(w, e)
		return
	}
	tok, ok, e := getString(body, "refresh_token")
	if e != nil {
		writeError(w, e)
		return
	}
	if !ok {
		writeError(w, errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing refresh_token"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.superseded[tok]; d != nil {
		ri.userID, ri.deviceID = d.user.id, d.id
		// Synapse answers a superseded token with 403, not the spec's 401.
		writeError(w, errf(http.StatusForbidden, "M_FORBIDDEN", "refresh token isn't valid anymore"))
		return
	}
	rt := s.refresh[tok]
	if rt == nil {
		e := unknownToken(false)
		e.msg = "Unrecognised refresh token"
		writeError(w, e)
		return
	}
	d := rt.dev
	ri.userID, ri.deviceID = d.user.id, d.id
	if d.soft {
		e := unknownToken(true)
		e.msg = "Session has been logged out; log in again"
		writeError(w, e)
		return
	}
	if d.user.locked {
		writeError(w, userLocked())
		return
	}
	s.markUsed(rt)
	if rt.next != nil {
		// Redeemed again before its successor was used (a lost response):
		// the unused successor is replaced.
		s.revokeRefresh(rt.next)
		rt.next = nil
	}
	// Like Synapse: redeeming this token ends the access token of its
	// predecessor, while the one issued with it runs until it expires or
	// the successor is redeemed in turn.
	s.revokeAccess(rt.prevAccess)
	rt.prevAccess = nil
	_, nrt := s.issue(d, true)
	nrt.prev, nrt.prevAccess, rt.next = rt, rt.access, nrt
	s.refreshes++
	s.seen(d, r, ri)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  nrt.access.token,
		"refresh_token": nrt.token,
		"expires_in_ms": s.opt.AccessTokenLifetime.Milliseconds(),
	})
}

// authOpts relaxes authenticate for logout, which Synapse allows on locked
// accounts and with expired tokens.
type authOpts struct{ allowLocked, allowExpired bool }

// authenticate validates the bearer token of r. Caller holds s.mu.
func (s *Server) authenticate(r *http.Request, ri *reqInfo, o authOpts) (*accessTok, *apiError) {
	tok, ok := bearer(r)
	if !ok {
		return nil, errf(http.StatusUnauthorized, "M_MISSING_TOKEN", "Missing access token")
	}
	a := s.access[tok]
	if a == nil && s.external() {
		return s.authenticateExternal(tok, r, ri)
	}
	if a == nil && s.opt.Delegated {
		return s.authenticateOAuth(tok, r, ri)
	}
	if a == nil {
		return nil, unknownToken(false)
	}
	d := a.dev
	ri.userID, ri.deviceID = d.user.id, d.id
	expired := !a.expiresAt.IsZero() && !ri.arrival.Before(a.expiresAt)
	ri.tokenExpired = expired
	if d.soft {
		return nil, unknownToken(true)
	}
	if expired && !o.allowExpired {
		return nil, unknownToken(true)
	}
	if d.user.locked && !o.allowLocked {
		return nil, userLocked()
	}
	ri.authenticated = true
	if !expired {
		s.markUsed(a.refresh)
	}
	s.seen(d, r, ri)
	return a, nil
}

func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.authenticate(r, ri, authOpts{})
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user_id": a.dev.user.id, "device_id": a.dev.id, "is_guest": false})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	s.logout(w, r, ri, false)
}

func (s *Server) handleLogoutAll(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	s.logout(w, r, ri, true)
}

// logout ends the caller's device, or with all every device of its user; an
// OAuth token is refused, as Synapse does behind an authorization server.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, ri *reqInfo, all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.authenticate(r, ri, authOpts{allowLocked: true, allowExpired: true})
	if e != nil {
		writeError(w, e)
		return
	}
	if a.oauth {
		writeError(w, oauthLogoutRefused())
		return
	}
	if !all {
		s.deleteDevice(a.dev)
	} else {
		for _, d := range a.dev.user.devices {
			s.deleteDevice(d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) handleCapabilities(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, e := s.authenticate(r, ri, authOpts{}); e != nil {
		writeError(w, e)
		return
	}
	enabled := map[string]any{"enabled": !s.opt.NoGetToken}
	caps := map[string]any{
		"m.change_password": map[string]any{"enabled": true},
		"m.get_login_token": enabled,
	}
	if s.opt.GetTokenUnstableOnly {
		caps["org.matrix.msc3882.get_login_token"] = enabled
	}
	writeJSON(w, http.StatusOK, map[string]any{"capabilities": caps})
}

func deviceJSON(d *device) map[string]any {
	m := map[string]any{"device_id": d.id}
	if d.displayName != "" {
		m["display_name"] = d.displayName
	}
	if d.lastSeenTS != 0 {
		m["last_seen_ts"] = d.lastSeenTS
		m["last_seen_ip"] = d.lastSeenIP
	}
	return m
}

func (s *Server) handleDevices(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.authenticate(r, ri, authOpts{})
	if e != nil {
		writeError(w, e)
		return
	}
	ids := make([]string, 0, len(a.dev.user.devices))
	for id := range a.dev.user.devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	list := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		list = append(list, deviceJSON(a.dev.user.devices[id]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": list})
}

func (s *Server) handleGetDevice(w http.ResponseWriter, r *http.Request, ri *reqInfo, vars []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, e := s.authenticate(r, ri, authOpts{})
	if e != nil {
		writeError(w, e)
		return
	}
	d := a.dev.user.devices[vars[0]]
	if d == nil {
		writeError(w, errf(http.StatusNotFound, "M_NOT_FOUND", "Device not found"))
		return
	}
	writeJSON(w, http.StatusOK, deviceJSON(d))
}

// authenticateWithBody checks the access token and then the request body
// (token errors win, as in Synapse), writing the error if either fails.
// Caller holds s.mu.
func (s *Server) authenticateWithBody(w http.ResponseWriter, r *http.Request, ri *reqInfo, bodyErr *apiError) (*accessTok, bool) {
	a, e := s.authenticate(r, ri, authOpts{})
	if e == nil {
		e = bodyErr
	}
	if e != nil {
		writeError(w, e)
		return nil, false
	}
	return a, true
}

// passUIA runs the request's UIA step, writing the challenge or error when
// the user has not (yet) authenticated. Caller holds s.mu.
func (s *Server) passUIA(w http.ResponseWriter, u *user, r *http.Request, body map[string]json.RawMessage) (*uiaSession, bool) {
	sess, e := s.checkUIA(u, r, body)
	if e != nil {
		writeError(w, e)
		return nil, false
	}
	return sess, true
}

func (s *Server) handlePutDevice(w http.ResponseWriter, r *http.Request, ri *reqInfo, vars []string) {
	body, bodyErr := readObject(r, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authenticateWithBody(w, r, ri, bodyErr)
	if !ok {
		return
	}
	name, ok, e := getString(body, "display_name")
	if e != nil {
		writeError(w, e)
		return
	}
	d := a.dev.user.devices[vars[0]]
	if d == nil {
		writeError(w, errf(http.StatusNotFound, "M_NOT_FOUND", "Device not found"))
		return
	}
	if ok {
		d.displayName = name
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) handleDeleteDevice(w http.ResponseWriter, r *http.Request, ri *reqInfo, vars []string) {
	// Synapse accepts a DELETE without a body (then UIA challenges it).
	body, bodyErr := readObject(r, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authenticateWithBody(w, r, ri, bodyErr)
	if !ok {
		return
	}
	s.deleteDevicesAfterUIA(w, r, a.dev.user, body, []string{vars[0]})
}

func (s *Server) handleDeleteDevices(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	body, bodyErr := readObject(r, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authenticateWithBody(w, r, ri, bodyErr)
	if !ok {
		return
	}
	if !present(body, "devices") {
		writeError(w, errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing devices"))
		return
	}
	var ids []string
	if err := json.Unmarshal(body["devices"], &ids); err != nil {
		writeError(w, errf(http.StatusBadRequest, "M_BAD_JSON", "devices must be a list of strings"))
		return
	}
	s.deleteDevicesAfterUIA(w, r, a.dev.user, body, ids)
}

// deleteDevicesAfterUIA deletes the user's devices once UIA has passed; unknown
// IDs are ignored, as in Synapse. Caller holds s.mu.
func (s *Server) deleteDevicesAfterUIA(w http.ResponseWriter, r *http.Request, u *user, body map[string]json.RawMessage, ids []string) {
	sess, ok := s.passUIA(w, u, r, body)
	if !ok {
		return
	}
	delete(s.uia, sess.id)
	for _, id := range ids {
		if d := u.devices[id]; d != nil {
			s.deleteDevice(d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{})
}

func (s *Server) handleGetToken(w http.ResponseWriter, r *http.Request, ri *reqInfo, _ []string) {
	body, bodyErr := readObject(r, false)
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authenticateWithBody(w, r, ri, bodyErr)
	if !ok {
		return
	}
	u := a.dev.user
	sess, ok := s.passUIA(w, u, r, body)
	if !ok {
		return
	}
	// Synapse's 1/min limit comes after UIA; the session survives so the
	// client can resend {session} once the wait is over.
	if s.opt.LoginTokenRateLimit && !u.lastMint.IsZero() {
		if wait := u.lastMint.Add(time.Minute).Sub(ri.arrival); wait > 0 {
			writeError(w, limitExceeded(wait))
			return
		}
	}
	delete(s.uia, sess.id)
	u.lastMint = ri.arrival
	s.pruneLoginTokens(ri.arrival)
	tok := newLoginToken()
	exp := ri.arrival.Add(s.opt.LoginTokenLifetime)
	s.loginTokens[tok] = &loginTok{user: u, expiresAt: exp}
	ms := s.opt.LoginTokenLifetime.Milliseconds()
	writeJSON(w, http.StatusOK, map[string]any{
		"login_token":   tok,
		"expires_in_ms": ms,
		"expires_in":    int64(math.Ceil(s.opt.LoginTokenLifetime.Seconds())),
	})
}

// pruneLoginTokens drops expired login tokens now and then. Caller holds s.mu.
func (s *Server) pruneLoginTokens(now time.Time) {
	if now.Sub(s.lastLoginPrune) < time.Minute {
		return
	}
	s.lastLoginPrune = now
	for t, lt := range s.loginTokens {
		if !now.Before(lt.expiresAt) {
			delete(s.loginTokens, t)
		}
	}
}
