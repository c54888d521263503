package homeserver

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fakeIssuer is a scripted authorization server: metadata and introspection
// only, with the tokens it knows.
type fakeIssuer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	intros int
	issuer string // what its metadata says; default its URL
	tokens map[string]map[string]any
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	f := &fakeIssuer{tokens: map[string]map[string]any{
		"good": {"active": true, "sub": "alice", "scope": testScope, "token_type": "Bearer", "exp": 4102444800},
		"full": {"active": true, "sub": "@carol:elsewhere.example", "scope": testScope, "token_type": "Bearer"},
		// A refresh token: active, but no token_type.
		"refresh": {"active": true, "sub": "alice", "scope": testScope},
		"noscope": {"active": true, "sub": "alice", "scope": scopeAPI, "token_type": "Bearer"},
	}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		iss := f.issuer
		if iss == "" {
			iss = f.srv.URL
		}
		writeJSON(w, http.StatusOK, map[string]any{"issuer": iss, "introspection_endpoint": f.srv.URL + "/introspect",
			"token_endpoint": f.srv.URL + "/token"})
	case "/introspect", "/other-introspect":
		f.mu.Lock()
		f.intros++
		f.mu.Unlock()
		if id, secret, ok := r.BasicAuth(); !ok || id != "hs" || secret != "hs-secret" {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
			return
		}
		_ = r.ParseForm()
		if r.PostForm.Get("token_type_hint") != "access_token" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request"})
			return
		}
		if reply, ok := f.tokens[r.PostForm.Get("token")]; ok {
			writeJSON(w, http.StatusOK, reply)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeIssuer) introspections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.intros
}

func externalServer(t *testing.T, f *fakeIssuer, secret string) (*Server, *tclient) {
	return newServer(t, Options{ExternalAuth: &ExternalAuth{Issuer: f.srv.URL, ClientID: "hs", ClientSecret: secret}})
}

// TestExternalAuth: a homeserver delegating to an authorization server
// elsewhere serves its metadata, refuses what Synapse refuses with delegation,
// and takes user and device from each token's introspection.
func TestExternalAuth(t *testing.T) {
	f := newFakeIssuer(t)
	s, c := externalServer(t, f, "hs-secret")

	for _, p := range []string{"/_matrix/client/v1/auth_metadata", "/_matrix/client/unstable/org.matrix.msc2965/auth_metadata"} {
		r := c.do("GET", p, "", nil)
		if r.status != 200 || r.str("issuer") != f.srv.URL || r.str("introspection_endpoint") != f.srv.URL+"/introspect" {
			t.Fatalf("%s: %d %v, want the issuer's metadata", p, r.status, r.body)
		}
	}
	flows := c.do("GET", "/_matrix/client/v3/login", "", nil)
	want := []any{map[string]any{"type": "m.login.sso", "oauth_aware_preferred": true, "org.matrix.msc3824.delegated_oidc_compatibility": true}}
	if !reflect.DeepEqual(flows.body["flows"], want) {
		t.Fatalf("login flows: %v", flows.body)
	}
	s.AddUser("alice", "pw")
	if r := c.do("POST", "/_matrix/client/v3/login", "", map[string]any{"type": "m.login.password", "user": "alice", "password": "pw"}); r.status != 400 {
		t.Fatalf("password login: %d %v, want refused", r.status, r.body)
	}
	if r := c.do("POST", "/_matrix/client/v1/login/get_token", "good", map[string]any{}); r.status != 404 {
		t.Fatalf("get_token: %d, want 404", r.status)
	}

	before := f.introspections()
	who := c.whoami("good")
	if who.status != 200 || who.str("user_id") != "@alice:"+s.ServerName() || who.str("device_id") != "OAUTHDEV0001" {
		t.Fatalf("whoami: %d %v", who.status, who.body)
	}
	if f.introspections() != before+1 {
		t.Fatalf("introspections per request: %d", f.introspections()-before)
	}
	if got := s.Devices("@alice:" + s.ServerName()); !reflect.DeepEqual(got, []string{"OAUTHDEV0001"}) {
		t.Fatalf("devices: %v, want the token's device made on first use", got)
	}
	if r := c.whoami("full"); r.str("user_id") != "@carol:elsewhere.example" {
		t.Fatalf("a sub that is a user ID: %v", r.body)
	}
	if r := c.do("DELETE", "/_matrix/client/v3/devices/OAUTHDEV0001", "good", map[string]any{}); r.status != 404 {
		t.Fatalf("device deletion: %d, want 404", r.status)
	}
	if r := c.do("POST", "/_matrix/client/v3/logout", "good", map[string]any{}); r.status != 400 || r.str("errcode") != "M_UNRECOGNIZED" {
		t.Fatalf("/logout with an OAuth token: %d %v", r.status, r.body)
	}
	for tok, status := range map[string]int{"refresh": 401, "unknown": 401, "noscope": 403} {
		if r := c.whoami(tok); r.status != status {
			t.Fatalf("whoami %s: %d %v, want %d", tok, r.status, r.body, status)
		}
	}
	// A token on a request that needs none is not sent to the issuer.
	before = f.introspections()
	if r := c.do("GET", "/_matrix/client/versions", "good", nil); r.status != 200 || f.introspections() != before {
		t.Fatalf("versions: %d, %d introspections", r.status, f.introspections()-before)
	}
}

// TestExternalAuthIssuerTrouble: when the issuer cannot answer, or refuses
// the homeserver's credentials, requests fail with 503 rather than 401, which
// would sign the client out.
func TestExternalAuthIssuerTrouble(t *testing.T) {
	f := newFakeIssuer(t)
	_, c := externalServer(t, f, "wrong-secret")
	if r := c.whoami("good"); r.status != 503 {
		t.Fatalf("wrong credentials: %d %v, want 503", r.status, r.body)
	}

	f = newFakeIssuer(t)
	f.issuer = "https://elsewhere.example"
	_, c = externalServer(t, f, "hs-secret")
	if r := c.do("GET", "/_matrix/client/v1/auth_metadata", "", nil); r.status != 503 {
		t.Fatalf("metadata naming another issuer: %d %v, want 503", r.status, r.body)
	}

	f = newFakeIssuer(t)
	_, c = externalServer(t, f, "hs-secret")
	f.srv.Close()
	if r := c.whoami("good"); r.status != 503 || !strings.Contains(r.str("error"), "authorization server") {
		t.Fatalf("issuer down: %d %v, want 503", r.status, r.body)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Delegated with ExternalAuth did not panic")
		}
	}()
	New(Options{Delegated: true, ExternalAuth: &ExternalAuth{}})
}

// countingTransport counts the requests an http.Client makes.
type countingTransport struct {
	mu    sync.Mutex
	paths []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.paths = append(c.paths, r.URL.Path)
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestExternalAuthOptions: an introspection endpoint named in the options
// wins over the metadata's, and the issuer is reached through HTTPClient.
func TestExternalAuthOptions(t *testing.T) {
	f := newFakeIssuer(t)
	tr := &countingTransport{}
	_, c := newServer(t, Options{ExternalAuth: &ExternalAuth{Issuer: f.srv.URL, ClientID: "hs", ClientSecret: "hs-secret",
		IntrospectionEndpoint: f.srv.URL + "/other-introspect", HTTPClient: &http.Client{Transport: tr}}})
	if r := c.whoami("good"); r.status != 200 {
		t.Fatalf("whoami: %d %v", r.status, r.body)
	}
	want := []string{"/.well-known/oauth-authorization-server", "/other-introspect"}
	if !reflect.DeepEqual(tr.paths, want) {
		t.Fatalf("requests to the issuer: %v, want %v", tr.paths, want)
	}
}
