// Package oidctest runs a real OAuth 2.0 authorization server, oidc-provider
// (github.com/panva/node-oidc-provider, MIT) pinned by the Node project beside
// this file, as a separate process on loopback, for tests that must meet an
// authorization server nobody here wrote.
//
// server.mjs configures it for Matrix: open dynamic registration of public
// native clients, the device flow, the code flow with PKCE (S256) and loopback
// redirect URIs on any port, refresh tokens with rotation, revocation, and
// introspection for the homeserver's confidential client; the Matrix scopes
// with any device ID; a few users with passwords and plain HTML sign-in and
// consent pages that Browser drives with a cookie jar.
//
// Clients reach it through a small front on 127.0.0.1 run by this package (the
// issuer URL is the front's), which forwards every request and can lose a
// response after the server handled it (DropResponse).
package oidctest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/proctest"
)

// ProviderVersion is the oidc-provider release package.json pins.
const ProviderVersion = "9.13.3"

// EnvRequire makes a missing node or npm, or a failed install, a test failure
// instead of a skip.
const EnvRequire = "MXAUTH_REAL_OAUTH"

// Required reports whether the environment demands the real authorization server.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Users are the accounts every server has unless Options.Users says otherwise.
var Users = map[string]string{"alice": "alice-password", "bob": "bob-password"}

// projectDir is the Node project, found next to this source file.
func projectDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the oidc-provider project directory")
	}
	dir := filepath.Dir(file)
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err != nil {
		return "", fmt.Errorf("oidc-provider project not found at %s: %w", dir, err)
	}
	return dir, nil
}

// stampName is written into node_modules after a successful `npm ci`, holding
// a hash of the lockfile it installed: an install that is missing, interrupted
// or from another lockfile is not taken for current.
const stampName = ".mxauth-lock-sha256"

func lockHash(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), `"oidc-provider": "`+ProviderVersion+`"`) {
		return "", fmt.Errorf("package-lock.json does not pin oidc-provider %s", ProviderVersion)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func installed(dir, want string) bool {
	got, err := os.ReadFile(filepath.Join(dir, "node_modules", stampName))
	return err == nil && strings.TrimSpace(string(got)) == want
}

var (
	installOnce sync.Once
	installErr  error
)

// Install makes sure node and npm are there and node_modules holds what the
// lockfile pins, running `npm ci` when it does not (only when Required: a
// first install needs the npm registry, which a plain `go test` should not).
func Install() error {
	installOnce.Do(func() { installErr = install() })
	return installErr
}

func install() error {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed", tool)
		}
	}
	dir, err := projectDir()
	if err != nil {
		return err
	}
	want, err := lockHash(dir)
	if err != nil {
		return err
	}
	if installed(dir, want) {
		return nil
	}
	if !Required() {
		return fmt.Errorf("oidc-provider is not installed (run npm ci in %s, or set %s=1)", dir, EnvRequire)
	}
	// Without an exclusive lock (no flock on this system), run one test process at a time for a
	// first install.
	unlock, _, err := proctest.LockFile(filepath.Join(dir, ".npm-ci.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if installed(dir, want) { // another test process installed it meanwhile
		return nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
	}
	return os.WriteFile(filepath.Join(dir, "node_modules", stampName), []byte(want+"\n"), 0o644)
}

// SkipReason says why a test should not start the server here ("" to go ahead).
func SkipReason() string {
	if err := Install(); err != nil && !Required() {
		return err.Error()
	}
	return ""
}

// Options tune a server.
type Options struct {
	Users          map[string]string // user name -> password; default Users
	AccessTTL      time.Duration     // access token lifetime; default 5 min, as MAS
	DeviceInterval time.Duration     // the device reply's interval; default 1 s
	// StrictReplay keeps oidc-provider's own rule for a rotated refresh token
	// redeemed again (the grant is revoked) instead of MAS's (accepted while
	// the pair its redemption issued is unused).
	StrictReplay bool
}

// Server is a running oidc-provider behind its front.
type Server struct {
	Issuer         string // http://127.0.0.1:PORT, no trailing slash
	ResourceClient string // the homeserver's client ID at the introspection endpoint
	ResourceSecret string
	Users          map[string]string

	dir      string
	logPath  string
	proc     *proctest.Proc
	stdin    io.WriteCloser
	front    *http.Server
	frontLn  net.Listener
	upstream *url.URL

	notifyPath string // where the server reports ended sessions, on the front

	mu     sync.Mutex
	ended  []func(sub, deviceID string)
	drops  []drop
	lost   []string
	counts map[string]int
}

type drop struct {
	path  string
	count int
}

// New starts a server for t, skipping t (or failing it under EnvRequire) when
// the server cannot run here, and stops it when t ends.
func New(t testing.TB, opt Options) *Server {
	t.Helper()
	if err := Install(); err != nil {
		if Required() {
			t.Fatalf("real authorization server: %v", err)
		}
		t.Skipf("real authorization server: %v", err)
	}
	s, err := Start(opt)
	if err != nil {
		t.Fatalf("starting oidc-provider: %v", err)
	}
	t.Cleanup(s.Stop)
	t.Cleanup(func() { // runs before Stop removes the log
		if t.Failed() {
			t.Logf("oidc-provider's log:\n%s", s.Log())
		}
	})
	return s
}

// Start installs if needed and starts a server; Stop ends it.
func Start(opt Options) (*Server, error) {
	if err := Install(); err != nil {
		return nil, err
	}
	dir, err := projectDir()
	if err != nil {
		return nil, err
	}
	if opt.Users == nil {
		opt.Users = Users
	}
	if opt.AccessTTL <= 0 {
		opt.AccessTTL = 5 * time.Minute
	}
	if opt.DeviceInterval <= 0 {
		opt.DeviceInterval = time.Second
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	logDir, err := os.MkdirTemp("", "mxauth-oidc-")
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{
		Issuer:         "http://" + ln.Addr().String(),
		ResourceClient: "homeserver",
		ResourceSecret: randomHex(24),
		Users:          opt.Users,
		dir:            logDir,
		logPath:        filepath.Join(logDir, "oidc-provider.log"),
		frontLn:        ln,
		counts:         map[string]int{},
		notifyPath:     "/_oidctest/session-ended/" + randomHex(16),
	}
	if err := s.startNode(dir, opt); err != nil {
		ln.Close()
		os.RemoveAll(logDir)
		return nil, err
	}
	s.startFront()
	if err := s.proc.WaitReady(s.Issuer+"/.well-known/openid-configuration", 30*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) startNode(dir string, opt Options) error {
	users, _ := json.Marshal(opt.Users)
	replay := "mas"
	if opt.StrictReplay {
		replay = "strict"
	}
	cmd := exec.Command("node", "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OIDC_ISSUER="+s.Issuer,
		"OIDC_PORT=0",
		"OIDC_USERS="+string(users),
		"OIDC_RS_ID="+s.ResourceClient,
		"OIDC_RS_SECRET="+s.ResourceSecret,
		fmt.Sprintf("OIDC_ACCESS_TTL=%d", int(opt.AccessTTL.Seconds())),
		fmt.Sprintf("OIDC_DEVICE_INTERVAL=%d", int(opt.DeviceInterval.Seconds())),
		"OIDC_REPLAY="+replay,
		"OIDC_NOTIFY_URL="+s.Issuer+s.notifyPath,
		"NODE_ENV=test",
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	// The server exits when this pipe closes, so it cannot outlive a test
	// process that dies without running Stop.
	if s.stdin, err = cmd.StdinPipe(); err != nil {
		return err
	}
	if s.proc, err = proctest.Start("oidc-provider", cmd, s.logPath); err != nil {
		return err
	}
	logFile := s.proc.Log()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				select {
				case addr <- a:
				default:
				}
			} else {
				fmt.Fprintln(logFile, sc.Text())
			}
		}
	}()
	select {
	case a := <-addr:
		s.upstream = &url.URL{Scheme: "http", Host: a}
		return nil
	case <-s.proc.Done():
		return s.proc.ExitedError()
	case <-time.After(30 * time.Second):
		s.stopNode()
		return fmt.Errorf("oidc-provider did not start within 30 s: %s", s.proc.LogTail())
	}
}

// startFront serves the issuer address: each request goes to the server,
// keeping its Host (the provider builds its URLs from it), and is counted; a
// DropResponse fault lets the server handle it and then cuts the connection.
func (s *Server) startFront() {
	proxy := httputil.NewSingleHostReverseProxy(s.upstream)
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	s.front = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == s.notifyPath {
			s.sessionEnded(w, r)
			return
		}
		if s.takeDrop(r.URL.Path) {
			rec := &discard{header: http.Header{}}
			proxy.ServeHTTP(rec, r)
			s.mu.Lock()
			s.lost = append(s.lost, rec.body.String())
			s.mu.Unlock()
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = s.front.Serve(s.frontLn) }()
}

// discard takes a response that is then never sent.
type discard struct {
	header http.Header
	body   bytes.Buffer
}

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return d.body.Write(b) }
func (d *discard) WriteHeader(int)             {}

func (s *Server) takeDrop(path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[path]++
	for i, d := range s.drops {
		if d.path == path {
			if d.count--; d.count <= 0 {
				s.drops = append(s.drops[:i], s.drops[i+1:]...)
			} else {
				s.drops[i] = d
			}
			return true
		}
	}
	return false
}

// sessionEnded takes the server's report that a session (one device of a
// user) ended, and passes it on to the OnSessionEnd hooks.
func (s *Server) sessionEnded(w http.ResponseWriter, r *http.Request) {
	var m struct {
		Sub      string `json:"sub"`
		DeviceID string `json:"device_id"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&m); err != nil || m.Sub == "" || m.DeviceID == "" {
		http.Error(w, "bad report", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	hooks := append([]func(string, string){}, s.ended...)
	s.mu.Unlock()
	for _, h := range hooks {
		h(m.Sub, m.DeviceID)
	}
	w.WriteHeader(http.StatusNoContent)
}

// OnSessionEnd calls f whenever a session ends at the server (revocation of
// either token, a replay, the account page), with the user's sub and the
// device ID of the session's device scope, before the request that ended it
// is answered.
func (s *Server) OnSessionEnd(f func(sub, deviceID string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = append(s.ended, f)
}

// SyncDevices deletes a device from hs when its session ends here, as Matrix
// Authentication Service has Synapse do, so the homeserver's device list
// follows the sessions.
func (s *Server) SyncDevices(hs *homeserver.Server) {
	s.OnSessionEnd(func(sub, deviceID string) {
		userID := sub
		if !strings.HasPrefix(sub, "@") {
			userID = "@" + sub + ":" + hs.ServerName()
		}
		hs.HardLogoutDevice(userID, deviceID)
	})
}

// DropResponse makes the next count requests to path (e.g. "/token") reach the
// server, which handles them, and then lose their response: the connection
// closes without one.
func (s *Server) DropResponse(path string, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops = append(s.drops, drop{path: path, count: count})
}

// LostResponses are the bodies of the responses DropResponse withheld, oldest
// first, so a test can check what became of what the client never saw.
func (s *Server) LostResponses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lost...)
}

// Requests counts the requests that reached path since the start.
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[path]
}

// Log is what the server wrote so far (its warnings and errors).
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Stop ends the server (its whole process group) and its front.
func (s *Server) Stop() {
	if s.front != nil {
		s.front.Close()
	}
	s.stopNode()
	os.RemoveAll(s.dir)
}

func (s *Server) stopNode() {
	if s.proc == nil {
		return
	}
	s.proc.Stop()
	if s.stdin != nil {
		s.stdin.Close()
	}
}

// Running reports whether the server process is still alive.
func (s *Server) Running() bool {
	select {
	case <-s.proc.Done():
		return false
	default:
		return true
	}
}

// ExternalAuth is the homeserver configuration that validates tokens here.
func (s *Server) ExternalAuth() *homeserver.ExternalAuth {
	return &homeserver.ExternalAuth{Issuer: s.Issuer, ClientID: s.ResourceClient, ClientSecret: s.ResourceSecret}
}

// Introspect asks the server about a token as the homeserver does; active is
// its answer.
func (s *Server) Introspect(ctx context.Context, token string) (active bool, reply map[string]any, err error) {
	form := url.Values{"token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Issuer+"/token/introspection", strings.NewReader(form.Encode()))
	if err != nil {
		return false, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(s.ResourceClient, s.ResourceSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, nil, fmt.Errorf("introspection: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return false, nil, err
	}
	active, _ = reply["active"].(bool)
	return active, reply, nil
}
