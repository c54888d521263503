package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"mxauth/keystore"
	"mxauth/matrix/homeserver"
	"mxauth/ui/app"
)

// The hostile tests drive the real binary against a scripted server that
// misbehaves on purpose, next to a good account on a well-behaved server,
// and check that output stays clean, failures are bounded and stored
// accounts survive.

// evilVisible is the printable part of evilText: it may be shown, nothing else.
const evilVisible = "HOSTILE-TEXT"

// evilText carries what a server must never get onto the user's terminal:
// clear screen, an OSC 52 clipboard write, an OSC 8 link, BEL, a C1 CSI, a
// bidi override and NUL.
const evilText = "\x1b[2J\x1b[H" +
	"\x1b]52;c;ZWNobyBwd25lZA==\x07" +
	"\x1b]8;;https://evil.example/\x1b\\" + evilVisible + "\x1b]8;;\x1b\\" +
	"\a\u009b31m\u202e\x00tail"

// controlRunes lists what in s could drive a terminal: C0 (except newline and
// tab), DEL, C1, bidi controls and invalid UTF-8.
func controlRunes(s string) []string {
	var bad []string
	for i, r := range s {
		switch {
		case r == '\n' || r == '\t':
		case r == utf8.RuneError:
			bad = append(bad, fmt.Sprintf("invalid UTF-8 at %d", i))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f),
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
			bad = append(bad, fmt.Sprintf("%U at %d", r, i))
		}
	}
	return bad
}

// clean fails the test if stdout or stderr carries control characters.
func clean(t *testing.T, r result) {
	t.Helper()
	if bad := controlRunes(r.stdout); len(bad) > 0 {
		t.Errorf("stdout carries control characters %v: %q", bad, r.stdout)
	}
	if bad := controlRunes(r.stderr); len(bad) > 0 {
		t.Errorf("stderr carries control characters %v: %q", bad, r.stderr)
	}
}

// hostileServer is a homeserver whose every answer the test scripts. Until
// told otherwise it behaves, so an account can be signed in to it first.
type hostileServer struct {
	*httptest.Server
	userID  string
	release chan struct{} // closed at cleanup: blocking handlers return

	mu          sync.Mutex
	routes      map[string]http.HandlerFunc // "METHOD /path"; a trailing * matches a prefix
	log         []string
	issued      int
	lastAccess  string
	lastRefresh string
	oauthScope  string // the scope of the last device grant or token request
}

const hostileDevice = "HOSTILEDEV"

func newHostile(t *testing.T) *hostileServer {
	t.Helper()
	h := &hostileServer{release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(func() {
		close(h.release)
		h.CloseClientConnections()
		h.Close()
	})
	h.userID = "@mallory:" + strings.TrimPrefix(h.URL, "http://")
	forgetKeyringItems(t, strings.TrimPrefix(h.URL, "http://"))
	h.behave()
	return h
}

// behave restores well-behaved answers everywhere.
func (h *hostileServer) behave() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routes = map[string]http.HandlerFunc{
		"GET /.well-known/matrix/client": jsonReply(200, map[string]any{"m.homeserver": map[string]any{"base_url": h.URL}}),
		"GET /_matrix/client/versions":   jsonReply(200, map[string]any{"versions": []string{"v1.1", "v1.11"}}),
		"GET /_matrix/client/v3/login": jsonReply(200, map[string]any{"flows": []any{
			map[string]any{"type": "m.login.password"},
			map[string]any{"type": "m.login.token", "get_login_token": true},
		}}),
		"POST /_matrix/client/v3/login":       h.loginReply(func(m map[string]any) {}),
		"POST /_matrix/client/v3/refresh":     h.refreshReply,
		"GET /_matrix/client/v3/capabilities": jsonReply(200, map[string]any{"capabilities": map[string]any{"m.get_login_token": map[string]any{"enabled": true}}}),
		"GET /_matrix/client/v3/devices": jsonReply(200, map[string]any{"devices": []any{
			map[string]any{"device_id": hostileDevice, "display_name": "laptop"},
			map[string]any{"device_id": "OTHERDEV", "display_name": "phone"},
		}}),
		"GET /_matrix/client/v3/account/whoami": jsonReply(200, map[string]any{"user_id": h.userID, "device_id": hostileDevice}),
		"POST /_matrix/client/v1/login/get_token": uiaThen(jsonReply(200, map[string]any{
			"login_token": "hostile_login_token_0123456789abcdef", "expires_in_ms": 120000,
		})),
		"DELETE /_matrix/client/v3/devices/*":    uiaThen(jsonReply(200, map[string]any{})),
		"POST /_matrix/client/v3/delete_devices": uiaThen(jsonReply(200, map[string]any{})),
		"POST /_matrix/client/v3/logout":         jsonReply(200, map[string]any{}),
	}
}

// set replaces the answer for "METHOD /path".
func (h *hostileServer) set(route string, f http.HandlerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.routes[route] = f
}

func (h *hostileServer) serve(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	h.mu.Lock()
	h.log = append(h.log, key)
	f, ok := h.routes[key]
	if !ok {
		for k, g := range h.routes {
			if p, wild := strings.CutSuffix(k, "*"); wild && strings.HasPrefix(key, p) {
				f, ok = g, true
				break
			}
		}
	}
	h.mu.Unlock()
	if !ok {
		jsonReply(404, map[string]any{"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})(w, r)
		return
	}
	f(w, r)
}

// hits counts logged requests whose "METHOD /path" starts with prefix.
func (h *hostileServer) hits(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, k := range h.log {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func (h *hostileServer) resetLog() {
	h.mu.Lock()
	h.log = nil
	h.mu.Unlock()
}

func (h *hostileServer) access() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastAccess
}

func (h *hostileServer) refresh() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastRefresh
}

// newTokens issues a fresh token pair (the hostile server keeps no sessions).
func (h *hostileServer) newTokens() (access, refresh string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.issued++
	// A random part, as real tokens have, long enough that an echo of a
	// piece of it is worth redacting.
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	h.lastAccess = fmt.Sprintf("hostile_at_%d_%x", h.issued, raw[:12])
	h.lastRefresh = fmt.Sprintf("hostile_rt_%d_%x", h.issued, raw[12:])
	return h.lastAccess, h.lastRefresh
}

// loginReply answers a login with fresh tokens; edit changes the reply.
func (h *hostileServer) loginReply(edit func(map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		at, rt := h.newTokens()
		m := map[string]any{
			"user_id": h.userID, "device_id": hostileDevice,
			"access_token": at, "refresh_token": rt, "expires_in_ms": 3600000,
		}
		edit(m)
		jsonReply(200, m)(w, r)
	}
}

func (h *hostileServer) refreshReply(w http.ResponseWriter, r *http.Request) {
	at, rt := h.newTokens()
	jsonReply(200, map[string]any{"access_token": at, "refresh_token": rt, "expires_in_ms": 3600000})(w, r)
}

// block never answers: it returns only when the client gives up or the test ends.
func (h *hostileServer) block(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-h.release:
	}
}

func jsonReply(status int, v any) http.HandlerFunc {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return rawReply(status, "application/json", string(body))
}

func rawReply(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// uiaThen asks for a password stage (session "S1") until a request carries
// auth, then answers with ok.
func uiaThen(ok http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Auth *struct {
				Type string `json:"type"`
			} `json:"auth"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req)
		if req.Auth == nil || req.Auth.Type == "" {
			jsonReply(401, map[string]any{"flows": []any{map[string]any{"stages": []string{"m.login.password"}}}, "params": map[string]any{}, "session": "S1"})(w, r)
			return
		}
		ok(w, r)
	}
}

// hugeJSON streams a 200 JSON object padded to size bytes, without holding it.
func hugeJSON(size int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"user_id":"@x:y","device_id":"D","access_token":"syt_huge","refresh_token":"syr_huge","pad":"`)
		chunk := bytes.Repeat([]byte("a"), 64<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client stopped reading
			}
		}
		_, _ = io.WriteString(w, `"}`)
	}
}

// cutBody announces the whole JSON body but sends half of it, then hangs up.
func cutBody(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)/2])
		_ = buf.Flush()
	}
}

// hostileEnv is one config dir holding a good account (alice on the test homeserver)
// and an account on the hostile server (mallory), both signed in.
type hostileEnv struct {
	c       *cli
	good    *homeserver.Server
	alice   string
	h       *hostileServer
	malAcc  string // mallory's access token as stored
	malHome string // mallory's stored homeserver
}

func setupHostile(t *testing.T) *hostileEnv {
	t.Helper()
	good, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	c.login(good, alice, pw)
	h := newHostile(t)
	c.ok("hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin")
	return &hostileEnv{c: c, good: good, alice: alice, h: h, malAcc: h.access(), malHome: h.URL}
}

// intact checks that the good account still works, that the list parses and
// holds exactly alice and mallory as expected, and that mallory's stored token
// is the one the server last handed out successfully. It first makes the
// hostile server behave again, so the next case starts from a clean script.
func (e *hostileEnv) intact(t *testing.T) {
	t.Helper()
	e.c.t = t
	e.h.behave()
	tok := strings.TrimSpace(e.c.ok("", "token", "--account", e.alice).stdout)
	if who := whoami(t, e.good.URL(), tok); who.UserID != e.alice {
		t.Fatalf("the good account's token belongs to %s", who.UserID)
	}
	r := e.c.ok("", "list", "--json")
	clean(t, r)
	list := decodeJSON[[]accountJSON](t, r.stdout)
	byUser := map[string]accountJSON{}
	for _, a := range list {
		byUser[a.UserID] = a
	}
	if len(list) != 2 || len(byUser) != 2 {
		t.Fatalf("want alice and mallory listed, got %+v", list)
	}
	a, m := byUser[e.alice], byUser[e.h.userID]
	if a.Homeserver != e.good.URL() || a.State != "active" || !a.Default || a.DeviceID == "" {
		t.Errorf("good account changed: %+v", a)
	}
	if m.Homeserver != e.malHome || m.DeviceID != hostileDevice || m.Default {
		t.Errorf("mallory's entry: %+v, want homeserver %s device %s", m, e.malHome, hostileDevice)
	}
	e.h.resetLog()
	got := strings.TrimSpace(e.c.ok("", "token", "--account", e.h.userID).stdout)
	if got != e.malAcc {
		t.Errorf("mallory's stored token is %q, want %q", got, e.malAcc)
	}
	if n := e.h.hits(""); n != 0 {
		t.Errorf("token with a valid token sent %d requests to the hostile server", n)
	}
}

// runTimed runs mxauth like run, bounded by ctx, and also reports the wall
// time and peak resident memory of the process.
func (c *cli) runTimed(ctx context.Context, stdin string, args ...string) (result, time.Duration, int64) {
	c.t.Helper()
	r, took, rss, err := c.execTimed(ctx, stdin, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return r, took, rss
}

// execTimed is runTimed without the test: safe to call from any goroutine.
func (c *cli) execTimed(ctx context.Context, stdin string, args ...string) (r result, took time.Duration, maxRSSKiB int64, err error) {
	cmd := c.command(ctx, stdin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	runErr := cmd.Run()
	took = time.Since(start)
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, took, 0, fmt.Errorf("mxauth %v still running after %s", args, took.Round(time.Millisecond))
	case errors.As(runErr, &ee):
		r.code = ee.ExitCode()
	case runErr != nil:
		return r, took, 0, fmt.Errorf("running mxauth %v: %v", args, runErr)
	}
	r.stdout, r.stderr = out.String(), errb.String()
	if cmd.ProcessState != nil {
		// Rusage.Maxrss is KiB on Linux; read by name so this builds everywhere.
		if v := reflect.ValueOf(cmd.ProcessState.SysUsage()); v.Kind() == reflect.Pointer && !v.IsNil() {
			if f := v.Elem().FieldByName("Maxrss"); f.IsValid() && f.CanInt() {
				maxRSSKiB = f.Int()
			}
		}
	}
	return r, took, maxRSSKiB, nil
}

// failsCleanly checks a failure: non-zero exit, one clean line on stderr,
// nothing on stdout, and that line contains every want (case-insensitive).
func failsCleanly(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("want a failure, got %s", r)
	}
	if r.stdout != "" {
		t.Errorf("stdout on failure: %q", r.stdout)
	}
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	oneLineStderr(t, r)
	clean(t, r)
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("crashed: %s", r)
	}
	// A one-shot command exits; it must not promise a retry that never comes.
	if strings.Contains(r.stderr, "retrying at") {
		t.Errorf("a failed command promises a retry: %s", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(w)) {
			t.Errorf("stderr lacks %q: %s", w, r.stderr)
		}
	}
}

func TestHostileEscapes(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	evilErr := func(status int) http.HandlerFunc {
		return jsonReply(status, map[string]any{"errcode": "M_UNKNOWN\x1b[2J", "error": evilText})
	}

	t.Run("login error", func(t *testing.T) {
		c.t = t
		h.set("POST /_matrix/client/v3/login", evilErr(400))
		r := c.run("hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin")
		failsCleanly(t, r, evilVisible)
		e.intact(t)
	})
	t.Run("discovery", func(t *testing.T) {
		c.t = t
		h.set("GET /.well-known/matrix/client", jsonReply(200, map[string]any{"m.homeserver": map[string]any{"base_url": "https://" + evilText + ".example"}}))
		r := c.run("hunter2\n", "login", "--user", h.userID, "--password-stdin")
		failsCleanly(t, r)
		h.set("GET /.well-known/matrix/client", evilErr(500))
		r = c.run("hunter2\n", "login", "--user", h.userID, "--password-stdin")
		clean(t, r)
		e.intact(t)
	})
	t.Run("refresh error", func(t *testing.T) {
		c.t = t
		h.set("POST /_matrix/client/v3/refresh", evilErr(500))
		failsCleanly(t, c.run("", "refresh", "--account", h.userID), evilVisible)
		h.set("POST /_matrix/client/v3/refresh", evilErr(400))
		failsCleanly(t, c.run("", "refresh", "--account", h.userID), evilVisible)
		e.intact(t)
	})
	t.Run("device names", func(t *testing.T) {
		c.t = t
		h.set("GET /_matrix/client/v3/devices", jsonReply(200, map[string]any{"devices": []any{
			map[string]any{"device_id": hostileDevice, "display_name": evilText, "last_seen_ip": "10.0.0.1" + evilText, "last_seen_ts": 1700000000000},
			map[string]any{"device_id": "EVIL\x1b]52;c;eA==\x07DEV\u202e", "display_name": "\x00\x07\u009b2J" + evilVisible},
		}}))
		r := c.ok("", "devices", "--account", h.userID)
		clean(t, r)
		if strings.Count(r.stdout, evilVisible) != 3 || !strings.Contains(r.stdout, "EVILDEV") {
			t.Errorf("devices should show the text without the escapes:\n%s", r.stdout)
		}
		r = c.ok("", "devices", "--account", h.userID, "--json")
		clean(t, r)
		devs := decodeJSON[[]deviceJSON](t, r.stdout)
		if len(devs) != 2 || !devs[0].Current {
			t.Fatalf("devices --json: %+v", devs)
		}
		for _, d := range devs {
			for _, s := range []string{d.DeviceID, d.DisplayName, d.LastSeenIP} {
				if bad := controlRunes(s); len(bad) > 0 {
					t.Errorf("devices --json value %q carries %v", s, bad)
				}
			}
		}
		e.intact(t)
	})
	t.Run("device delete error", func(t *testing.T) {
		c.t = t
		h.set("DELETE /_matrix/client/v3/devices/*", evilErr(400))
		failsCleanly(t, c.run("hunter2\n", "devices", "delete", "OTHERDEV", "--account", h.userID, "--password-stdin"), evilVisible)
		e.intact(t)
	})
	t.Run("wrong password text", func(t *testing.T) {
		c.t = t
		h.set("POST /_matrix/client/v1/login/get_token", jsonReply(401, map[string]any{
			"flows": []any{map[string]any{"stages": []string{"m.login.password"}}}, "session": "S1",
			"errcode": "M_FORBIDDEN\x1b[2J", "error": evilText,
		}))
		failsCleanly(t, c.run("hunter2\n", "login-token", "--account", h.userID, "--password-stdin"))
		e.intact(t)
	})
	t.Run("stage names", func(t *testing.T) {
		c.t = t
		h.set("POST /_matrix/client/v1/login/get_token", jsonReply(401, map[string]any{
			"flows": []any{map[string]any{"stages": []string{"m.login." + evilText}}}, "session": "S\x1b[2J1",
		}))
		failsCleanly(t, c.run("hunter2\n", "login-token", "--account", h.userID, "--password-stdin"), evilVisible)
		e.intact(t)
	})
	t.Run("html title", func(t *testing.T) {
		c.t = t
		h.set("POST /_matrix/client/v3/refresh", rawReply(502, "text/html", "<html><head><title>"+evilText+"</title></head><body>bad gateway</body></html>"))
		failsCleanly(t, c.run("", "refresh", "--account", h.userID), evilVisible, "not a Matrix response")
		e.intact(t)
	})
}

// TestHostileEchoedSecret: a server error that echoes the token it was sent,
// without its prefix, cut short or base64-encoded, shows none of it.
func TestHostileEchoedSecret(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	// echoes builds an error text from the secret the request carried.
	echoes := func(sent string) string {
		_, random, _ := strings.Cut(strings.TrimPrefix(sent, "hostile_"), "_")
		return "token " + random + " / " + sent[3:20] + " / " +
			base64.StdEncoding.EncodeToString([]byte(sent)) + " / " +
			base64.RawURLEncoding.EncodeToString([]byte("token="+sent))
	}
	echoBody := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				RefreshToken string `json:"refresh_token"`
			}
			_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
			jsonReply(status, map[string]any{"errcode": "M_UNKNOWN", "error": echoes(body.RefreshToken)})(w, r)
		}
	}
	echoHeader := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			sent := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			jsonReply(status, map[string]any{"errcode": "M_UNKNOWN", "error": echoes(sent)})(w, r)
		}
	}
	// The server knows every token it issued, not only the one a request carries.
	echoOther := func(status int, secret func(r *http.Request) string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			jsonReply(status, map[string]any{"errcode": "M_UNKNOWN", "error": echoes(secret(r))})(w, r)
		}
	}
	for _, tc := range []struct {
		name, route string
		reply       http.HandlerFunc
		args        []string
		secret      func() string
	}{
		{"refresh", "POST /_matrix/client/v3/refresh", echoBody(400), []string{"refresh", "--account", h.userID},
			h.refresh},
		{"devices", "GET /_matrix/client/v3/devices", echoHeader(400), []string{"devices", "--account", h.userID},
			func() string { return e.malAcc }},
		{"refresh echoing the access token", "POST /_matrix/client/v3/refresh",
			echoOther(400, func(*http.Request) string { return h.access() }), []string{"refresh", "--account", h.userID},
			func() string { return e.malAcc }},
		{"devices echoing the refresh token", "GET /_matrix/client/v3/devices",
			echoOther(400, func(*http.Request) string { return h.refresh() }), []string{"devices", "--account", h.userID},
			h.refresh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			secret := tc.secret()
			h.set(tc.route, tc.reply)
			r := c.run("", tc.args...)
			failsCleanly(t, r, "[redacted]")
			// "token=" is 8 base64 characters of its own: only what follows is the secret's.
			inside := base64.RawURLEncoding.EncodeToString([]byte("token=" + secret))[8:]
			for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), inside} {
				for i := 0; i+8 <= len(form); i++ {
					if strings.Contains(r.stderr, form[i:i+8]) {
						t.Errorf("stderr shows %q of the secret: %s", form[i:i+8], r.stderr)
						break
					}
				}
			}
			e.intact(t)
		})
	}
}

// TestHostileLoginReplyIDs: a login reply whose user or device ID carries
// escapes must not put them on the terminal, now or in later listings.
func TestHostileLoginReplyIDs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		field string
		value func(h *hostileServer) string
	}{
		{"device_id", "device_id", func(*hostileServer) string { return "DEV\x1b]52;c;eA==\x07\u202eX" }},
		{"user_id", "user_id", func(h *hostileServer) string {
			return "@mallory\x1b[2J\u009b31m:" + strings.TrimPrefix(h.URL, "http://")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setupHostile(t)
			h, c := e.h, e.c
			h.set("POST /_matrix/client/v3/login", h.loginReply(func(m map[string]any) { m[tc.field] = tc.value(h) }))
			r := c.run("hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin")
			clean(t, r)
			for _, args := range [][]string{{"list"}, {"list", "--json"}, {"token", "--account", h.userID}} {
				clean(t, c.run("", args...))
			}
		})
	}
}

// TestHostileLoginClaimsOtherAccount: a server whose login reply names an
// account mxauth holds for another homeserver must not take that account over.
func TestHostileLoginClaimsOtherAccount(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	before := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	h.set("POST /_matrix/client/v3/login", h.loginReply(func(m map[string]any) { m["user_id"] = e.alice }))
	r := c.run("hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin")
	clean(t, r)
	if r.code == 0 || !strings.Contains(r.stderr, "not "+h.userID) {
		t.Errorf("a login answered for another user must fail and say so: %s", r)
	}
	for _, a := range before {
		if a.UserID != e.alice {
			continue
		}
		if items := keyringItems(t, e.alice); !slices.Contains(items, e.alice+"|"+a.DeviceID) {
			t.Errorf("the good account's keyring item is gone: %v", items)
		}
	}
	e.intact(t)
}

func TestHostileHugeBody(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	// Baseline: the same failing commands against a small bad reply.
	h.set("POST /_matrix/client/v3/login", jsonReply(400, map[string]any{"errcode": "M_UNKNOWN", "error": "no"}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, _, base := c.runTimed(ctx, "hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin")

	for _, size := range []int{5 << 20, 256 << 20} {
		for _, op := range []struct {
			name, route string
			args        []string
			stdin       string
		}{
			{"login", "POST /_matrix/client/v3/login", []string{"login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin"}, "hunter2\n"},
			{"refresh", "POST /_matrix/client/v3/refresh", []string{"refresh", "--account", h.userID}, ""},
		} {
			t.Run(fmt.Sprintf("%s %d MiB", op.name, size>>20), func(t *testing.T) {
				c.t = t
				h.set(op.route, hugeJSON(size))
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				r, took, rss := c.runTimed(ctx, op.stdin, op.args...)
				failsCleanly(t, r, "larger than 1 MiB")
				t.Logf("%s: %s, peak RSS %d KiB (baseline %d KiB)", took.Round(time.Millisecond), strings.TrimSpace(r.stderr), rss, base)
				// Reading the body would cost at least its size; the cap is 1 MiB.
				if base > 0 && rss > base+16<<10 {
					t.Errorf("peak RSS %d KiB, baseline %d KiB: the body was not bounded", rss, base)
				}
				e.intact(t)
			})
		}
	}
}

// TestHostileHang: a server that never answers. Each call is bounded by the
// client timeout (matrix.DefaultTimeout, 30 s; MXAUTH_HTTP_TIMEOUT, here 2 s,
// as the full length adds nothing), so each command must end within it and
// 10 s more, with a message saying it timed out. The commands run side by
// side to keep the test at one timeout's length.
func TestHostileHang(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	const bound = timeout + 10*time.Second
	type op struct {
		name, route string
		args        func(h *hostileServer) []string
		stdin       string
	}
	ops := []op{
		{"login", "POST /_matrix/client/v3/login", func(h *hostileServer) []string {
			return []string{"login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin"}
		}, "hunter2\n"},
		{"refresh", "POST /_matrix/client/v3/refresh", func(h *hostileServer) []string {
			return []string{"refresh", "--account", h.userID}
		}, ""},
		{"devices", "GET /_matrix/client/v3/devices", func(h *hostileServer) []string {
			return []string{"devices", "--account", h.userID}
		}, ""},
	}
	type outcome struct {
		r    result
		took time.Duration
		err  error
	}
	envs := make([]*hostileEnv, len(ops))
	outs := make([]outcome, len(ops))
	for i, o := range ops {
		envs[i] = setupHostile(t)
		envs[i].c.extra = []string{"MXAUTH_HTTP_TIMEOUT=" + timeout.String()}
		envs[i].h.set(o.route, envs[i].h.block)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var wg sync.WaitGroup
	for i, o := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, took, _, err := envs[i].c.execTimed(ctx, o.stdin, o.args(envs[i].h)...)
			outs[i] = outcome{r, took, err}
		}()
	}
	wg.Wait()
	for i, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			out := outs[i]
			if out.err != nil {
				t.Fatalf("not within %s: %v", bound, out.err)
			}
			t.Logf("gave up after %s", out.took.Round(time.Millisecond))
			failsCleanly(t, out.r)
			if !strings.Contains(out.r.stderr, "did not answer in time") {
				t.Errorf("want a message saying the server did not answer in time: %s", out.r)
			}
			envs[i].intact(t)
		})
	}
}

// TestHostileUIAWithoutSession: a 401 with flows but no session, on every
// attempt. The command must stop after a bounded number of requests.
func TestHostileUIAWithoutSession(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	noSession := jsonReply(401, map[string]any{"flows": []any{map[string]any{"stages": []string{"m.login.password"}}}, "params": map[string]any{}})
	for _, op := range []struct {
		name, route string
		args        []string
	}{
		{"get_token", "POST /_matrix/client/v1/login/get_token", []string{"login-token", "--account", h.userID, "--password-stdin"}},
		{"devices delete", "DELETE /_matrix/client/v3/devices/", []string{"devices", "delete", "OTHERDEV", "--account", h.userID, "--password-stdin"}},
	} {
		t.Run(op.name, func(t *testing.T) {
			c.t = t
			h.set(op.route+"*", noSession)
			h.set(op.route, noSession)
			h.resetLog()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r, took, _ := c.runTimed(ctx, "hunter2\nhunter2\nhunter2\n", op.args...)
			failsCleanly(t, r)
			n := h.hits(op.route)
			t.Logf("%d requests, %s: %s", n, took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
			if n < 1 || n > 3 {
				t.Errorf("%d requests to %s, want 1..3", n, op.route)
			}
			t.Run("message", func(t *testing.T) {
				if strings.Contains(r.stderr, "wrong password") {
					t.Errorf("the server never said the password was wrong: %s", r)
				}
			})
			e.intact(t)
		})
	}
}

func TestHostileHTML(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	page := "<!DOCTYPE html><html><head><title>Bad Gateway</title></head><body><h1>502</h1></body></html>"
	loginArgs := []string{"login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin"}
	for _, tc := range []struct {
		name, route string
		reply       http.HandlerFunc
		args        []string
		want        string
	}{
		{"login 200", "POST /_matrix/client/v3/login", rawReply(200, "text/html", page), loginArgs, "malformed response"},
		{"login 502", "POST /_matrix/client/v3/login", rawReply(502, "text/html", page), loginArgs, "not a Matrix response"},
		{"refresh 200", "POST /_matrix/client/v3/refresh", rawReply(200, "text/html", page), []string{"refresh", "--account", h.userID}, "malformed response"},
		{"refresh 502", "POST /_matrix/client/v3/refresh", rawReply(502, "text/html", page), []string{"refresh", "--account", h.userID}, "not a Matrix response"},
		{"devices 200", "GET /_matrix/client/v3/devices", rawReply(200, "text/html", page), []string{"devices", "--account", h.userID}, "malformed response"},
		{"get_token 502", "POST /_matrix/client/v1/login/get_token", rawReply(502, "text/html", page), []string{"login-token", "--account", h.userID, "--password-stdin"}, "not a Matrix response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			h.set(tc.route, tc.reply)
			stdin := ""
			if strings.HasSuffix(tc.args[len(tc.args)-1], "-stdin") {
				stdin = "hunter2\n"
			}
			failsCleanly(t, c.run(stdin, tc.args...), tc.want)
			e.intact(t)
		})
	}
}

// TestHostileWellKnown: a login reply's well_known naming another base URL.
// mxauth may switch only to a URL that answered as a homeserver.
func TestHostileWellKnown(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	notHS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rawReply(404, "text/html", "<html><title>nothing here</title></html>")(w, r)
	}))
	defer notHS.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // its port now refuses connections
	otherHS := newHostile(t)

	for _, tc := range []struct {
		name, baseURL string
		mayUse        bool // a working homeserver: switching to it is allowed
	}{
		{"unreachable", closed.URL, false},
		{"not a homeserver", notHS.URL, false},
		{"plain http elsewhere", "http://192.0.2.1:8008", false},
		{"not http", "javascript:alert(1)", false},
		{"escapes", "https://" + evilText + ".example", false},
		{"working homeserver", otherHS.URL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			h.set("POST /_matrix/client/v3/login", h.loginReply(func(m map[string]any) {
				m["well_known"] = map[string]any{"m.homeserver": map[string]any{"base_url": tc.baseURL}}
			}))
			otherHS.resetLog()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, took, _ := c.runTimed(ctx, "hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin", "--json")
			clean(t, r)
			t.Logf("%s: %s", took.Round(time.Millisecond), r)
			if r.code != 0 {
				// Refusing the login is fine too; then nothing may have changed.
				e.intact(t)
				return
			}
			got := decodeJSON[accountJSON](t, r.stdout)
			e.malAcc = h.access()
			switch {
			case got.Homeserver == h.URL:
			case tc.mayUse && got.Homeserver == otherHS.URL && otherHS.hits("GET /_matrix/client/versions") > 0:
				e.malHome = otherHS.URL // validated: it answered /versions before being stored
			default:
				t.Fatalf("stored an unvalidated base URL %q", got.Homeserver)
			}
			e.intact(t)
			if e.malHome != h.URL {
				// Put mallory back on the hostile server for the next cases.
				h.behave()
				c.ok("hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin")
				e.malHome, e.malAcc = h.URL, h.access()
			}
		})
	}
}

// TestHostileTruncatedRefresh: a refresh reply cut short leaves the stored
// tokens as they were, and the next good refresh works.
func TestHostileTruncatedRefresh(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	full := `{"access_token":"hostile_at_cut","refresh_token":"hostile_rt_cut","expires_in_ms":3600000}`
	for _, tc := range []struct {
		name  string
		reply http.HandlerFunc
	}{
		{"truncated JSON", rawReply(200, "application/json", full[:len(full)/2])},
		{"connection cut", cutBody(full)},
		{"empty 200", rawReply(200, "application/json", "")},
		{"wrong types", rawReply(200, "application/json", `{"access_token":42,"expires_in_ms":"soon"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			h.set("POST /_matrix/client/v3/refresh", tc.reply)
			r := c.run("", "refresh", "--account", h.userID)
			failsCleanly(t, r, "refresh")
			t.Logf("%s", strings.TrimSpace(r.stderr))
			e.intact(t)
			// A good refresh afterwards proves the stored refresh token survived.
			c.ok("", "refresh", "--account", h.userID)
			e.malAcc = h.access()
			e.intact(t)
			// Sign in again: a refresh right after that one would take its
			// tokens instead of asking the server, and the next case needs
			// the server's reply.
			c.ok("hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin")
			e.malAcc = h.access()
		})
	}
}

// TestHostileServiceText drives the Service the full-screen app uses: every
// error and status text it hands to the UI is free of control characters.
func TestHostileServiceText(t *testing.T) {
	t.Parallel()
	h := newHostile(t)
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewMemoryBackend(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(st, app.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := svc.Login(ctx, app.LoginParams{Homeserver: h.URL, User: h.userID, Password: "hunter2"}); err != nil {
		t.Fatal(err)
	}
	checkErr := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
			return
		}
		if bad := controlRunes(err.Error()); len(bad) > 0 {
			t.Errorf("%s: error text carries %v: %q", what, bad, err.Error())
		}
	}
	evil := jsonReply(500, map[string]any{"errcode": "M_UNKNOWN\x1b[2J", "error": evilText})
	h.set("POST /_matrix/client/v3/refresh", evil)
	checkErr("Refresh", svc.Refresh(ctx, h.userID))
	for _, v := range svc.Accounts() {
		if bad := controlRunes(v.Status.Problem); len(bad) > 0 {
			t.Errorf("status problem carries %v: %q", bad, v.Status.Problem)
		}
		if !strings.Contains(v.Status.Problem, evilVisible) {
			t.Errorf("status problem lacks the server's text: %q", v.Status.Problem)
		}
	}
	h.set("DELETE /_matrix/client/v3/devices/*", evil)
	checkErr("DeleteDevice", svc.DeleteDevice(ctx, h.userID, "OTHERDEV", nil))
	h.set("POST /_matrix/client/v1/login/get_token", evil)
	_, err = svc.MintLoginToken(ctx, h.userID, nil)
	checkErr("MintLoginToken", err)
	h.set("GET /.well-known/matrix/client", jsonReply(200, map[string]any{"m.homeserver": map[string]any{"base_url": "https://" + evilText}}))
	_, err = svc.Resolve(ctx, h.userID)
	checkErr("Resolve", err)
	h.set("POST /_matrix/client/v3/login", evil)
	_, err = svc.Login(ctx, app.LoginParams{Homeserver: h.URL, User: h.userID, Password: "hunter2"})
	checkErr("Login", err)
}

// TestHostileAccountList: accounts.json decides where each account's tokens
// are sent. One that other users can change is refused with the command that
// fixes it, a plain-http homeserver put into it gets no token unless the user
// allowed that at sign-in, and whatever it holds is shown without escapes.
func TestHostileAccountList(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	index := filepath.Join(c.dir, "accounts.json")
	saved, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}
	restore := func(t *testing.T) {
		t.Helper()
		c.extra = nil
		if err := os.Chmod(c.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(index, saved, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(index, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// proxy sends every request to a non-loopback host through the hostile
	// server, which so sees whatever mxauth sends there.
	proxy := []string{"HTTP_PROXY=" + h.URL, "http_proxy=" + h.URL, "NO_PROXY=", "no_proxy="}

	for _, tc := range []struct {
		name, path string
		mode       os.FileMode
		fix        string
	}{
		{"index writable by all", index, 0o666, "chmod 600 " + index},
		{"index writable by its group", index, 0o660, "chmod 600 " + index},
		{"dir writable by all", c.dir, 0o777, "chmod 700 " + c.dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			defer restore(t)
			if err := os.Chmod(tc.path, tc.mode); err != nil {
				t.Fatal(err)
			}
			h.resetLog()
			for _, args := range [][]string{{"refresh", "--account", h.userID}, {"token", "--account", e.alice}, {"list"}} {
				failsCleanly(t, c.run("", args...), "writable by", tc.fix)
			}
			r := c.run("", "doctor")
			clean(t, r)
			if r.code != exitError || !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "writable by") || !strings.Contains(r.stdout, tc.fix) {
				t.Errorf("doctor must say what is wrong and how to fix it: %s", r)
			}
			if n := h.hits(""); n != 0 {
				t.Errorf("%d requests sent on the word of an index others can change", n)
			}
			now, _ := os.ReadFile(index)
			fi, err := os.Stat(tc.path)
			if !bytes.Equal(now, saved) || err != nil || fi.Mode().Perm() != tc.mode {
				t.Errorf("the refused index was changed (mode %v)", fi.Mode().Perm())
			}
			restore(t)
			e.intact(t)
		})
	}

	t.Run("plain http homeserver", func(t *testing.T) {
		c.t = t
		defer restore(t)
		edited := strings.Replace(string(saved), `"homeserver": "`+h.URL+`"`, `"homeserver": "http://mallory.example"`, 1)
		if edited == string(saved) {
			t.Fatalf("mallory's homeserver not found in the index:\n%s", saved)
		}
		if err := os.WriteFile(index, []byte(edited), 0o600); err != nil {
			t.Fatal(err)
		}
		c.extra = proxy
		h.resetLog()
		for _, args := range [][]string{{"refresh", "--account", h.userID}, {"devices", "--account", h.userID}, {"token", "--account", h.userID}} {
			failsCleanly(t, c.run("", args...), "plain http://", "--insecure-http")
		}
		r := c.run("", "doctor")
		clean(t, r)
		if r.code == 0 || !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, "plain http://") {
			t.Errorf("doctor must name the plain-http homeserver: %s", r)
		}
		if n := h.hits(""); n != 0 {
			t.Errorf("%d requests went over plain HTTP to a homeserver nobody allowed", n)
		}
		restore(t)
		e.intact(t)
	})

	t.Run("plain http in a removal marker", func(t *testing.T) {
		c.t = t
		defer restore(t)
		var x map[string]any
		if err := json.Unmarshal(saved, &x); err != nil {
			t.Fatal(err)
		}
		// A marker saying mallory's device is to be signed out, at a
		// plain-http homeserver nobody allowed.
		x["pending_removals"] = []any{map[string]any{
			"user_id": h.userID, "device_id": hostileDevice, "since": time.Now(),
			"replaced": true, "homeserver": "http://mallory.example",
		}}
		data, _ := json.Marshal(x)
		if err := os.WriteFile(index, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c.extra = proxy
		h.resetLog()
		r := c.run("", "list")
		clean(t, r)
		if n := h.hits(""); n != 0 {
			t.Errorf("%d requests (%d logouts) went over plain HTTP to a homeserver nobody allowed: %s", n, h.hits("POST /_matrix/client/v3/logout"), r)
		}
	})

	t.Run("plain http allowed at sign-in", func(t *testing.T) {
		c.t = t
		defer restore(t)
		c.extra = proxy
		c.ok("hunter2\n", "login", "--user", h.userID, "--homeserver", "http://mallory.example", "--password-stdin", "--insecure-http")
		h.resetLog()
		c.ok("", "refresh", "--account", h.userID)
		if h.hits("POST /_matrix/client/v3/refresh") != 1 {
			t.Errorf("the allowed plain-http homeserver got no refresh")
		}
		// Put mallory back on the hostile server's own URL.
		c.extra = nil
		c.ok("hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin")
		e.malAcc = h.access()
		saved, _ = os.ReadFile(index)
		e.intact(t)
	})

	t.Run("escapes and huge values", func(t *testing.T) {
		c.t = t
		defer restore(t)
		huge := strings.Repeat("x", 100<<10)
		var x map[string]any
		if err := json.Unmarshal(saved, &x); err != nil {
			t.Fatal(err)
		}
		x["accounts"] = append(x["accounts"].([]any), map[string]any{
			"user_id": "@evil\x1b[2J\u009b31m:" + evilText + huge, "device_id": "DEV\x1b]52;c;eA==\x07" + huge,
			"homeserver": "https://evil" + evilText + ".example/" + huge, "added_at": time.Now(),
		})
		data, _ := json.Marshal(x)
		if err := os.WriteFile(index, data, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"list"}, {"list", "--json"}, {"doctor"}} {
			r := c.run("", args...)
			clean(t, r)
			if len(r.stdout)+len(r.stderr) > 8<<10 {
				t.Errorf("%v printed %d bytes for one long entry", args, len(r.stdout)+len(r.stderr))
			}
		}
		restore(t)
		e.intact(t)
	})

	t.Run("echoed arguments", func(t *testing.T) {
		c.t = t
		huge := "@" + strings.Repeat("y", 100<<10) + ":example.org"
		for _, args := range [][]string{
			{"token", "--account", "@x\x1b[2J"},
			{"token", "--account", "@x" + strings.ReplaceAll(evilText, "\x00", "")}, // an argument cannot hold NUL
			{"token", "--account", huge},
			{"devices", "--account", huge},
			{"list", "\x1b]52;c;eA==\x07" + huge},
			{"\x1b[2J" + huge},
		} {
			r := c.run("", args...)
			failsCleanly(t, r)
			if len(r.stderr) > 2<<10 {
				t.Errorf("%.20q...: %d bytes on stderr", args, len(r.stderr))
			}
		}
	})

	t.Run("devices with a huge name", func(t *testing.T) {
		c.t = t
		h.set("GET /_matrix/client/v3/devices", jsonReply(200, map[string]any{"devices": []any{
			map[string]any{"device_id": hostileDevice, "display_name": strings.Repeat("n", 100<<10) + evilText},
			map[string]any{"device_id": "OTHERDEV", "display_name": "phone", "last_seen_ip": strings.Repeat("9", 100<<10)},
		}}))
		r := c.ok("", "devices", "--account", h.userID)
		clean(t, r)
		for _, line := range strings.Split(r.stdout, "\n") {
			if len(line) > 200 {
				t.Errorf("a %d-byte row: %.80q...", len(line), line)
			}
		}
		e.intact(t)
	})
}

// TestHostileTokenText: a server handing out a token with escape sequences
// in it is not believed, so `token` and `login-token` never print one.
func TestHostileTokenText(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	bad := "syt_\x1b]52;c;ZWNobyBwd25lZA==\x07\x1b[2J"
	t.Run("login", func(t *testing.T) {
		c.t = t
		h.set("POST /_matrix/client/v3/login", h.loginReply(func(m map[string]any) { m["access_token"] = bad }))
		failsCleanly(t, c.run("hunter2\n", "login", "--user", h.userID, "--homeserver", h.URL, "--password-stdin"), "malformed")
		e.intact(t)
	})
	t.Run("refresh", func(t *testing.T) {
		c.t = t
		h.set("POST /_matrix/client/v3/refresh", jsonReply(200, map[string]any{"access_token": bad, "refresh_token": "r", "expires_in_ms": 3600000}))
		failsCleanly(t, c.run("", "refresh", "--account", h.userID), "malformed")
		e.intact(t)
	})
	t.Run("login token", func(t *testing.T) {
		c.t = t
		h.set("POST /_matrix/client/v1/login/get_token", uiaThen(jsonReply(200, map[string]any{"login_token": bad, "expires_in_ms": 120000})))
		failsCleanly(t, c.run("hunter2\n", "login-token", "--account", h.userID, "--password-stdin"), "malformed")
		e.intact(t)
	})
}

// ---- OAuth 2.0: a hostile authorization server ----

// oauthUser is who the OAuth cases sign in: not mallory, so a failure that
// stored anything shows up as a third account in intact's list.
func (h *hostileServer) oauthUser() string {
	return "@oscar:" + strings.TrimPrefix(h.URL, "http://")
}

// oauthMetadata is a valid metadata document for the hostile server's own
// authorization server under /oauth/; edit changes it.
func (h *hostileServer) oauthMetadata(edit func(map[string]any)) map[string]any {
	m := map[string]any{
		"issuer":                           h.URL + "/oauth/",
		"authorization_endpoint":           h.URL + "/oauth/authorize",
		"token_endpoint":                   h.URL + "/oauth/token",
		"revocation_endpoint":              h.URL + "/oauth/revoke",
		"registration_endpoint":            h.URL + "/oauth/register",
		"device_authorization_endpoint":    h.URL + "/oauth/device",
		"response_types_supported":         []string{"code"},
		"grant_types_supported":            []string{"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"},
		"response_modes_supported":         []string{"query", "fragment"},
		"code_challenge_methods_supported": []string{"S256"},
		"account_management_uri":           h.URL + "/oauth/account",
	}
	if edit != nil {
		edit(m)
	}
	return m
}

// delegate makes the hostile server delegate sign-in to a well-behaved
// authorization server of its own: registration grants what was asked, the
// device grant is approved at the first poll, and whoami names oscar and the
// device of the scope asked for. Each case then spoils one answer.
func (h *hostileServer) delegate() {
	h.set("GET /_matrix/client/v1/auth_metadata", jsonReply(200, h.oauthMetadata(nil)))
	h.set("GET /_matrix/client/v3/login", jsonReply(200, map[string]any{"flows": []any{
		map[string]any{"type": "m.login.sso", "oauth_aware_preferred": true},
	}}))
	h.set("POST /oauth/register", h.registrationReply(nil))
	h.set("POST /oauth/device", h.deviceReply(nil))
	h.set("POST /oauth/token", h.oauthTokenReply(nil))
	h.set("POST /oauth/revoke", jsonReply(200, map[string]any{}))
	h.set("GET /_matrix/client/v3/account/whoami", h.oauthWhoami)
}

// registrationReply grants the grant types asked for; edit changes the reply.
func (h *hostileServer) registrationReply(edit func(map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req)
		req["client_id"] = "hostile-client"
		if edit != nil {
			edit(req)
		}
		jsonReply(201, req)(w, r)
	}
}

// deviceReply starts a device grant, remembering the device of its scope.
func (h *hostileServer) deviceReply(edit func(map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		h.mu.Lock()
		h.oauthScope = r.PostForm.Get("scope")
		h.mu.Unlock()
		m := map[string]any{
			"device_code": "hostile-device-code", "user_code": "HOSTIL",
			"verification_uri": h.URL + "/oauth/link", "expires_in": 600, "interval": 1,
		}
		if edit != nil {
			edit(m)
		}
		jsonReply(200, m)(w, r)
	}
}

// oauthTokenReply answers every grant with a fresh pair; edit changes the reply.
func (h *hostileServer) oauthTokenReply(edit func(map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		at, rt := h.newTokens()
		h.mu.Lock()
		if sc := r.PostForm.Get("scope"); sc != "" {
			h.oauthScope = sc
		}
		scope := h.oauthScope
		h.mu.Unlock()
		m := map[string]any{"access_token": at, "refresh_token": rt, "token_type": "Bearer", "expires_in": 3600, "scope": scope}
		if edit != nil {
			edit(m)
		}
		jsonReply(200, m)(w, r)
	}
}

func (h *hostileServer) oauthWhoami(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	_, device, _ := strings.Cut(h.oauthScope, "urn:matrix:client:device:")
	h.mu.Unlock()
	device, _, _ = strings.Cut(device, " ")
	jsonReply(200, map[string]any{"user_id": h.oauthUser(), "device_id": device})(w, r)
}

// oauthError is an RFC 6749 error reply.
func oauthError(status int, code, description string) http.HandlerFunc {
	return jsonReply(status, map[string]any{"error": code, "error_description": description})
}

// TestHostileOAuthDeviceGrant: each bad answer of an authorization server
// during a device-grant sign-in ends it with one clean line and the
// documented exit code, and stores nothing.
func TestHostileOAuthDeviceGrant(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	for _, tc := range []struct {
		name  string
		spoil func()
		code  int
		want  []string
	}{
		{"metadata missing token_endpoint", func() {
			h.set("GET /_matrix/client/v1/auth_metadata", jsonReply(200, h.oauthMetadata(func(m map[string]any) { delete(m, "token_endpoint") })))
		}, exitError, []string{"token_endpoint"}},
		{"metadata without grant types", func() {
			h.set("GET /_matrix/client/v1/auth_metadata", jsonReply(200, h.oauthMetadata(func(m map[string]any) { delete(m, "grant_types_supported") })))
		}, exitError, []string{"grant_types_supported"}},
		{"issuer on another host", func() {
			h.set("GET /_matrix/client/v1/auth_metadata", jsonReply(200, h.oauthMetadata(func(m map[string]any) { m["issuer"] = "https://auth.evil.example/" })))
		}, exitError, []string{"issuer"}},
		{"plain http endpoint off loopback", func() {
			h.set("GET /_matrix/client/v1/auth_metadata", jsonReply(200, h.oauthMetadata(func(m map[string]any) {
				m["issuer"] = "http://auth.example.org/"
				for _, k := range []string{"authorization_endpoint", "token_endpoint", "revocation_endpoint", "registration_endpoint", "device_authorization_endpoint"} {
					m[k] = "http://auth.example.org/" + k
				}
			})))
		}, exitError, []string{"https"}},
		{"registration without the device grant", func() {
			h.set("POST /oauth/register", h.registrationReply(func(m map[string]any) {
				m["grant_types"] = []string{"authorization_code", "refresh_token"}
			}))
		}, exitUnsupported, []string{"--browser"}},
		{"user code with escape sequences", func() {
			h.set("POST /oauth/device", h.deviceReply(func(m map[string]any) { m["user_code"] = "AB\x1b[2JCD" }))
		}, exitError, []string{"user_code"}},
		{"verification URI with escape sequences", func() {
			h.set("POST /oauth/device", h.deviceReply(func(m map[string]any) { m["verification_uri"] = h.URL + "/oauth/\x1b]8;;https://evil.example/\x07link" }))
		}, exitError, []string{"verification_uri"}},
		{"token reply without refresh token", func() {
			h.set("POST /oauth/token", h.oauthTokenReply(func(m map[string]any) { delete(m, "refresh_token") }))
		}, exitError, []string{"refresh_token"}},
		{"device code expired at the server", func() {
			h.set("POST /oauth/token", oauthError(400, "expired_token", "the code expired"))
		}, exitError, []string{"expired"}},
		{"device code expired here", func() {
			h.set("POST /oauth/device", h.deviceReply(func(m map[string]any) { m["expires_in"] = 2 }))
			h.set("POST /oauth/token", oauthError(400, "authorization_pending", "waiting"))
		}, exitError, []string{"expired"}},
		{"denied", func() {
			h.set("POST /oauth/token", oauthError(400, "access_denied", evilText))
		}, exitError, []string{"denied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			h.delegate()
			tc.spoil()
			h.resetLog()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			r, took, _ := c.runTimed(ctx, "", "login", "--user", h.oauthUser(), "--homeserver", h.URL)
			t.Logf("%s", took.Round(time.Millisecond))
			if r.code != tc.code {
				t.Errorf("exit %d, want %d: %s", r.code, tc.code, r)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			failsCleanly(t, result{stdout: r.stdout, stderr: lines[len(lines)-1] + "\n", code: r.code}, tc.want...)
			clean(t, r)
			if strings.Contains(r.stderr, evilVisible) && strings.Contains(r.stderr, "\x1b") {
				t.Errorf("server text reached the terminal raw: %q", r.stderr)
			}
			e.intact(t)

			// --json says what happened on stdout as well.
			h.delegate()
			tc.spoil()
			r, _, _ = c.runTimed(ctx, "", "login", "--user", h.oauthUser(), "--homeserver", h.URL, "--json")
			clean(t, r)
			got := decodeJSON[map[string]any](t, r.stdout)
			if got["status"] == "signed-in" || got["error"] == "" || got["user_id"] != nil {
				t.Errorf("--json: %s", r.stdout)
			}
			e.intact(t)
		})
	}
}

// TestHostileOAuthBrowser: the loopback redirect of a browser sign-in refuses
// a callback whose state does not match (and keeps waiting for the right
// one), ends on a callback carrying an error with one clean line and
// nothing stored, and answers a second callback after the good one without
// taking it.
func TestHostileOAuthBrowser(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	opener, opened := recordingOpener(t)
	browser := &cli{t: t, dir: c.dir, extra: []string{opener}}

	t.Run("state mismatch, then an error", func(t *testing.T) {
		browser.t = t
		h.delegate()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		bg := browser.start(ctx, "login", "--user", h.oauthUser(), "--homeserver", h.URL, "--browser")
		auth := openedURL(t, opened, bg)
		if auth.Query().Get("state") == "" || auth.Query().Get("code_challenge_method") != "S256" {
			t.Fatalf("authorization URL without state or PKCE: %s", auth)
		}
		status, page := callback(t, auth, url.Values{"code": {"stolen"}, "state": {"not-the-state"}})
		if status < 400 || !strings.Contains(strings.ToLower(page), "state") {
			t.Errorf("a callback with the wrong state: %d %s", status, page)
		}
		if h.hits("POST /oauth/token") != 0 {
			t.Fatalf("the code of a callback with the wrong state was exchanged")
		}
		select {
		case <-bg.exited:
			t.Fatalf("a callback with the wrong state ended the sign-in: %s", bg.err.String())
		default:
		}
		callback(t, auth, url.Values{"error": {"access_denied"}, "error_description": {evilText}, "state": {auth.Query().Get("state")}})
		r := bg.wait(t)
		if r.code != exitError {
			t.Errorf("exit %d, want %d: %s", r.code, exitError, r)
		}
		clean(t, r)
		lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
		if last := strings.ToLower(lines[len(lines)-1]); !strings.Contains(last, "denied") {
			t.Errorf("the last line does not say the sign-in was denied: %s", r.stderr)
		}
		e.intact(t)
	})
	if err := os.Remove(opened); err != nil {
		t.Fatal(err)
	}

	t.Run("second callback", func(t *testing.T) {
		browser.t = t
		h.delegate()
		// mxauth asks who signed in after the exchange: hold that answer
		// while a second callback arrives.
		release := make(chan struct{})
		h.set("GET /_matrix/client/v3/account/whoami", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-h.release:
			case <-r.Context().Done():
				return
			}
			h.oauthWhoami(w, r)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		bg := browser.start(ctx, "login", "--user", h.oauthUser(), "--homeserver", h.URL, "--browser", "--json")
		auth := openedURL(t, opened, bg)
		state := auth.Query().Get("state")
		// The grant's scope (its device) comes with the authorization request.
		h.mu.Lock()
		h.oauthScope = auth.Query().Get("scope")
		h.mu.Unlock()
		status, page, err := tryCallback(auth, url.Values{"code": {"good-code"}, "state": {state}})
		if err != nil || status != http.StatusOK || !strings.Contains(strings.ToLower(page), "terminal") {
			t.Errorf("the good callback: %d %v %s", status, err, page)
		}
		status, page, err = tryCallback(auth, url.Values{"code": {"second-code"}, "state": {state}})
		t.Logf("second callback: %d %v %s", status, err, page)
		if err == nil && status == http.StatusOK && !strings.Contains(strings.ToLower(page), "already") {
			t.Errorf("the second callback: %d %s", status, page)
		}
		close(release)
		r := bg.wait(t)
		clean(t, r)
		if r.code != 0 {
			t.Fatalf("sign-in after a second callback: %s", r)
		}
		got := decodeJSON[accountJSON](t, r.stdout)
		if got.UserID != h.oauthUser() || h.hits("POST /oauth/token") != 1 {
			t.Errorf("signed in %+v with %d token requests; want oscar with one", got, h.hits("POST /oauth/token"))
		}
		c.t = t
		c.ok("", "logout", "--account", h.oauthUser())
		if h.hits("POST /oauth/revoke") == 0 || h.hits("POST /_matrix/client/v3/logout") != 0 {
			t.Errorf("signing oscar out made %d revocations and %d /logout calls; want revocation only", h.hits("POST /oauth/revoke"), h.hits("POST /_matrix/client/v3/logout"))
		}
		e.intact(t)
	})
}
