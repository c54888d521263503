package matrix

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestServerNameFromUserID(t *testing.T) {
	ok := map[string]string{
		"@alice:example.org":        "example.org",
		"@alice:example.org:8448":   "example.org:8448",
		"@a:b:c:1":                  "", // split at the first ':' leaves "b:c:1", not a server name
		"@alice:[::1]":              "[::1]",
		"@alice:[2001:db8::1]:8448": "[2001:db8::1]:8448",
		"@alice:127.0.0.1:8008":     "127.0.0.1:8008",
		"@a.b_c=d/e:matrix.org":     "matrix.org",
	}
	for in, want := range ok {
		got, err := ServerNameFromUserID(in)
		if want == "" {
			if err == nil {
				t.Errorf("ServerNameFromUserID(%q) = %q, want error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ServerNameFromUserID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "alice:example.org", "@alice", "@:example.org", "@alice:", "@alice:exa mple.org",
		"@alice:example.org:", "@alice:example.org:99999", "@alice:example.org:x", "@alice:[::1", "@alice:[zz]",
		"@alice:[1.2.3.4]", "@alice:.example.org", "@alice:a..b", "@al ice:example.org", "@alice:[::1]x",
		"@alice:" + strings.Repeat("a", 300)}
	for _, in := range bad {
		if got, err := ServerNameFromUserID(in); err == nil {
			t.Errorf("ServerNameFromUserID(%q) = %q, want error", in, got)
		}
	}
}

func TestWellKnownHostAndURL(t *testing.T) {
	cases := map[string]string{
		"example.org":        "example.org",
		"example.org:8448":   "example.org",
		"[::1]":              "[::1]",
		"[2001:db8::1]:8448": "[2001:db8::1]",
		"1.2.3.4:80":         "1.2.3.4",
	}
	for in, want := range cases {
		if got := WellKnownHost(in); got != want {
			t.Errorf("WellKnownHost(%q) = %q, want %q", in, got, want)
		}
	}
	// Port in the MXID: the well-known comes from the host without its port, over https.
	name, err := ServerNameFromUserID("@u:example.org:8448")
	if err != nil {
		t.Fatal(err)
	}
	if got := wellKnownURL(name, DiscoverOptions{}); got != "https://example.org/.well-known/matrix/client" {
		t.Errorf("wellKnownURL = %q", got)
	}
	if got := wellKnownURL("127.0.0.1:8008", DiscoverOptions{}); got != "http://127.0.0.1:8008/.well-known/matrix/client" {
		t.Errorf("loopback wellKnownURL = %q", got)
	}
	if got := wellKnownURL("[::1]:8008", DiscoverOptions{}); got != "http://[::1]:8008/.well-known/matrix/client" {
		t.Errorf("v6 loopback wellKnownURL = %q", got)
	}
	if got := wellKnownURL("localhost", DiscoverOptions{}); got != "https://localhost/.well-known/matrix/client" {
		t.Errorf("portless loopback wellKnownURL = %q", got)
	}
}

func discoveryOutcome(t *testing.T, err error) DiscoveryOutcome {
	t.Helper()
	if err == nil {
		return DiscoveryOK
	}
	var de *DiscoveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is not a DiscoveryError", err, err)
	}
	if de.Error() == "" {
		t.Fatal("empty DiscoveryError text")
	}
	return de.Outcome
}

func TestDiscoverOutcomes(t *testing.T) {
	type setup func(w *wire)
	wk := func(status int, body string) setup {
		return func(w *wire) { w.reply("GET", "/.well-known/matrix/client", status, body) }
	}
	selfBase := func(w *wire, suffix, versionsStatus int, versions string) {
		w.reply("GET", "/.well-known/matrix/client", 200, `{"m.homeserver":{"base_url":"`+w.URL+strings.Repeat("/", suffix)+`"}}`)
		w.reply("GET", "/_matrix/client/versions", versionsStatus, versions)
	}
	cases := []struct {
		name string
		s    setup
		want DiscoveryOutcome
	}{
		{"404 ignore", func(w *wire) {}, DiscoveryIgnore},
		{"500 prompt", wk(500, `{"errcode":"M_UNKNOWN"}`), DiscoveryFailPrompt},
		{"html prompt", wk(200, `<html>welcome</html>`), DiscoveryFailPrompt},
		{"empty prompt", wk(200, ``), DiscoveryFailPrompt},
		{"no homeserver prompt", wk(200, `{"m.identity_server":{"base_url":"https://id.example"}}`), DiscoveryFailPrompt},
		{"homeserver not object prompt", wk(200, `{"m.homeserver":"https://x"}`), DiscoveryFailPrompt},
		{"no base_url prompt", wk(200, `{"m.homeserver":{}}`), DiscoveryFailPrompt},
		{"base_url number prompt", wk(200, `{"m.homeserver":{"base_url":42}}`), DiscoveryFailPrompt},
		{"base_url not url error", wk(200, `{"m.homeserver":{"base_url":"not a url"}}`), DiscoveryFailError},
		{"base_url bad escape error", wk(200, `{"m.homeserver":{"base_url":"https://%zz"}}`), DiscoveryFailError},
		{"base_url ftp error", wk(200, `{"m.homeserver":{"base_url":"ftp://example.org"}}`), DiscoveryFailError},
		{"base_url public http error", wk(200, `{"m.homeserver":{"base_url":"http://example.org"}}`), DiscoveryFailError},
		{"versions 404 error", func(w *wire) { selfBase(w, 0, 404, `{"errcode":"M_UNRECOGNIZED"}`) }, DiscoveryFailError},
		{"versions html error", func(w *wire) { selfBase(w, 0, 200, `<html/>`) }, DiscoveryFailError},
		{"versions missing list error", func(w *wire) { selfBase(w, 0, 200, `{"unstable_features":{}}`) }, DiscoveryFailError},
		{"versions empty list error", func(w *wire) { selfBase(w, 0, 200, `{"versions":[]}`) }, DiscoveryFailError},
		{"identity without base_url prompt", func(w *wire) {
			w.reply("GET", "/.well-known/matrix/client", 200, `{"m.homeserver":{"base_url":"`+w.URL+`"},"m.identity_server":{}}`)
		}, DiscoveryFailPrompt},
		{"identity not object prompt", func(w *wire) {
			w.reply("GET", "/.well-known/matrix/client", 200, `{"m.homeserver":{"base_url":"`+w.URL+`"},"m.identity_server":"x"}`)
		}, DiscoveryFailPrompt},
		{"identity bad url error", func(w *wire) {
			w.reply("GET", "/.well-known/matrix/client", 200, `{"m.homeserver":{"base_url":"`+w.URL+`"},"m.identity_server":{"base_url":"::"}}`)
		}, DiscoveryFailError},
		{"ok", func(w *wire) { selfBase(w, 0, 200, versionsBody) }, DiscoveryOK},
		{"ok trailing slash", func(w *wire) { selfBase(w, 1, 200, versionsBody) }, DiscoveryOK},
		{"ok two trailing slashes", func(w *wire) { selfBase(w, 2, 200, versionsBody) }, DiscoveryOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(t)
			c.s(w)
			res, err := Discover(testCtx(t), w.serverName(), DiscoverOptions{})
			if got := discoveryOutcome(t, err); got != c.want {
				t.Fatalf("outcome = %v (%v), want %v", got, err, c.want)
			}
			if c.want == DiscoveryOK {
				if res.BaseURL != w.URL || res.Versions == nil || !res.Versions.AtLeast("v1.7") {
					t.Fatalf("result = %+v", res)
				}
			}
			for _, r := range w.requests() {
				if strings.Contains(r.Path, "//") {
					t.Errorf("request path %q contains //", r.Path)
				}
			}
		})
	}
}

func TestDiscoverIdentityServerAndOverride(t *testing.T) {
	w := newWire(t)
	w.reply("GET", "/custom/wk", 200, `{"m.homeserver":{"base_url":"`+w.URL+`/"},"m.identity_server":{"base_url":"https://id.example.org/"},"org.example.x":5}`)
	w.reply("GET", "/_matrix/client/versions", 200, versionsBody)
	res, err := Discover(testCtx(t), "example.org", DiscoverOptions{WellKnownURL: w.URL + "/custom/wk"})
	if err != nil {
		t.Fatal(err)
	}
	if res.BaseURL != w.URL || res.IdentityServer != "https://id.example.org" {
		t.Fatalf("result = %+v", res)
	}
	if _, err := Discover(testCtx(t), "bad name!", DiscoverOptions{}); discoveryOutcome(t, err) != DiscoveryFailError {
		t.Fatalf("bad server name: %v", err)
	}
	if _, err := Discover(testCtx(t), "example.org", DiscoverOptions{WellKnownURL: "http://example.invalid/wk"}); discoveryOutcome(t, err) != DiscoveryFailError {
		t.Fatalf("insecure override: %v", err)
	}
	if _, err := Discover(testCtx(t), "example.org", DiscoverOptions{WellKnownURL: "::nope"}); discoveryOutcome(t, err) != DiscoveryFailError {
		t.Fatalf("broken override: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Discover(ctx, w.serverName(), DiscoverOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled discovery: %v", err)
	}
}

func TestDiscoverUnreachableIsPrompt(t *testing.T) {
	w := newWire(t)
	name := w.serverName()
	w.Close()
	_, err := Discover(testCtx(t), name, DiscoverOptions{})
	if discoveryOutcome(t, err) != DiscoveryFailPrompt {
		t.Fatalf("unreachable: %v", err)
	}
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("cause not kept: %v", err)
	}
}

func TestDiscoverFollowsRedirect(t *testing.T) {
	w := newWire(t)
	w.on("GET", "/.well-known/matrix/client", func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, "/moved", http.StatusMovedPermanently)
	})
	w.reply("GET", "/moved", 200, `{"m.homeserver":{"base_url":"`+w.URL+`"}}`)
	w.reply("GET", "/_matrix/client/versions", 200, versionsBody)
	if _, err := Discover(testCtx(t), w.serverName(), DiscoverOptions{}); err != nil {
		t.Fatal(err)
	}
	loop := newWire(t)
	loop.on("GET", "/.well-known/matrix/client", func(rw http.ResponseWriter, r *http.Request) {
		http.Redirect(rw, r, "/.well-known/matrix/client", http.StatusFound)
	})
	if _, err := Discover(testCtx(t), loop.serverName(), DiscoverOptions{}); discoveryOutcome(t, err) != DiscoveryFailPrompt {
		t.Fatalf("redirect loop: %v", err)
	}
}

func TestParseWellKnown(t *testing.T) {
	wk, err := ParseWellKnown([]byte(`{"m.homeserver":{"base_url":"https://hs.example/"},"m.identity_server":{"base_url":"https://is.example"}}`))
	if err != nil || wk.Homeserver.BaseURL != "https://hs.example/" || wk.IdentityServer == nil || wk.IdentityServer.BaseURL != "https://is.example" {
		t.Fatalf("ParseWellKnown = %+v, %v", wk, err)
	}
	if _, err := ParseWellKnown([]byte(`{}`)); discoveryOutcome(t, err) != DiscoveryFailPrompt {
		t.Fatal("empty object accepted")
	}
	if _, err := ParseWellKnown([]byte(`{"m.homeserver":{"base_url":"nope"}}`)); discoveryOutcome(t, err) != DiscoveryFailError {
		t.Fatal("bad URL accepted")
	}
	if DiscoveryFailError.String() != "FAIL_ERROR" || DiscoveryIgnore.String() != "IGNORE" || DiscoveryOK.String() != "OK" ||
		DiscoveryFailPrompt.String() != "FAIL_PROMPT" || DiscoveryOutcome(9).String() != "DiscoveryOutcome(9)" {
		t.Fatal("outcome names")
	}
}

func TestResolveHomeserver(t *testing.T) {
	w := newWire(t)
	w.reply("GET", "/.well-known/matrix/client", 200, `{"m.homeserver":{"base_url":"`+w.URL+`/"}}`)
	w.reply("GET", "/_matrix/client/versions", 200, versionsBody)
	ctx := testCtx(t)
	for _, in := range []string{"@alice:" + w.serverName(), w.serverName(), w.URL, w.URL + "/", "  " + w.URL + "  "} {
		res, err := ResolveHomeserver(ctx, in, DiscoverOptions{})
		if err != nil || res.BaseURL != w.URL {
			t.Errorf("ResolveHomeserver(%q) = %+v, %v", in, res, err)
		}
	}
	// No .well-known: the MXID's server name itself is tried.
	bare := newWire(t)
	bare.reply("GET", "/_matrix/client/versions", 200, versionsBody)
	for _, in := range []string{"@bob:" + bare.serverName(), bare.serverName()} {
		res, err := ResolveHomeserver(ctx, in, DiscoverOptions{})
		if err != nil || res.BaseURL != bare.URL {
			t.Errorf("fallback ResolveHomeserver(%q) = %+v, %v", in, res, err)
		}
	}
	// Neither discovery nor the host answer: IGNORE with advice.
	dead := newWire(t)
	if _, err := ResolveHomeserver(ctx, "@bob:"+dead.serverName(), DiscoverOptions{}); discoveryOutcome(t, err) != DiscoveryIgnore {
		t.Errorf("dead MXID: %v", err)
	}
	if _, err := ResolveHomeserver(ctx, dead.serverName(), DiscoverOptions{}); discoveryOutcome(t, err) != DiscoveryFailError {
		t.Errorf("dead host: %v", err)
	}
	// FAIL_ERROR from discovery is final, no guessing.
	broken := newWire(t)
	broken.reply("GET", "/.well-known/matrix/client", 200, `{"m.homeserver":{"base_url":"not a url"}}`)
	broken.reply("GET", "/_matrix/client/versions", 200, versionsBody)
	if _, err := ResolveHomeserver(ctx, broken.serverName(), DiscoverOptions{}); discoveryOutcome(t, err) != DiscoveryFailError {
		t.Errorf("broken discovery: %v", err)
	}
	for _, in := range []string{"", "@nope", "not a host!", "ftp://example.org", "@:x"} {
		if _, err := ResolveHomeserver(ctx, in, DiscoverOptions{}); discoveryOutcome(t, err) == DiscoveryOK {
			t.Errorf("ResolveHomeserver(%q) succeeded", in)
		}
	}
	if got := hostURL("example.org"); got != "https://example.org" {
		t.Errorf("hostURL = %q", got)
	}
}
