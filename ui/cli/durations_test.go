package cli

import (
	"regexp"
	"testing"
	"time"

	"mxauth/matrix/homeserver"
)

// TestDurationsReadAlike: list, doctor and login-token write a remaining time
// the way the full-screen app does ("4m 59s"), not Go's "4m59s".
func TestDurationsReadAlike(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: 5 * time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)

	minutes := regexp.MustCompile(`in [1-5]m [0-5][0-9]s \(\d\d:\d\d:\d\d\)`)
	if r := c.ok("", "list"); !minutes.MatchString(r.stdout) {
		t.Fatalf("list: no expiry like \"in 4m 59s (15:04:05)\":\n%s", r)
	}
	if r := c.ok("", "doctor"); !minutes.MatchString(r.stdout) {
		t.Fatalf("doctor: no expiry like \"in 4m 59s (15:04:05)\":\n%s", r)
	}
	if r := c.ok(pw+"\n", "login-token", "--password-stdin"); !regexp.MustCompile(`valid for \d+m \d\ds \(until`).MatchString(r.stderr) {
		t.Fatalf("login-token: no lifetime like \"valid for 2m 00s\":\n%s", r)
	}
}
