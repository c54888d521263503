package matrix

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNormaliseBaseURL(t *testing.T) {
	cases := []struct {
		in       string
		insecure bool
		want     string
		wantErr  bool
	}{
		{"https://matrix.example.org", false, "https://matrix.example.org", false},
		{"https://matrix.example.org/", false, "https://matrix.example.org", false},
		{"https://matrix.example.org///", false, "https://matrix.example.org", false},
		{"  HTTPS://Matrix.Example.ORG/prefix/  ", false, "https://matrix.example.org/prefix", false},
		{"https://example.org/?a=b#frag", false, "https://example.org", false},
		{"https://example.org:8448/", false, "https://example.org:8448", false},
		{"http://example.org", false, "", true},
		{"http://example.org", true, "http://example.org", false},
		{"http://127.0.0.1:8008/", false, "http://127.0.0.1:8008", false},
		{"http://127.5.6.7", false, "http://127.5.6.7", false},
		{"http://localhost:8008", false, "http://localhost:8008", false},
		{"http://[::1]:8008", false, "http://[::1]:8008", false},
		{"http://128.0.0.1", false, "", true},
		{"ftp://example.org", false, "", true},
		{"example.org", false, "", true},
		{"", false, "", true},
		{"https://", false, "", true},
		{"https://user:pw@example.org", false, "", true},
		{"https://example.org:99999", false, "", true},
		{"https://example.org:0", false, "", true},
		{"https://exa mple.org", false, "", true},
		{"https://%zz", false, "", true},
		{"https://us er:hunter2@%zz", false, "", true},
	}
	for _, c := range cases {
		got, err := NormaliseBaseURL(c.in, c.insecure)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("NormaliseBaseURL(%q, %v) = %q, %v; want %q, err=%v", c.in, c.insecure, got, err, c.want, c.wantErr)
		}
		if err != nil && (strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), "hunter2")) {
			t.Errorf("error repeats credentials: %v", err)
		}
	}
	if _, err := NormaliseBaseURL("http://example.org", false); !errors.Is(err, ErrInsecureURL) {
		t.Errorf("http to a public host: err = %v, want ErrInsecureURL", err)
	}
}

func TestNewClientOptions(t *testing.T) {
	if _, err := NewClient("http://example.org"); err == nil {
		t.Fatal("NewClient accepted plain http to a public host")
	}
	c, err := NewClient("http://example.org/", WithInsecureHTTP(true), WithTimeout(time.Second), WithHTTPClient(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "http://example.org" || c.timeout != time.Second || c.hc == nil {
		t.Fatalf("options not applied: %q %v", c.BaseURL(), c.timeout)
	}
	nc, err := c.WithBaseURL("http://other.example/")
	if err != nil || nc.BaseURL() != "http://other.example" || c.BaseURL() != "http://example.org" {
		t.Fatalf("WithBaseURL: %v %v", nc, err)
	}
	if _, err := c.WithBaseURL("nope"); err == nil {
		t.Fatal("WithBaseURL accepted garbage")
	}
}

func TestRequestHeadersAndBodies(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/_matrix/client/v3/logout", 200, `{}`)
	w.reply("GET", "/_matrix/client/v3/account/whoami", 200, `{"user_id":"@a:b"}`)
	old := Version
	Version = "9.9.9"
	t.Cleanup(func() { Version = old })
	c := w.client(t)
	ctx := testCtx(t)
	if err := c.Logout(ctx, "tok_logout"); err != nil {
		t.Fatal(err)
	}
	r := w.last(t)
	if got := r.Header.Get("User-Agent"); got != "mxauth/9.9.9" {
		t.Errorf("User-Agent = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer tok_logout" {
		t.Errorf("Authorization = %q", got)
	}
	if string(r.Body) != "{}" {
		t.Errorf("logout body = %q, want {}", r.Body)
	}
	if r.RawQuery != "" {
		t.Errorf("query string sent: %q", r.RawQuery)
	}
	if _, err := c.WhoAmI(ctx, "tok_who"); err != nil {
		t.Fatal(err)
	}
	r = w.last(t)
	if len(r.Body) != 0 || r.Header.Get("Content-Type") != "" {
		t.Errorf("GET carried a body or content type: %q %q", r.Body, r.Header.Get("Content-Type"))
	}
	if strings.Contains(r.Path, "//") {
		t.Errorf("path has //: %q", r.Path)
	}
}

func TestMissingTokenNeverReachesNetwork(t *testing.T) {
	w := newWire(t)
	c := w.client(t)
	err := c.Logout(testCtx(t), "")
	if !IsMissingToken(err) || !errors.Is(err, ErrNoAccessToken) {
		t.Fatalf("err = %v, want missing token", err)
	}
	if n := len(w.requests()); n != 0 {
		t.Fatalf("%d requests sent without a token", n)
	}
}

func TestResponseLimits(t *testing.T) {
	w := newWire(t)
	big := `{"user_id":"@a:b","pad":"` + strings.Repeat("x", MaxResponseBytes) + `"}`
	w.reply("GET", "/_matrix/client/v3/account/whoami", 200, big)
	c := w.client(t)
	_, err := c.WhoAmI(testCtx(t), "tok")
	var te *TransportError
	if !errors.As(err, &te) || !errors.Is(err, ErrResponseTooLarge) || !IsTransient(err) {
		t.Fatalf("oversized body: err = %v", err)
	}
	// Exactly at the limit is fine.
	pad := MaxResponseBytes - len(`{"user_id":"@a:b","pad":""}`)
	w.reply("GET", "/_matrix/client/v3/account/whoami", 200, `{"user_id":"@a:b","pad":"`+strings.Repeat("x", pad)+`"}`)
	if _, err := c.WhoAmI(testCtx(t), "tok"); err != nil {
		t.Fatalf("body of exactly MaxResponseBytes: %v", err)
	}
}

func TestMalformedSuccessBodies(t *testing.T) {
	cases := map[string]string{
		"empty":        ``,
		"html":         `<html>hi</html>`,
		"truncated":    `{"user_id":"@a:b","access_tok`,
		"array":        `[1,2]`,
		"wrong type":   `{"user_id":"@a:b","access_token":123,"device_id":"D"}`,
		"missing":      `{"user_id":"@a:b","device_id":"D"}`,
		"no device":    `{"user_id":"@a:b","access_token":"x"}`,
		"no user":      `{"access_token":"x","device_id":"D"}`,
		"null":         `null`,
		"trailing bad": `{"user_id":"@a:b","access_token":"x","device_id":"D"} x`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			w := newWire(t)
			w.reply("POST", "/_matrix/client/v3/login", 200, body)
			_, err := w.client(t).Login(testCtx(t), PasswordLogin("@a:b", "pw_secret"))
			var te *TransportError
			if !errors.As(err, &te) || !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("err = %v (%T), want TransportError(ErrMalformedResponse)", err, err)
			}
			if !IsTransient(err) {
				t.Error("malformed 2xx should be transient")
			}
			if te.Endpoint != "POST /_matrix/client/v3/login" {
				t.Errorf("endpoint = %q", te.Endpoint)
			}
		})
	}
}

func TestTruncatedBodyConnectionCut(t *testing.T) {
	w := newWire(t)
	w.on("POST", "/_matrix/client/v3/refresh", func(rw http.ResponseWriter, r *http.Request) {
		full := `{"access_token":"new_access","refresh_token":"new_refresh","expires_in_ms":300000}`
		rw.Header().Set("Content-Length", strconv.Itoa(len(full)))
		rw.WriteHeader(200)
		io.WriteString(rw, full[:len(full)/2])
		// hijack to cut the connection mid-body
		if hj, ok := rw.(http.Hijacker); ok {
			conn, _, err := hj.Hijack()
			if err == nil {
				conn.Close()
			}
		}
	})
	_, err := w.client(t).Refresh(testCtx(t), "old_refresh")
	var te *TransportError
	if !errors.As(err, &te) || !IsTransient(err) {
		t.Fatalf("cut body: err = %v", err)
	}
	if strings.Contains(err.Error(), "new_access") || strings.Contains(err.Error(), "old_refresh") {
		t.Fatalf("error leaks a token: %v", err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	w := newWire(t)
	w.on("GET", "/_matrix/client/versions", func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	c := w.client(t, WithTimeout(50*time.Millisecond))
	start := time.Now()
	_, err := c.Versions(context.Background())
	if !IsTransient(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: err = %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("timeout did not apply")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = w.client(t).Versions(ctx)
	if err == nil || IsTransient(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v, transient=%v", err, IsTransient(err))
	}
}

func TestDialFailureIsTransient(t *testing.T) {
	w := newWire(t)
	url := w.URL
	w.Close()
	c, err := NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Versions(testCtx(t))
	var te *TransportError
	if !errors.As(err, &te) || !IsTransient(err) || te.Endpoint != "GET /_matrix/client/versions" {
		t.Fatalf("dial failure: err = %v", err)
	}
}

func TestRedirectDowngradeRefused(t *testing.T) {
	w := newWire(t)
	w.on("GET", "/_matrix/client/v3/account/whoami", func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, "http://example.invalid/_matrix/client/v3/account/whoami", http.StatusTemporaryRedirect)
	})
	_, err := w.client(t).WhoAmI(testCtx(t), "tok")
	if !errors.Is(err, ErrInsecureURL) || IsTransient(err) {
		t.Fatalf("redirect to public http: err = %v", err)
	}
	// Redirects within loopback still work, with a custom client's policy consulted too.
	w.on("GET", "/old", func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, "/_matrix/client/versions", http.StatusFound)
	})
	w.reply("GET", "/_matrix/client/versions", 200, versionsBody)
	called := false
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { called = true; return nil }}
	c := w.client(t, WithHTTPClient(hc))
	var raw []byte
	if _, err := c.do(testCtx(t), call{ep: Endpoint{Method: "GET", Path: "/old"}, out: &raw}); err != nil || !called {
		t.Fatalf("loopback redirect: %v called=%v", err, called)
	}
}

func TestReceivedAtUsesClock(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/_matrix/client/v3/refresh", 200, `{"access_token":"a2","expires_in_ms":60000}`)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c := w.client(t, WithClock(func() time.Time { return at }))
	r, err := c.Refresh(testCtx(t), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if !r.ReceivedAt.Equal(at) {
		t.Fatalf("ReceivedAt = %v", r.ReceivedAt)
	}
	ts := r.Apply(TokenSet{RefreshToken: "r1"})
	if !ts.ExpiresAt.Equal(at.Add(time.Minute)) || ts.Lifetime() != time.Minute {
		t.Fatalf("Apply deadline = %v", ts.ExpiresAt)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	yes := []string{"localhost", "LOCALHOST", "127.0.0.1", "127.255.0.9", "::1", "[::1]"}
	no := []string{"example.org", "128.0.0.1", "10.0.0.1", "::2", "localhost.example.org", ""}
	for _, h := range yes {
		if !IsLoopbackHost(h) {
			t.Errorf("IsLoopbackHost(%q) = false", h)
		}
	}
	for _, h := range no {
		if IsLoopbackHost(h) {
			t.Errorf("IsLoopbackHost(%q) = true", h)
		}
	}
}
