package cli

import (
	"strings"
	"testing"
	"time"

	"mxauth/matrix/homeserver"
)

// TestLoginBareNameReusesDevice: a bare user name with --homeserver finds the
// account already held there and signs in again on its device.
func TestLoginBareNameReusesDevice(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	first := decodeJSON[accountJSON](t, c.ok(pw+"\n", "login", "--user", "alice", "--homeserver", srv.URL(), "--password-stdin", "--json").stdout)
	again := decodeJSON[accountJSON](t, c.ok(pw+"\n", "login", "--user", "ALICE", "--homeserver", srv.URL(), "--password-stdin", "--json").stdout)
	full := decodeJSON[accountJSON](t, c.ok(pw+"\n", "login", "--user", alice, "--password-stdin", "--json").stdout)
	if first.UserID != alice || again.DeviceID != first.DeviceID || full.DeviceID != first.DeviceID {
		t.Fatalf("devices %s, %s, %s for %s", first.DeviceID, again.DeviceID, full.DeviceID, first.UserID)
	}
	if devs, items := srv.Devices(alice), keyringItems(t, alice); len(devs) != 1 || len(items) != 1 {
		t.Fatalf("devices %v, items %v", devs, items)
	}
	tokenStillWorks(t, c, srv, first.DeviceID)
}

// TestLoginTokenOnHeldAccountSignsOutOldDevice: a login token signs a held
// account in on a new device; the device it replaces is signed out on the
// server and its keyring item deleted, so nothing is left that nobody holds.
func TestLoginTokenOnHeldAccountSignsOutOldDevice(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	c.login(srv, alice, pw)
	old := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)[0].DeviceID
	lt := decodeJSON[loginTokenJSON](t, c.ok(pw+"\n", "login-token", "--password-stdin", "--json").stdout)
	neu := decodeJSON[accountJSON](t, c.ok(lt.LoginToken+"\n", "login", "--user", alice, "--login-token-stdin", "--json").stdout)
	if neu.DeviceID == old {
		t.Fatalf("a login token signed in on the held device %s", old)
	}
	devs, items := srv.Devices(alice), keyringItems(t, alice)
	if len(devs) != 1 || devs[0] != neu.DeviceID || len(items) != 1 || items[0] != alice+"|"+neu.DeviceID {
		t.Fatalf("want only device %s, got devices %v, items %v", neu.DeviceID, devs, items)
	}
	tok := strings.TrimSpace(c.ok("", "token").stdout)
	if who := whoami(t, srv.URL(), tok); who.DeviceID != neu.DeviceID {
		t.Fatalf("token is for device %s", who.DeviceID)
	}
}
