// Package dendritetest builds and runs a real Dendrite homeserver as a separate process on
// loopback, for tests that must meet software nobody here wrote.
//
// Dendrite is pinned by the nested module in ../dendrite and built from there with `go build`, so
// it is never linked into mxauth. The binaries are cached in the user cache dir, in a directory
// named by a hash of the nested go.mod and go.sum: a change to either builds afresh.
package dendritetest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"mxauth/matrix/matrixtest/proctest"
)

// Module and Version name the Dendrite release the nested module pins (Apache-2.0); Build
// refuses to run if its go.mod requires anything else.
const (
	Module  = "github.com/matrix-org/dendrite"
	Version = "v0.13.8"
)

// EnvRequire makes a missing toolchain or a failed build a test failure instead of a skip.
const EnvRequire = "MXAUTH_REAL_HOMESERVER"

// Captured before any test rewrites HOME or XDG_* (the keyring tests do), so the build keeps
// using the real module and build caches.
var (
	buildEnv    = os.Environ()
	cacheBase   = userCacheDir()
	buildOnce   sync.Once
	builtDir    string
	buildErr    error
	buildTook   time.Duration
	sharedToken = "mxauth-test-shared-secret"
)

func userCacheDir() string {
	if d := os.Getenv("MXAUTH_DENDRITE_CACHE"); d != "" {
		return d
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "mxauth-cache")
	}
	return filepath.Join(d, "mxauth")
}

// moduleDir is the nested module that pins Dendrite, found next to this source file.
func moduleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the dendrite module directory")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "dendrite")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("dendrite module not found at %s: %w", dir, err)
	}
	return dir, nil
}

var binaries = []string{"dendrite", "generate-config", "generate-keys"}

// stampName is written into a build directory last, holding its cache key: a directory without
// it (an interrupted build, or anything else) is never taken for a finished build.
const stampName = "cache-key"

// cacheKey hashes the nested module's go.mod and go.sum, which fix every line of Dendrite's
// source and dependencies that the build compiles. It also checks that go.mod pins Module at
// Version, so the version this package reports is the one that runs.
func cacheKey(modDir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(modDir, name))
		if err != nil {
			return "", fmt.Errorf("dendrite module: %w", err)
		}
		if name == "go.mod" && !requires(b, Module, Version) {
			return "", fmt.Errorf("dendrite module %s does not require %s %s", filepath.Join(modDir, name), Module, Version)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// requires reports whether a go.mod requires module at version, in a single-line or block require.
func requires(gomod []byte, module, version string) bool {
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == module && f[1] == version {
			return true
		}
	}
	return false
}

// buildDir is where the binaries built for key live under base.
func buildDir(base, key string) string {
	return filepath.Join(base, "dendrite-"+Version+"-"+key)
}

// current reports whether dir holds a finished build for key: its stamp says key and every
// binary is there.
func current(dir, key string) bool {
	stamp, err := os.ReadFile(filepath.Join(dir, stampName))
	if err != nil || strings.TrimSpace(string(stamp)) != key {
		return false
	}
	for _, n := range binaries {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			return false
		}
	}
	return true
}

// Cached reports whether the binaries for the nested module as it is now are already built, so
// starting costs about a second rather than a build (minutes on a cold Go cache).
func Cached() bool {
	src, err := moduleDir()
	if err != nil {
		return false
	}
	key, err := cacheKey(src)
	if err != nil {
		return false
	}
	return current(buildDir(cacheBase, key), key)
}

// Required reports whether the environment demands a real homeserver.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// SkipReason says why a test should not start Dendrite here ("" to go ahead):
// a first build is left to runs that ask for it, so a plain `go test ./...`
// stays quick on a new machine.
func SkipReason() string {
	if Required() || Cached() {
		return ""
	}
	return fmt.Sprintf("Dendrite is not built yet (a first build takes minutes); set %s=1 to build and run these tests", EnvRequire)
}

// Build compiles dendrite, generate-config and generate-keys once per cache key and returns the
// directory holding them and how long this call spent building (0 when cached).
func Build() (dir string, took time.Duration, err error) {
	buildOnce.Do(func() {
		builtDir, buildTook, buildErr = build(cacheBase)
	})
	return builtDir, buildTook, buildErr
}

// build makes sure base holds a current build for the nested module. Concurrent test processes
// take turns on a lock file; each builds into a directory of its own that is renamed into place
// only when complete, so a killed build leaves nothing that looks finished.
func build(base string) (string, time.Duration, error) {
	src, err := moduleDir()
	if err != nil {
		return "", 0, err
	}
	key, err := cacheKey(src)
	if err != nil {
		return "", 0, err
	}
	dir := buildDir(base, key)
	if current(dir, key) {
		return dir, 0, nil
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", 0, err
	}
	// Without an exclusive lock (no flock on this system) two processes may both build, and the
	// first complete build renamed into place is the one both use.
	unlock, exclusive, err := proctest.LockFile(dir + ".lock")
	if err != nil {
		return "", 0, err
	}
	defer unlock()
	if current(dir, key) { // built by another process while this one waited
		return dir, 0, nil
	}
	if exclusive { // any half-done build left here belongs to a process that died
		old, _ := filepath.Glob(dir + ".building-*")
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	tmp, err := os.MkdirTemp(base, filepath.Base(dir)+".building-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	args := []string{"build", "-mod=readonly", "-o", tmp + string(os.PathSeparator)}
	for _, n := range binaries {
		args = append(args, Module+"/cmd/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = src
	cmd.Env = buildEnv
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", 0, fmt.Errorf("building dendrite: %v\n%s", err, out)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp made it private
		return "", 0, err
	}
	if err := os.WriteFile(filepath.Join(tmp, stampName), []byte(key+"\n"), 0o644); err != nil {
		return "", 0, err
	}
	if current(dir, key) { // another process finished first (possible only without a lock)
		return dir, time.Since(start), nil
	}
	if err := os.RemoveAll(dir); err != nil { // not a current build: an interrupted or foreign one
		return "", 0, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", 0, err
	}
	return dir, time.Since(start), nil
}

// Options tune the server for a test.
type Options struct {
	// RateLimitThreshold is how many authenticated requests per device Dendrite allows within
	// RateLimitCooloff before answering 429 (0 disables rate limiting).
	RateLimitThreshold int
	RateLimitCooloff   time.Duration
}

// Server is a running Dendrite.
type Server struct {
	URL        string // base URL, http://127.0.0.1:PORT
	ServerName string // 127.0.0.1:PORT, so user IDs are @name:127.0.0.1:PORT
	Dir        string
	proc       *proctest.Proc
}

// Start builds (or reuses) the binaries, writes keys and a config into a fresh directory, and
// starts Dendrite on a free loopback port. Stop ends it.
func Start(opt Options) (*Server, error) {
	bin, _, err := Build()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mxauth-dendrite-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := startIn(bin, dir, opt)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startIn(bin, dir string, opt Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("127.0.0.1:%d", port)
	base := "http://" + name
	keyPath := filepath.Join(dir, "matrix_key.pem")
	if _, err := os.Stat(keyPath); err != nil {
		if out, err := exec.Command(filepath.Join(bin, "generate-keys"), "--private-key", keyPath).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("generate-keys: %v: %s", err, out)
		}
	}
	cfg, err := exec.Command(filepath.Join(bin, "generate-config"), "-ci", "-dir", dir, "-server", name).Output()
	if err != nil {
		return nil, fmt.Errorf("generate-config: %v", err)
	}
	conf, err := configure(string(cfg), keyPath, base, opt)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "dendrite.yaml")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(bin, "dendrite"), "-config", confPath, "-http-bind-address", name)
	cmd.Dir = dir
	proc, err := proctest.Start("dendrite", cmd, filepath.Join(dir, "stdout.log"))
	if err != nil {
		return nil, err
	}
	s := &Server{URL: base, ServerName: name, Dir: dir, proc: proc}
	if err := proc.WaitReady(s.URL+"/_matrix/client/versions", 60*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// configure edits the config generate-config wrote for CI: the key, well-known, registration by
// shared secret only, no federation, and the rate limiter. Every edit must find the text it
// replaces, so a Dendrite whose config reads differently fails here instead of running with
// defaults nobody chose.
func configure(conf, keyPath, base string, opt Options) (string, error) {
	edits := [][2]string{
		{"private_key: matrix_key.pem", "private_key: " + keyPath},
		{`well_known_client_name: ""`, fmt.Sprintf("well_known_client_name: %q", base)},
		{"registration_disabled: false", "registration_disabled: true"},
		{"registration_shared_secret: complement", "registration_shared_secret: " + sharedToken},
		{"disable_federation: false", "disable_federation: true"},
	}
	if opt.RateLimitThreshold > 0 {
		cooloff := opt.RateLimitCooloff
		if cooloff == 0 {
			cooloff = time.Second
		}
		edits = append(edits, [2]string{"rate_limiting:\n    enabled: false\n    threshold: 5\n    cooloff_ms: 500",
			fmt.Sprintf("rate_limiting:\n    enabled: true\n    threshold: %d\n    cooloff_ms: %d", opt.RateLimitThreshold, cooloff.Milliseconds())})
	}
	for _, e := range edits {
		if !strings.Contains(conf, e[0]) {
			return "", fmt.Errorf("generate-config: no %q in the generated config", e[0])
		}
		conf = strings.Replace(conf, e[0], e[1], 1)
	}
	return conf, nil
}

// Stop ends the server by its process group and removes its directory.
func (s *Server) Stop() {
	if s == nil || s.proc == nil {
		return
	}
	s.proc.Stop()
	os.RemoveAll(s.Dir)
}

// Register creates a user through Dendrite's shared-secret registration endpoint, signs out the
// device that registration creates (so the user starts with none), and returns the full user ID.
func (s *Server) Register(ctx context.Context, localpart, password string) (string, error) {
	nonceURL := s.URL + "/_synapse/admin/v1/register"
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nonceURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	var n struct {
		Nonce string `json:"nonce"`
	}
	err = json.NewDecoder(resp.Body).Decode(&n)
	resp.Body.Close()
	if err != nil || n.Nonce == "" {
		return "", fmt.Errorf("registration nonce: %v", err)
	}
	mac := hmac.New(sha1.New, []byte(sharedToken))
	mac.Write([]byte(n.Nonce + "\x00" + localpart + "\x00" + password + "\x00notadmin"))
	body, _ := json.Marshal(map[string]any{
		"nonce": n.Nonce, "username": localpart, "password": password, "admin": false,
		"mac": hex.EncodeToString(mac.Sum(nil)),
	})
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, nonceURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("register %s: HTTP %d %s", localpart, resp.StatusCode, out.Error)
	}
	if out.UserID == "" {
		out.UserID = "@" + localpart + ":" + s.ServerName
	}
	// Registration signs a device in; end it so the user starts with no devices.
	if out.AccessToken != "" {
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/_matrix/client/v3/logout", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+out.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", fmt.Errorf("ending the registration session of %s: %w", localpart, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return "", fmt.Errorf("ending the registration session of %s: HTTP %d", localpart, resp.StatusCode)
		}
	}
	return out.UserID, nil
}
