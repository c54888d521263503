package homeserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultReplacement(t *testing.T) {
	s, c := newServer(t, Options{})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)

	s.InjectFault(Fault{PathPrefix: "/_matrix/client/v3/account", Status: 503,
		Body: `{"errcode":"M_UNKNOWN","error":"down"}`, Header: http.Header{"Retry-After": {"7"}}, Count: 2})
	// Other paths are untouched.
	if r := c.do("GET", "/_matrix/client/versions", "", nil); r.status != 200 {
		t.Fatalf("unmatched path faulted: %d", r.status)
	}
	for i := 0; i < 2; i++ {
		r := c.whoami(a.access)
		if r.status != 503 || r.str("error") != "down" || r.header.Get("Retry-After") != "7" || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("fault %d: %d %v %s", i, r.status, r.header, r.raw)
		}
	}
	if r := c.whoami(a.access); r.status != 200 {
		t.Fatalf("fault outlived Count: %d", r.status)
	}

	// FIFO: the first matching fault is used first.
	s.InjectFault(Fault{Status: 500, Body: `{"n":1}`})
	s.InjectFault(Fault{Status: 502, Body: `{"n":2}`})
	if r := c.whoami(a.access); r.status != 500 {
		t.Fatalf("first fault: %d", r.status)
	}
	if r := c.whoami(a.access); r.status != 502 {
		t.Fatalf("second fault: %d", r.status)
	}
	if r := c.whoami(a.access); r.status != 200 {
		t.Fatalf("after faults: %d", r.status)
	}

	// A replaced response does not run the handler: no side effects.
	s.InjectFault(Fault{PathPrefix: "/_matrix/client/v3/logout", Status: 500})
	if r := c.do("POST", "/_matrix/client/v3/logout", a.access, nil); r.status != 500 {
		t.Fatalf("logout fault: %d", r.status)
	}
	if c.whoami(a.access).status != 200 {
		t.Fatal("replaced logout still logged out")
	}

	// Negative Count lasts until ClearFaults.
	s.InjectFault(Fault{PathPrefix: "/_matrix/client/versions", Status: 500, Count: -1})
	for i := 0; i < 3; i++ {
		if r := c.do("GET", "/_matrix/client/versions", "", nil); r.status != 500 {
			t.Fatalf("persistent fault %d: %d", i, r.status)
		}
	}
	s.ClearFaults()
	if r := c.do("GET", "/_matrix/client/versions", "", nil); r.status != 200 {
		t.Fatalf("after ClearFaults: %d", r.status)
	}
	log := s.Requests()
	var faulted int
	for _, e := range log {
		if e.Fault == "status" {
			faulted++
		}
	}
	if faulted != 8 {
		t.Fatalf("%d requests logged as faulted, want 8", faulted)
	}
}

func TestFaultDropAfterHandling(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"refresh_token": true})

	s.InjectFault(Fault{PathPrefix: "/_matrix/client/v3/refresh", DropAfterHandling: true})
	if _, err := c.try("POST", "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": a.refresh}); err == nil {
		t.Fatal("dropped response arrived")
	}
	// The refresh happened server-side; the lost reply is recovered by
	// repeating it with the old refresh token.
	if n := s.RefreshCount(); n != 1 {
		t.Fatalf("RefreshCount = %d, want 1", n)
	}
	r := c.refresh(a.refresh)
	if r.status != 200 || c.whoami(r.str("access_token")).status != 200 {
		t.Fatalf("replay after lost reply: %d %s", r.status, r.raw)
	}
	log := s.Requests()
	var dropped *LoggedRequest
	for i := range log {
		if log[i].Fault == "drop" {
			dropped = &log[i]
		}
	}
	if dropped == nil || dropped.Status != 200 || dropped.UserID != a.userID {
		t.Fatalf("drop not logged: %+v", log)
	}
}

func TestFaultTruncate(t *testing.T) {
	s, c := newServer(t, Options{})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)
	full := c.whoami(a.access)

	s.InjectFault(Fault{PathPrefix: "/_matrix/client/v3/account/whoami", Truncate: true})
	req, _ := http.NewRequest("GET", s.URL()+"/_matrix/client/v3/account/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+a.access)
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("headers should arrive: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" || res.ContentLength != int64(len(full.raw)) {
		t.Fatalf("truncated reply headers: %d %v", res.StatusCode, res.Header)
	}
	body, err := io.ReadAll(res.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read error = %v, want unexpected EOF", err)
	}
	if string(body) != string(full.raw[:len(full.raw)/2]) {
		t.Fatalf("got %q, want the first half of %q", body, full.raw)
	}
	if json.Valid(body) {
		t.Fatal("half body is valid JSON")
	}
	if r := c.whoami(a.access); r.status != 200 {
		t.Fatalf("after truncate: %d", r.status)
	}

	// A truncated replacement body.
	s.InjectFault(Fault{Status: 200, Body: `{"versions":["v1.1","v1.2"]}`, Truncate: true})
	if _, err := c.try("GET", "/_matrix/client/versions", "", nil); err == nil {
		t.Fatal("truncated replacement read cleanly")
	}
}

func TestFaultDelay(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", map[string]any{"refresh_token": true})

	s.InjectFault(Fault{PathPrefix: "/_matrix/client/versions", Delay: 150 * time.Millisecond})
	start := time.Now()
	if r := c.do("GET", "/_matrix/client/versions", "", nil); r.status != 200 {
		t.Fatalf("delayed: %d", r.status)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}

	// A client that gives up: the handler already ran, the reply is lost.
	s.InjectFault(Fault{PathPrefix: "/_matrix/client/v3/refresh", Delay: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/_matrix/client/v3/refresh",
		strings.NewReader(fmt.Sprintf(`{"refresh_token":%q}`, a.refresh)))
	start = time.Now()
	if _, err := c.hc.Do(req); err == nil {
		t.Fatal("delayed refresh answered before the client deadline")
	}
	// The server notices the cancellation instead of sleeping 10 s.
	deadline := time.Now().Add(3 * time.Second)
	for {
		log := s.Requests()
		if e := log[len(log)-1]; e.Fault == "delay+cancelled" && e.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cancelled delay not logged: %+v", s.Requests())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if time.Since(start) > 3*time.Second || s.RefreshCount() != 1 {
		t.Fatalf("refresh count %d", s.RefreshCount())
	}
	if r := c.refresh(a.refresh); r.status != 200 {
		t.Fatalf("replay after timeout: %s", r.raw)
	}
}

func TestFaultDelayDoesNotBlockOthers(t *testing.T) {
	s, c := newServer(t, Options{})
	s.InjectFault(Fault{PathPrefix: "/_matrix/client/v3/login", Delay: time.Second})
	go func() { _, _ = c.try("GET", "/_matrix/client/v3/login", "", nil) }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if r := c.do("GET", "/_matrix/client/versions", "", nil); r.status != 200 || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("a delayed request blocked another (%v)", time.Since(start))
	}
	s.Close() // ends the delayed request too
}

func TestRequestLog(t *testing.T) {
	s, c := newServer(t, Options{LogLimit: 5})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)
	c.whoami(a.access)
	c.whoami("syt_bad")
	log := s.Requests()
	if len(log) != 3 {
		t.Fatalf("%d entries", len(log))
	}
	if e := log[0]; e.Method != "POST" || e.Path != "/_matrix/client/v3/login" || e.Status != 200 || e.Authenticated || e.UserID != a.userID || e.DeviceID != a.deviceID {
		t.Fatalf("login entry: %+v", e)
	}
	if e := log[1]; !e.Authenticated || e.TokenExpired || e.UserID != a.userID || e.Time.IsZero() {
		t.Fatalf("whoami entry: %+v", e)
	}
	if e := log[2]; e.Authenticated || e.Status != 401 || e.UserID != "" {
		t.Fatalf("bad-token entry: %+v", e)
	}
	// The log keeps the newest LogLimit entries, in order.
	for i := 0; i < 4; i++ {
		c.do("GET", fmt.Sprintf("/_matrix/client/versions?i=%d", i), "", nil)
	}
	log = s.Requests()
	if len(log) != 5 || log[0].Path != "/_matrix/client/account/whoami" && log[0].Status != 401 {
		t.Fatalf("capped log: %+v", log)
	}
	if log[4].Path != "/_matrix/client/versions" || log[1].Path != "/_matrix/client/versions" {
		t.Fatalf("capped log order: %+v", log)
	}
	s.ResetLog()
	if len(s.Requests()) != 0 || s.ExpiredTokenUses() != 0 || s.RefreshCount() != 0 {
		t.Fatal("ResetLog left data")
	}
}

func TestTokensAreRandom(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute})
	s.AddUser("alice", "pw")
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		a := c.login("alice", "pw", map[string]any{"refresh_token": true})
		for _, tok := range []string{a.access, a.refresh, a.deviceID} {
			if seen[tok] {
				t.Fatalf("repeated value %q", tok)
			}
			seen[tok] = true
		}
		if len(a.access) < 35 || !strings.HasPrefix(a.access, "syt_") || !strings.HasPrefix(a.refresh, "syr_") || len(a.deviceID) != 10 {
			t.Fatalf("token shapes: %q %q", a.access, a.deviceID)
		}
	}
}

// TestConcurrentClients drives logins, refreshes and authenticated calls from
// many goroutines; run with -race.
func TestConcurrentClients(t *testing.T) {
	s, c := newServer(t, Options{AccessTokenLifetime: time.Minute, LoginTokenRateLimit: true})
	const users = 8
	var wg sync.WaitGroup
	errs := make(chan error, users*4)
	for i := 0; i < users; i++ {
		uid := s.AddUser(fmt.Sprintf("u%d", i), "pw")
		wg.Add(1)
		go func(uid string) {
			defer wg.Done()
			sess := c.login(uid, "pw", map[string]any{"refresh_token": true})
			access, rt := sess.access, sess.refresh
			for j := 0; j < 20; j++ {
				r, err := c.try("POST", "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": rt})
				if err != nil || r.status != 200 {
					errs <- fmt.Errorf("refresh %d: %v %d %s", j, err, r.status, r.raw)
					return
				}
				access, rt = r.str("access_token"), r.str("refresh_token")
				if r, err := c.try("GET", "/_matrix/client/v3/account/whoami", access, nil); err != nil || r.status != 200 {
					errs <- fmt.Errorf("whoami %d: %v", j, err)
					return
				}
			}
			sid := ""
			if r, _ := c.try("POST", getTokenPath, access, "{}"); r.status == 401 {
				sid = r.str("session")
			}
			if r, err := c.try("POST", getTokenPath, access, passwordAuth(sid, uid, "pw")); err != nil || r.status != 200 {
				errs <- fmt.Errorf("get_token: %v %s", err, r.raw)
			}
		}(uid)
	}
	// Fault and admin calls in parallel with the traffic.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			s.InjectFault(Fault{PathPrefix: "/_matrix/client/versions", Status: 500})
			_ = s.Requests()
			_ = s.ExpiredTokenUses()
			_ = s.Devices("@u0:" + s.ServerName())
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := s.RefreshCount(); n != users*20 {
		t.Fatalf("RefreshCount = %d, want %d", n, users*20)
	}
}

// BenchmarkRefresh measures the refresh path the soak test leans on.
func BenchmarkRefresh(b *testing.B) {
	s := New(Options{AccessTokenLifetime: 5 * time.Second})
	defer s.Close()
	s.AddUser("alice", "pw")
	t := &testing.T{}
	c := &tclient{t: t, s: s, hc: &http.Client{}}
	sess := c.login("alice", "pw", map[string]any{"refresh_token": true})
	rt := sess.refresh
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := c.try("POST", "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": rt})
		if err != nil || r.status != 200 {
			b.Fatalf("refresh: %v %d", err, r.status)
		}
		rt = r.str("refresh_token")
	}
}

func TestOnRequestHook(t *testing.T) {
	var mu sync.Mutex
	var seen []LoggedRequest
	s, c := newServer(t, Options{OnRequest: func(e LoggedRequest) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
	}})
	s.AddUser("alice", "pw")
	a := c.login("alice", "pw", nil)
	c.whoami(a.access)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[1].Path != "/_matrix/client/v3/account/whoami" || !seen[1].Authenticated {
		t.Fatalf("hook saw %+v", seen)
	}
}

func TestFaultHeaderOnly(t *testing.T) {
	s, c := newServer(t, Options{})
	s.InjectFault(Fault{PathPrefix: "/_matrix/client/versions", Header: http.Header{"X-Test": {"yes"}}})
	r := c.do("GET", "/_matrix/client/versions", "", nil)
	if r.status != 200 || r.header.Get("X-Test") != "yes" || r.body["versions"] == nil {
		t.Fatalf("header fault: %d %v %s", r.status, r.header, r.raw)
	}
	if r := c.do("GET", "/_matrix/client/versions", "", nil); r.header.Get("X-Test") != "" {
		t.Fatal("header fault applied twice")
	}
}
