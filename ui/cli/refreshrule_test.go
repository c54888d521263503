package cli

import (
	"strings"
	"testing"
	"time"

	"mxauth/matrix/homeserver"
)

// TestDoctorTrustsTheRefreshToken: a server that hands out refresh tokens
// refreshes, whatever spec versions it lists; doctor says so.
func TestDoctorTrustsTheRefreshToken(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: 5 * time.Minute})
	srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/versions", Status: 200, Body: `{"versions":["r0.6.1","v1.1","v1.2"]}`, Count: -1})
	c := newCLI(t)
	c.login(srv, alice, pw)
	r := c.ok("", "doctor")
	if !strings.Contains(r.stdout, alice+": server supports refresh tokens") || !strings.Contains(r.stdout, "refreshed automatically") {
		t.Fatalf("doctor on a v1.2 server that issued a refresh token:\n%s", r)
	}
}
