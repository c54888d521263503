package homeserver

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	stagePassword = "m.login.password"
	// uiaSessionLifetime is Synapse's default UIA session lifetime.
	uiaSessionLifetime = 48 * time.Hour
)

// uiaSession is one user-interactive authentication session, bound to the
// operation (method and path) and the user it was started for.
type uiaSession struct {
	id        string
	user      *user
	method    string
	path      string
	flows     [][]string
	completed []string
	created   time.Time
}

func (u *user) uiaStages() []string {
	if len(u.stages) == 0 {
		return []string{stagePassword}
	}
	return u.stages
}

func (ss *uiaSession) isCompleted(stage string) bool {
	for _, c := range ss.completed {
		if c == stage {
			return true
		}
	}
	return false
}

func (ss *uiaSession) complete(stage string) {
	if !ss.isCompleted(stage) {
		ss.completed = append(ss.completed, stage)
	}
}

// nextStage is true when stage is the next stage to do in some flow.
func (ss *uiaSession) nextStage(stage string) bool {
	for _, f := range ss.flows {
		for _, st := range f {
			if ss.isCompleted(st) {
				continue
			}
			if st == stage {
				return true
			}
			break
		}
	}
	return false
}

func (ss *uiaSession) inFlows(stage string) bool {
	for _, f := range ss.flows {
		for _, st := range f {
			if st == stage {
				return true
			}
		}
	}
	return false
}

func (ss *uiaSession) done() bool {
	for _, f := range ss.flows {
		all := true
		for _, st := range f {
			if !ss.isCompleted(st) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// newUIASession starts a session for u's current flow. Caller holds s.mu.
func (s *Server) newUIASession(u *user, r *http.Request) *uiaSession {
	now := s.now()
	if now.Sub(s.lastUIAPrune) > time.Minute {
		s.lastUIAPrune = now
		for id, ss := range s.uia {
			if now.Sub(ss.created) > uiaSessionLifetime {
				delete(s.uia, id)
			}
		}
	}
	ss := &uiaSession{
		id: newSessionID(), user: u, method: r.Method, path: r.URL.Path,
		flows: [][]string{append([]string(nil), u.uiaStages()...)}, created: now,
	}
	s.uia[ss.id] = ss
	return ss
}

// challenge is the 401 UIA body; errcode/msg are set when a stage just failed.
func challenge(ss *uiaSession, errcode, msg string) *apiError {
	flows := make([]map[string]any, 0, len(ss.flows))
	for _, f := range ss.flows {
		flows = append(flows, map[string]any{"stages": f})
	}
	body := map[string]any{"flows": flows, "params": map[string]any{}, "session": ss.id}
	if len(ss.completed) > 0 {
		body["completed"] = ss.completed
	}
	if errcode != "" {
		body["errcode"] = errcode
		body["error"] = msg
	}
	return &apiError{status: http.StatusUnauthorized, raw: body}
}

// checkUIA runs the UIA step of a request from u whose body is body. It
// returns the completed session (the caller deletes it once the operation
// succeeded) or the response to send: a 401 challenge, 400, 403 or 429.
// Caller holds s.mu.
func (s *Server) checkUIA(u *user, r *http.Request, body map[string]json.RawMessage) (*uiaSession, *apiError) {
	auth, has, e := getObject(body, "auth")
	if e != nil {
		return nil, e
	}
	if !has {
		return nil, challenge(s.newUIASession(u, r), "", "")
	}
	sid, hasSid, e := getString(auth, "session")
	if e != nil {
		return nil, e
	}
	var ss *uiaSession
	if hasSid && sid != "" {
		ss = s.uia[sid]
		if ss == nil || s.now().Sub(ss.created) > uiaSessionLifetime {
			return nil, errf(http.StatusBadRequest, "M_UNKNOWN", "Unknown session ID")
		}
		if ss.method != r.Method || ss.path != r.URL.Path {
			return nil, errf(http.StatusForbidden, "M_FORBIDDEN", "Requested operation has changed during the UI authentication session.")
		}
		if ss.user != u {
			return nil, errf(http.StatusForbidden, "M_FORBIDDEN", "Invalid auth")
		}
	} else {
		ss = s.newUIASession(u, r)
	}
	typ, _, e := getString(auth, "type")
	if e != nil {
		return nil, e
	}
	if typ == stagePassword && ss.nextStage(stagePassword) {
		userID, e := s.identifiedUser(auth)
		if e != nil {
			return nil, e
		}
		password, _, e := getString(auth, "password")
		if e != nil {
			return nil, e
		}
		key := strings.ToLower(userID)
		if wait := s.failureWait(key); wait > 0 {
			return nil, limitExceeded(wait)
		}
		who := s.lookupUser(userID)
		if who == nil || !samePassword(who.password, password) {
			s.recordFailure(key)
			return nil, challenge(ss, "M_FORBIDDEN", "Invalid username or password")
		}
		if who != u {
			return nil, errf(http.StatusForbidden, "M_FORBIDDEN", "Invalid auth")
		}
		ss.complete(stagePassword)
	}
	// Any other type (or none, after a fallback) just asks whether the
	// session is complete: those stages are only done out of band.
	if ss.done() {
		return ss, nil
	}
	return nil, challenge(ss, "", "")
}

// CompleteFallback marks the session's stages other than m.login.password as
// done, as if the user had finished them on the fallback page.
func (s *Server) CompleteFallback(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.uia[session]
	if ss == nil {
		return
	}
	for _, f := range ss.flows {
		for _, st := range f {
			if st != stagePassword {
				ss.complete(st)
			}
		}
	}
}

// handleFallback serves /auth/{stage}/fallback/web. Visiting the page for a
// non-password stage completes it (standing in for the identity provider);
// the password stage shows a form that is checked on POST.
func (s *Server) handleFallback(w http.ResponseWriter, r *http.Request, ri *reqInfo, vars []string) {
	stage := vars[0]
	_ = r.ParseForm() // query (and the form body on POST)
	sid := r.Form.Get("session")
	if sid == "" {
		writeError(w, errf(http.StatusBadRequest, "M_MISSING_PARAM", "Missing session"))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.uia[sid]
	if ss == nil || s.now().Sub(ss.created) > uiaSessionLifetime {
		writeError(w, errf(http.StatusBadRequest, "M_UNKNOWN", "Unknown session ID"))
		return
	}
	if !ss.inFlows(stage) {
		writeError(w, errf(http.StatusBadRequest, "M_UNRECOGNIZED", "This stage is not part of the session"))
		return
	}
	ri.userID = ss.user.id
	if stage != stagePassword {
		ss.complete(stage)
		writeHTML(w, http.StatusOK, donePage)
		return
	}
	if r.Method == http.MethodPost {
		key := strings.ToLower(ss.user.id)
		if wait := s.failureWait(key); wait > 0 {
			writeError(w, limitExceeded(wait))
			return
		}
		if samePassword(ss.user.password, r.PostForm.Get("password")) {
			ss.complete(stage)
			writeHTML(w, http.StatusOK, donePage)
			return
		}
		s.recordFailure(key)
		writeHTML(w, http.StatusOK, passwordPage(ss.id, "Invalid username or password"))
		return
	}
	writeHTML(w, http.StatusOK, passwordPage(ss.id, ""))
}

func writeHTML(w http.ResponseWriter, status int, page string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(page))
}

// donePage tells the opener the stage is done, like Synapse's fallback pages.
const donePage = `<!DOCTYPE html>
<html><head><title>Authentication</title>
<script>
if (window.onAuthDone) { window.onAuthDone(); }
else if (window.opener && window.opener.postMessage) { window.opener.postMessage("authDone", "*"); }
</script></head>
<body><p>Thank you. You may now close this window and return to the application.</p></body></html>
`

func passwordPage(session, problem string) string {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html><head><title>Authentication</title></head><body>
<p>Please confirm your identity by entering your password.</p>
`)
	if problem != "" {
		b.WriteString("<p><strong>" + html.EscapeString(problem) + "</strong></p>\n")
	}
	b.WriteString(`<form method="post" action="?session=` + html.EscapeString(url.QueryEscape(session)) + `">
<input type="hidden" name="session" value="` + html.EscapeString(session) + `">
<input type="password" name="password" autofocus>
<input type="submit" value="Continue">
</form></body></html>
`)
	return b.String()
}
