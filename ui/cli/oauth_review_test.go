package cli

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHostileOAuthRedirects: an authorization server that redirects a token
// or revocation request to another host gets the refresh token sent nowhere
// else: the command fails and keeps everything.
func TestHostileOAuthRedirects(t *testing.T) {
	t.Parallel()
	e := setupHostile(t)
	h, c := e.h, e.c
	h.delegate()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r, _, _ := c.runTimed(ctx, "", "login", "--user", h.oauthUser(), "--homeserver", h.URL); r.code != 0 {
		t.Fatalf("login: %s", r)
	}

	var mu sync.Mutex
	var stolen []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		stolen = append(stolen, r.Method+" "+r.URL.Path+" "+r.PostForm.Encode())
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(elsewhere.Close)
	// The same machine under another name: another host to the client.
	other := strings.Replace(elsewhere.URL, "127.0.0.1", "localhost", 1)
	redirect := func(path string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other+path, http.StatusTemporaryRedirect)
		}
	}

	h.set("POST /oauth/token", redirect("/token"))
	r := c.run("", "refresh", "--account", h.oauthUser())
	t.Logf("refresh redirected to another host: %s", r)
	if r.code == 0 {
		t.Errorf("refresh through a redirect to another host succeeded: %s", r)
	}
	h.set("POST /oauth/revoke", redirect("/revoke"))
	r = c.run("", "logout", "--account", h.oauthUser())
	t.Logf("logout redirected to another host: %s", r)
	if r.code == 0 {
		t.Errorf("logout through a redirect to another host said it signed out: %s", r)
	}
	mu.Lock()
	if len(stolen) > 0 {
		t.Errorf("the other host got %q", stolen)
	}
	mu.Unlock()
	if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 3 {
		t.Fatalf("after the refused redirects: %+v", got)
	}
}
