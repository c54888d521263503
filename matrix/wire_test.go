package matrix

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// wireReq is one request as the scripted server saw it.
type wireReq struct {
	Method, Path, RawPath, RawQuery string
	Header                          http.Header
	Body                            []byte
}

// bodyMap decodes the request body as a JSON object.
func (r wireReq) bodyMap(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", r.Method, r.Path, r.Body, err)
	}
	return m
}

// wire is a scripted homeserver: each route answers with a handler; everything
// else gets 404 M_UNRECOGNIZED like a real server.
type wire struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	reqs   []wireReq
}

func newWire(t *testing.T) *wire {
	t.Helper()
	w := &wire{routes: map[string]http.HandlerFunc{}}
	w.Server = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.Close)
	return w
}

func (w *wire) serve(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	w.reqs = append(w.reqs, wireReq{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	h := w.routes[r.Method+" "+r.URL.Path]
	w.mu.Unlock()
	if h == nil {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusNotFound)
		io.WriteString(rw, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		return
	}
	h(rw, r)
}

func (w *wire) on(method, path string, h http.HandlerFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.routes[method+" "+path] = h
}

// reply answers method+path with a fixed status, JSON body and header pairs.
func (w *wire) reply(method, path string, status int, body string, header ...string) {
	w.on(method, path, func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			rw.Header().Set(header[i], header[i+1])
		}
		rw.WriteHeader(status)
		io.WriteString(rw, body)
	})
}

// sequence answers successive requests with successive handlers (the last repeats).
func (w *wire) sequence(method, path string, hs ...http.HandlerFunc) {
	var mu sync.Mutex
	n := 0
	w.on(method, path, func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hs[min(n, len(hs)-1)]
		n++
		mu.Unlock()
		h(rw, r)
	})
}

func jsonReply(status int, body string, header ...string) http.HandlerFunc {
	return func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			rw.Header().Set(header[i], header[i+1])
		}
		rw.WriteHeader(status)
		io.WriteString(rw, body)
	}
}

func (w *wire) requests() []wireReq {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]wireReq(nil), w.reqs...)
}

func (w *wire) last(t *testing.T) wireReq {
	t.Helper()
	rs := w.requests()
	if len(rs) == 0 {
		t.Fatal("server saw no request")
	}
	return rs[len(rs)-1]
}

func (w *wire) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(w.URL, opts...)
	if err != nil {
		t.Fatalf("NewClient(%s): %v", w.URL, err)
	}
	return c
}

// serverName is host:port of the listener, a loopback server name.
func (w *wire) serverName() string { return strings.TrimPrefix(w.URL, "http://") }

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const versionsBody = `{"versions":["r0.6.1","v1.1","v1.7","v1.12"],"unstable_features":{"org.matrix.msc3882":true}}`
