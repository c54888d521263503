package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"mxauth/keystore/keyringtest"
	"mxauth/matrix/homeserver"
)

// TestUnknownFlagMessage: a bad flag names the program once and points at the
// help that exists.
func TestUnknownFlagMessage(t *testing.T) {
	t.Parallel()
	c := &cli{t: t, dir: t.TempDir()}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "mxauth: unknown flag: --bogus (see mxauth --help)\n"},
		{[]string{"list", "--bogus"}, "mxauth: list: unknown flag: --bogus (see mxauth list --help)\n"},
	} {
		r := c.expect(exitUsage, "", tc.args...)
		if r.stderr != tc.want || r.stdout != "" {
			t.Errorf("mxauth %s: stderr %q, want %q", strings.Join(tc.args, " "), r.stderr, tc.want)
		}
	}
}

// TestOneShotPromisesNoRetry: a command that exits runs no refresh engine, so
// nothing it prints may promise a retry or a later check.
func TestOneShotPromisesNoRetry(t *testing.T) {
	t.Parallel()
	needKeyring(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{})
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := &cli{t: t, dir: t.TempDir(), extra: k.Env}
	c.login(srv, alice, pw)
	promises := func(t *testing.T, what, text string) {
		t.Helper()
		for _, p := range []string{"retrying at", "checking again"} {
			if strings.Contains(text, p) {
				t.Errorf("%s promises what no one will do (%q): %s", what, p, text)
			}
		}
	}

	t.Run("refresh fails", func(t *testing.T) {
		c.t = t
		srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/v3/refresh", Status: 500, Body: `{"errcode":"M_UNKNOWN","error":"boom"}`})
		r := c.expect(exitError, "", "refresh")
		oneLineStderr(t, r)
		promises(t, "refresh", r.stderr)
	})
	t.Run("account locked", func(t *testing.T) {
		c.t = t
		srv.SetUserLocked(alice, true)
		defer srv.SetUserLocked(alice, false)
		// Locked by the server's administrators: signing in again does not help,
		// so this is not "sign-in needed" (4).
		r := c.expect(exitError, "", "refresh")
		oneLineStderr(t, r)
		if !strings.Contains(r.stderr, "locked") {
			t.Errorf("refresh of a locked account does not say so: %s", r)
		}
		promises(t, "refresh", r.stderr)
	})
	t.Run("keyring locked", func(t *testing.T) {
		c.t = t
		if err := k.Lock(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := k.Unlock(); err != nil {
				t.Fatal(err)
			}
		}()
		r := c.expect(exitKeyring, "", "list")
		promises(t, "list", r.stderr)
		r = c.expect(exitKeyring, "", "list", "--json")
		got := decodeJSON[[]accountJSON](t, r.stdout)
		if len(got) != 1 || got[0].State != "keyring-problem" || got[0].Problem == "" {
			t.Fatalf("list --json with the keyring locked: %+v", got)
		}
		promises(t, "list --json", got[0].Problem+"\n"+r.stderr)
		promises(t, "refresh", c.expect(exitKeyring, "", "refresh").stderr)
	})
}

// TestNotAMatrixServer: a homeserver URL with a wrong path, or a web server
// that is no homeserver, is an error (1) that says so, not "this server does
// not offer password login" (5), which stays for a homeserver that lacks it.
func TestNotAMatrixServer(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/matrix/client" {
			// Points at a path where no homeserver answers.
			fmt.Fprintf(w, `{"m.homeserver":{"base_url":"http://%s/matrix"}}`, r.Host)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, "<html><body><h1>Not Found</h1></body></html>")
	}))
	t.Cleanup(web.Close)
	webHost := strings.TrimPrefix(web.URL, "http://")
	c := newCLI(t)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"wrong path on a homeserver", []string{"--user", alice, "--homeserver", srv.URL() + "/wrong"}},
		{"a web server", []string{"--user", alice, "--homeserver", web.URL}},
		{"discovered from a web server", []string{"--user", "@alice:" + webHost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			r := c.expect(exitError, pw+"\n", append([]string{"login", "--password-stdin"}, tc.args...)...)
			oneLineStderr(t, r)
			if !strings.Contains(r.stderr, "is not a Matrix homeserver") || strings.Contains(r.stderr, "does not offer") {
				t.Fatalf("want a plain \"not a Matrix homeserver\": %s", r)
			}
		})
	}
	t.Run("a homeserver whose flows lack password login", func(t *testing.T) {
		c.t = t
		// Like Synapse with password login switched off: the type is refused
		// as unknown, and GET /login lists only single sign-on.
		sso := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			switch {
			case r.URL.Path == "/_matrix/client/versions":
				fmt.Fprint(w, `{"versions":["v1.11"]}`)
			case r.URL.Path == "/_matrix/client/v3/login" && r.Method == http.MethodGet:
				fmt.Fprint(w, `{"flows":[{"type":"m.login.sso"},{"type":"m.login.token"}]}`)
			case r.URL.Path == "/_matrix/client/v3/login":
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"errcode":"M_UNKNOWN","error":"Unknown login type m.login.password"}`)
			default:
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
			}
		}))
		t.Cleanup(sso.Close)
		r := c.expect(exitUnsupported, pw+"\n", "login", "--password-stdin", "--user", "@alice:"+strings.TrimPrefix(sso.URL, "http://"), "--homeserver", sso.URL)
		oneLineStderr(t, r)
		if !strings.Contains(r.stderr, "does not offer password login") {
			t.Fatalf("want \"does not offer password login\": %s", r)
		}
	})
	t.Run("a homeserver without password login", func(t *testing.T) {
		c.t = t
		oauth, bob, bobpw := startHomeserver(t, homeserver.Options{OAuthOnly: true})
		r := c.expect(exitUnsupported, bobpw+"\n", "login", "--password-stdin", "--user", bob, "--homeserver", oauth.URL())
		oneLineStderr(t, r)
		if !strings.Contains(r.stderr, "does not offer password login") {
			t.Fatalf("want \"does not offer password login\": %s", r)
		}
	})
}

// TestDevicesDeleteMissing: deleting a device the account does not have says
// so and deletes nothing, not even the IDs given alongside that do exist.
func TestDevicesDeleteMissing(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c, other := newCLI(t), newCLI(t)
	c.login(srv, alice, pw)
	other.login(srv, alice, pw)
	before := srv.Devices(alice)
	if len(before) != 2 {
		t.Fatalf("want 2 devices, got %v", before)
	}

	r := c.expect(exitError, pw+"\n", "devices", "delete", "NOSUCHDEV", "--password-stdin")
	oneLineStderr(t, r)
	if want := "mxauth: no device NOSUCHDEV on " + alice; !strings.HasPrefix(r.stderr, want) || strings.Contains(r.stderr, "Deleted") {
		t.Fatalf("want %q: %s", want, r)
	}

	r = c.expect(exitError, pw+"\n", "devices", "delete", before[0], "GONE1", before[1], "GONE2", "--password-stdin")
	oneLineStderr(t, r)
	if want := "no devices GONE1, GONE2 on " + alice; !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "nothing was deleted") {
		t.Fatalf("want %q and that nothing was deleted: %s", want, r)
	}
	if after := srv.Devices(alice); len(after) != 2 {
		t.Fatalf("devices after refused deletes: %v, want %v", after, before)
	}
	for _, req := range srv.Requests() {
		if req.Method == http.MethodDelete || strings.HasSuffix(req.Path, "/delete_devices") {
			t.Fatalf("a delete reached the server: %s %s", req.Method, req.Path)
		}
	}
}
