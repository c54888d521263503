package cli

import (
	"strings"
	"testing"
	"time"

	"mxauth/matrix/homeserver"
)

// TestErrorsReadAsInTheApp: the command line words a server's errors as the
// full-screen app does: a failing server "cannot be reached right now", a
// Matrix error in the server's own words.
func TestErrorsReadAsInTheApp(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: 5 * time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)

	srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/v3/devices", Status: 502, Body: `{"errcode":"M_UNKNOWN","error":"bad gateway"}`, Count: -1})
	r := c.run("", "devices")
	t.Logf("devices, server failing: %s", r)
	if r.code == 0 || !strings.Contains(r.stderr, "cannot reach the server right now (") || !strings.Contains(r.stderr, "bad gateway") {
		t.Fatalf("devices with a failing server: %s", r)
	}
	srv.ClearFaults()
	srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/v3/devices", Status: 400, Body: `{"errcode":"M_UNKNOWN","error":"devices are \u001b[31mresting"}`, Count: -1})
	r = c.run("", "devices")
	t.Logf("devices, server refusing: %s", r)
	if r.code == 0 || strings.TrimSpace(r.stderr) != "mxauth: devices are resting" {
		t.Fatalf("devices with a server error: %s", r)
	}
}
