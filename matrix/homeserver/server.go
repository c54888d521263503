// Package homeserver is an in-process Matrix homeserver that follows the Client-Server API (and
// Synapse where the spec leaves a choice), with fault injection. It ships in the product because
// `mxauth demo` runs it offline; the tests use it too.
package homeserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value is a server with non-expiring
// tokens, get_token enabled and no rate limits.
type Options struct {
	ServerName           string        // default: host:port of the listener
	AccessTokenLifetime  time.Duration // for clients sending refresh_token:true; 0 = tokens never expire
	LoginTokenLifetime   time.Duration // default 2 min
	LoginTokenRateLimit  bool          // 1 get_token per user per minute, checked after UIA
	NoRefresh            bool          // refresh_token:true ignored, /refresh 404
	NoGetToken           bool
	GetTokenUnstableOnly bool // only /unstable/org.matrix.msc3882/login/get_token (+ flags)
	OAuthOnly            bool // GET /login 404 M_UNRECOGNIZED, POST /login 404
	FailedLoginLimit     int  // 0 = unlimited; else 429 after N failed password attempts per user/minute

	// NonRefreshableLifetime is the lifetime of access tokens issued without
	// a refresh token (Synapse's nonrefreshable_access_token_lifetime); 0 =
	// they never expire. Lets clients see expires_in_ms without refresh_token.
	NonRefreshableLifetime time.Duration
	// Now is the server's clock (default time.Now); tests move it to expire
	// tokens or pass rate-limit windows without sleeping.
	Now func() time.Time
	// PublicBaseURL overrides URL(), e.g. when listening on 0.0.0.0.
	PublicBaseURL string
	// OnRequest, when set, sees every log entry as it is recorded (for a live
	// view such as the demo's). It runs on the serving goroutine, outside the
	// server's lock; keep it quick.
	OnRequest func(LoggedRequest)
	// LogLimit caps the request log (oldest entries dropped); 0 = 100000,
	// negative = unlimited. Counters are not affected by the cap.
	LogLimit int

	// Delegated makes the server delegate authentication to an in-process
	// authorization server that behaves like MAS (served under /auth/):
	// auth_metadata, OAuth tokens validated by introspection, no get_token,
	// no device deletion through the Client-Server API.
	Delegated bool
	// PasswordCompat keeps m.login.password on /login in delegated mode
	// (MAS's compatibility layer with passwords on).
	PasswordCompat bool
	// DeviceGrantDisabled drops the device code grant from registrations, as
	// MAS does when its admin disabled it.
	DeviceGrantDisabled bool
	// DeviceInterval is the device grant's polling interval (default 5 s).
	DeviceInterval time.Duration
	// VerificationURIComplete adds verification_uri_complete to device
	// authorization replies (MAS omits it by default).
	VerificationURIComplete bool
	// OAuthAccessLifetime is the lifetime of OAuth access tokens (default 5 min).
	OAuthAccessLifetime time.Duration
	// ExternalAuth delegates authentication to an authorization server
	// elsewhere (see ExternalAuth); it excludes Delegated.
	ExternalAuth *ExternalAuth
}

// Fault replaces or disturbs the handling of requests whose path starts with
// PathPrefix ("" = any). Faults are used in the order they were injected.
type Fault struct {
	PathPrefix        string
	Status            int           // respond with this instead of handling (with Body and Header)
	Body              string        // replacement body (Status defaults to 500 when only Body is set)
	Header            http.Header   // headers of the replacement; alone (no Status/Body), added to the real response
	DropAfterHandling bool          // handle the request (side effects happen) then kill the connection: a lost response
	Truncate          bool          // handle, then send only half of the JSON body and close
	Delay             time.Duration // wait after handling, before responding; ends early when the client goes away
	// Count is how many requests this fault applies to (0 = 1); negative
	// means every matching request until ClearFaults.
	Count int
}

// LoggedRequest is one entry of the request log.
type LoggedRequest struct {
	Time          time.Time
	Method, Path  string // path without the query
	Status        int    // status the handler produced or the fault replaced it with (even if dropped or truncated)
	Authenticated bool   // carried a valid access token
	TokenExpired  bool   // carried an access token whose expiry had passed at arrival
	UserID        string // from the access or refresh token, when known
	DeviceID      string
	Fault         string // "" or the faults applied, e.g. "status", "drop", "truncate", "delay"
}

// Server is the in-process homeserver. All methods are safe for concurrent use.
//
// Choices where the spec leaves room follow Synapse: a refresh token stays
// valid until its successor (or the successor's access token) is first used,
// then answers 403 M_FORBIDDEN; the access token issued with a refresh token
// keeps working until it expires or the next refresh token is redeemed;
// expired access tokens get 401 M_UNKNOWN_TOKEN with soft_logout:true; every
// M_UNKNOWN_TOKEN body carries a boolean soft_logout; get_token always runs a
// single-stage UIA and its rate limit is checked after it; an empty body on
// a JSON endpoint is 400 M_NOT_JSON.
type Server struct {
	opt        Options
	url        string
	serverName string
	listener   net.Listener
	httpSrv    *http.Server
	closed     chan struct{}
	closeOnce  sync.Once
	routes     []route

	mu             sync.Mutex
	users          map[string]*user // by lower-cased user ID
	access         map[string]*accessTok
	refresh        map[string]*refreshTok
	superseded     map[string]*device // refresh tokens replaced by a used successor
	loginTokens    map[string]*loginTok
	uia            map[string]*uiaSession
	failures       map[string][]time.Time // failed password attempts per lower-cased user ID
	faults         []*Fault
	log            []LoggedRequest
	logStart       int // ring start when the log is full
	expiredUses    int
	refreshes      int
	lastUIAPrune   time.Time
	lastLoginPrune time.Time
	auth           *authState // delegated mode's authorization server
	extState       *externalState
}

// New starts a server on 127.0.0.1 with a random port.
func New(opt Options) *Server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if l, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			panic("homeserver: cannot listen on loopback: " + err.Error())
		}
	}
	return NewOnListener(l, opt)
}

// NewOnListener starts a server on l; Close closes l.
func NewOnListener(l net.Listener, opt Options) *Server {
	if opt.LoginTokenLifetime <= 0 {
		opt.LoginTokenLifetime = 2 * time.Minute
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.DeviceInterval <= 0 {
		opt.DeviceInterval = 5 * time.Second
	}
	if opt.OAuthAccessLifetime <= 0 {
		opt.OAuthAccessLifetime = 5 * time.Minute
	}
	if opt.ExternalAuth != nil && opt.Delegated {
		panic("homeserver: Delegated and ExternalAuth exclude each other")
	}
	if opt.Delegated || opt.ExternalAuth != nil {
		opt.NoGetToken = true // Synapse refuses get_token with delegation
	}
	if opt.LogLimit == 0 {
		opt.LogLimit = 100000
	}
	s := &Server{
		opt:         opt,
		listener:    l,
		closed:      make(chan struct{}),
		users:       map[string]*user{},
		access:      map[string]*accessTok{},
		refresh:     map[string]*refreshTok{},
		superseded:  map[string]*device{},
		loginTokens: map[string]*loginTok{},
		uia:         map[string]*uiaSession{},
		failures:    map[string][]time.Time{},
		auth:        newAuthState(),
		extState:    &externalState{},
	}
	hostPort := publicHostPort(l.Addr())
	s.url = "http://" + hostPort
	if opt.PublicBaseURL != "" {
		s.url = strings.TrimRight(opt.PublicBaseURL, "/")
	}
	s.serverName = hostPort
	if opt.ServerName != "" {
		s.serverName = opt.ServerName
	}
	s.routes = s.buildRoutes()
	s.httpSrv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(l) }()
	return s
}

// publicHostPort turns the listener address into something a client can dial:
// an unspecified address (0.0.0.0, or :: which Go also reports for
// 0.0.0.0 on dual-stack hosts) becomes 127.0.0.1.
func publicHostPort(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// URL is the base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.url }

// ServerName is the Matrix server name used in user IDs.
func (s *Server) ServerName() string { return s.serverName }

// Close stops the server and drops every open connection.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		_ = s.httpSrv.Close()
	})
}

func (s *Server) now() time.Time { return s.opt.Now() }

// InjectFault queues a fault.
func (s *Server) InjectFault(f Fault) {
	if f.Count == 0 {
		f.Count = 1
	}
	if f.Header != nil {
		f.Header = f.Header.Clone()
	}
	s.mu.Lock()
	s.faults = append(s.faults, &f)
	s.mu.Unlock()
}

// ClearFaults removes every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// takeFault returns (a copy of) the first queued fault matching path and
// uses up one of its applications.
func (s *Server) takeFault(path string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if !strings.HasPrefix(path, f.PathPrefix) {
			continue
		}
		c := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &c
	}
	return nil
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []LoggedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]LoggedRequest, 0, len(s.log))
	out = append(out, s.log[s.logStart:]...)
	out = append(out, s.log[:s.logStart]...)
	return out
}

// ResetLog clears the request log and the ExpiredTokenUses and RefreshCount counters.
func (s *Server) ResetLog() {
	s.mu.Lock()
	s.log = nil
	s.logStart = 0
	s.expiredUses = 0
	s.refreshes = 0
	s.mu.Unlock()
}

// ExpiredTokenUses counts requests that carried an access token after its expiry.
func (s *Server) ExpiredTokenUses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiredUses
}

// RefreshCount counts successful /refresh calls.
func (s *Server) RefreshCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

func (s *Server) appendLog(e LoggedRequest) {
	s.record(e)
	if s.opt.OnRequest != nil {
		s.opt.OnRequest(e)
	}
}

func (s *Server) record(e LoggedRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.TokenExpired {
		s.expiredUses++
	}
	if s.opt.LogLimit > 0 && len(s.log) >= s.opt.LogLimit {
		s.log[s.logStart] = e
		s.logStart = (s.logStart + 1) % len(s.log)
		return
	}
	s.log = append(s.log, e)
}

// reqInfo is what the handlers learn about a request, for the log.
type reqInfo struct {
	arrival       time.Time
	authenticated bool
	tokenExpired  bool
	userID        string
	deviceID      string
	introspection *introspection // the issuer's answer in external mode
}

// recorder buffers a handler's response so faults can act on it afterwards.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// ServeHTTP runs the request through the fault queue and the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ri := &reqInfo{arrival: s.now()}
	entry := LoggedRequest{Time: ri.arrival, Method: r.Method, Path: r.URL.Path}
	f := s.takeFault(r.URL.Path)

	rec := &recorder{header: http.Header{}}
	var faults []string
	if f != nil && (f.Status != 0 || f.Body != "") {
		faults = append(faults, "status")
		rec.status = f.Status
		if rec.status == 0 {
			rec.status = http.StatusInternalServerError
		}
		for k, v := range f.Header {
			rec.header[k] = append([]string(nil), v...)
		}
		if rec.header.Get("Content-Type") == "" {
			rec.header.Set("Content-Type", "application/json")
		}
		rec.body.WriteString(f.Body)
	} else {
		if s.external() {
			s.preAuthenticate(r, ri)
		}
		s.handle(rec, r, ri)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if f != nil && len(f.Header) > 0 {
			// A Header without Status or Body decorates the real response.
			faults = append(faults, "header")
			for k, v := range f.Header {
				rec.header[k] = append([]string(nil), v...)
			}
		}
	}
	entry.Status = rec.status
	entry.Authenticated = ri.authenticated
	entry.TokenExpired = ri.tokenExpired
	entry.UserID, entry.DeviceID = ri.userID, ri.deviceID

	if f != nil && f.Delay > 0 {
		// The handler already ran: a slow server whose work is done even
		// when the client gives up waiting.
		faults = append(faults, "delay")
		if err := s.sleepCtx(r.Context(), f.Delay); err != nil {
			entry.Fault = strings.Join(append(faults, "cancelled"), "+")
			s.appendLog(entry)
			return
		}
	}
	switch {
	case f != nil && f.DropAfterHandling:
		faults = append(faults, "drop")
		entry.Fault = strings.Join(faults, "+")
		s.appendLog(entry)
		s.kill(w, nil)
		return
	case f != nil && f.Truncate:
		faults = append(faults, "truncate")
		entry.Fault = strings.Join(faults, "+")
		s.appendLog(entry)
		s.kill(w, rec)
		return
	}
	entry.Fault = strings.Join(faults, "+")
	s.appendLog(entry)
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(rec.body.Len()))
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// kill closes the connection without a complete response. With rec it first
// writes the status line, the full headers (Content-Length of the whole body)
// and half of the body, so the client sees a plausible but cut-off reply.
func (s *Server) kill(w http.ResponseWriter, rec *recorder) {
	conn, bufw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (e.g. HTTP/2): abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	if rec == nil {
		return
	}
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(rec.status) + " " + http.StatusText(rec.status) + "\r\n")
	rec.header.Set("Content-Length", strconv.Itoa(rec.body.Len()))
	rec.header.Set("Connection", "close")
	_ = rec.header.Write(&b)
	b.WriteString("\r\n")
	b.Write(rec.body.Bytes()[:rec.body.Len()/2])
	_, _ = bufw.Write(b.Bytes())
	_ = bufw.Flush()
	// Give the client a moment to read the partial body before the reset a
	// close with unread input can cause.
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = bufw.Reader.WriteTo(io.Discard)
	}
}

// errServerClosed is returned by waits interrupted by Close.
var errServerClosed = errors.New("homeserver: server closed")

// sleepCtx waits d unless ctx or the server ends first.
func (s *Server) sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return errServerClosed
	}
}
