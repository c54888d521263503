package homeserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"mxauth/matrix/matrixtest/clocktest"
)

// newClock is the settable time source for Options.Now.
func newClock() *clocktest.Clock { return clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// tclient talks to the server with plain net/http, independently of the
// client package.
type tclient struct {
	t  *testing.T
	s  *Server
	hc *http.Client
}

func newServer(t *testing.T, opt Options) (*Server, *tclient) {
	t.Helper()
	s := New(opt)
	t.Cleanup(s.Close)
	return s, &tclient{t: t, s: s, hc: &http.Client{Timeout: 10 * time.Second}}
}

type resp struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

func (r resp) str(key string) string {
	v, _ := r.body[key].(string)
	return v
}

func (r resp) num(key string) float64 {
	v, _ := r.body[key].(float64)
	return v
}

// do sends body (a string is sent as is, anything else as JSON, nil as no body).
func (c *tclient) do(method, path, token string, body any) resp {
	c.t.Helper()
	r, err := c.try(method, path, token, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *tclient) try(method, path, token string, body any) (resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.s.URL()+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: raw}
	if err != nil {
		return out, err
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			return out, err
		}
	}
	return out, nil
}

// expectErr checks a Matrix error response.
func expectErr(t *testing.T, r resp, status int, errcode string) {
	t.Helper()
	if r.status != status || r.str("errcode") != errcode {
		t.Fatalf("got %d %s, want %d %s (body %s)", r.status, r.str("errcode"), status, errcode, r.raw)
	}
}

// expectUnknownToken checks 401 M_UNKNOWN_TOKEN with a boolean soft_logout.
func expectUnknownToken(t *testing.T, r resp, soft bool) {
	t.Helper()
	expectErr(t, r, 401, "M_UNKNOWN_TOKEN")
	v, ok := r.body["soft_logout"].(bool)
	if !ok || v != soft {
		t.Fatalf("soft_logout = %v (present %v), want %v: %s", r.body["soft_logout"], ok, soft, r.raw)
	}
}

type session struct {
	userID, deviceID, access, refresh string
	expiresInMS                       float64
}

func (c *tclient) login(user, password string, extra map[string]any) session {
	c.t.Helper()
	body := map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]any{"type": "m.id.user", "user": user},
		"password":   password,
	}
	for k, v := range extra {
		body[k] = v
	}
	r := c.do("POST", "/_matrix/client/v3/login", "", body)
	if r.status != 200 {
		c.t.Fatalf("login: %d %s", r.status, r.raw)
	}
	return session{r.str("user_id"), r.str("device_id"), r.str("access_token"), r.str("refresh_token"), r.num("expires_in_ms")}
}

func (c *tclient) refresh(rt string) resp {
	c.t.Helper()
	return c.do("POST", "/_matrix/client/v3/refresh", "", map[string]any{"refresh_token": rt})
}

func (c *tclient) whoami(token string) resp {
	c.t.Helper()
	return c.do("GET", "/_matrix/client/v3/account/whoami", token, nil)
}

func passwordAuth(session, user, password string) map[string]any {
	return map[string]any{"auth": map[string]any{
		"type": "m.login.password", "session": session, "password": password,
		"identifier": map[string]any{"type": "m.id.user", "user": user},
	}}
}
