package cli

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"mxauth/keystore/keyringtest"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/ui/app"
)

// crashEnv makes the binary kill itself (as kill -9 would) at a named step.
func crashEnv(step string) string { return crashEnvName + "=" + step }

// heldToken signs alice in and returns the access token mxauth hands out and
// the device it is on.
func heldToken(t *testing.T, c *cli, srv *homeserver.Server, alice, pw string) (token, device string) {
	t.Helper()
	c.login(srv, alice, pw)
	token = strings.TrimSpace(c.ok("", "token").stdout)
	return token, whoami(t, srv.URL(), token).DeviceID
}

// tokenStillWorks checks that `token` hands out a token the server accepts,
// for the expected device.
func tokenStillWorks(t *testing.T, c *cli, srv *homeserver.Server, device string) string {
	t.Helper()
	tok := strings.TrimSpace(c.ok("", "token").stdout)
	if who := whoami(t, srv.URL(), tok); who.DeviceID != device {
		t.Fatalf("token belongs to device %s, want %s", who.DeviceID, device)
	}
	return tok
}

// TestFaultReloginWithoutKeyringKeepsSession: a sign-in again while the
// keyring cannot be used stops before the server is asked, so the tokens the
// account holds stay valid (the server would otherwise have replaced them).
func TestFaultReloginWithoutKeyringKeepsSession(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	before, device := heldToken(t, c, srv, alice, pw)

	srv.ResetLog()
	noBus := &cli{t: t, dir: c.dir, extra: []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent/bus"}}
	oneLineStderr(t, noBus.expect(exitKeyring, pw+"\n", "login", "--user", alice, "--password-stdin"))
	for _, r := range srv.Requests() {
		if r.Path == "/_matrix/client/v3/login" && r.Method == "POST" {
			t.Fatalf("the server was asked to sign in although the keyring could not store: %+v", r)
		}
	}
	if tok := tokenStillWorks(t, c, srv, device); tok != before {
		t.Fatal("the held token changed although the sign-in failed")
	}
	c.ok("", "refresh")
	tokenStillWorks(t, c, srv, device)
	if items, devs := keyringItems(t, alice), srv.Devices(alice); len(items) != 1 || len(devs) != 1 {
		t.Fatalf("after a failed sign-in again: items %v, devices %v", items, devs)
	}
}

// TestFaultReloginLockedKeyringKeepsSession: the same with the keyring locked.
func TestFaultReloginLockedKeyringKeepsSession(t *testing.T) {
	t.Parallel()
	needKeyring(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{})
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := &cli{t: t, dir: t.TempDir(), extra: k.Env}
	_, device := heldToken(t, c, srv, alice, pw)
	if err := k.Lock(); err != nil {
		t.Fatal(err)
	}
	oneLineStderr(t, c.expect(exitKeyring, pw+"\n", "login", "--user", alice, "--password-stdin"))
	if err := k.Unlock(); err != nil {
		t.Fatal(err)
	}
	tokenStillWorks(t, c, srv, device)
	c.ok("", "refresh")
	tokenStillWorks(t, c, srv, device)
}

// TestFaultReloginSaveFailsAfterServer: the keyring stops working between the
// check and the save, after the server replaced the device's tokens. The
// error says exactly that; the account is then shown as needing a sign-in
// (never handing out the dead token), a refresh does not delete its item,
// and signing in again reuses the device.
func TestFaultReloginSaveFailsAfterServer(t *testing.T) {
	t.Parallel()
	needKeyring(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{})
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := &cli{t: t, dir: t.TempDir(), extra: k.Env}
	before, device := heldToken(t, c, srv, alice, pw)

	// The server handles the sign-in at once and answers 3 s later; the
	// keyring is locked in between.
	srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/v3/login", Delay: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.command(ctx, pw+"\n", "login", "--user", alice, "--password-stdin")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to replace the old tokens", func() bool { return !tokenAccepted(srv, before) })
	if err := k.Lock(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitKeyring {
		t.Fatalf("want exit %d, got %v: %s", exitKeyring, err, stderr.String())
	}
	msg := stderr.String()
	oneLineStderr(t, result{stderr: msg, code: exitKeyring})
	for _, want := range []string{device, "sign in again", "mxauth login --user " + alice} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error should say %q: %s", want, msg)
		}
	}
	if err := k.Unlock(); err != nil {
		t.Fatal(err)
	}

	r := c.expect(exitSignIn, "", "token")
	if strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("token printed a token the server no longer accepts: %s", r)
	}
	c.expect(exitSignIn, "", "refresh")
	if items, err := k.SearchItems(map[string]string{"service": "mxauth"}); err != nil || len(items) != 1 {
		t.Fatalf("keyring items after the refresh: %v, %v", items, err)
	}
	list := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout)
	if len(list) != 1 || list[0].State != "sign-in-needed" || list[0].DeviceID != device {
		t.Fatalf("list --json: %+v", list)
	}

	c.login(srv, alice, pw)
	tokenStillWorks(t, c, srv, device)
	if devs := srv.Devices(alice); len(devs) != 1 {
		t.Fatalf("devices: %v", devs)
	}
}

// TestFaultCrashAfterSaveBeforeIndex: a first sign-in killed between the
// keyring save and the index write leaves a live secret no account lists.
// The next command (any command), or doctor, signs that device out on the
// server and deletes the item.
func TestFaultCrashAfterSaveBeforeIndex(t *testing.T) {
	t.Parallel()
	for _, next := range [][]string{{"list"}, {"token"}, {"doctor"}} {
		t.Run(next[0], func(t *testing.T) {
			srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
			c := newCLI(t)
			crash := &cli{t: t, dir: c.dir, extra: []string{crashEnv(app.StepLoginSaved)}}
			r := crash.run(pw+"\n", "login", "--user", alice, "--password-stdin")
			if r.code != -1 {
				t.Fatalf("the sign-in was not killed: %s", r)
			}
			items, devs := keyringItems(t, alice), srv.Devices(alice)
			t.Logf("figure: after the crash: %d keyring item(s), %d server device(s)", len(items), len(devs))
			if len(items) != 1 || len(devs) != 1 {
				t.Fatalf("the crash did not come after the save: items %v, devices %v", items, devs)
			}

			r = c.run("", next...)
			items, devs = keyringItems(t, alice), srv.Devices(alice)
			t.Logf("figure: after %s: %d keyring item(s), %d server device(s)", next[0], len(items), len(devs))
			if len(items) != 0 || len(devs) != 0 {
				t.Fatalf("%s left items %v, devices %v: %s", next[0], items, devs, r)
			}
			if !strings.Contains(r.stderr+r.stdout, "interrupted sign-in") {
				t.Errorf("%s should say what it cleaned up: %s", next[0], r)
			}
			if got := decodeJSON[[]accountJSON](t, c.ok("", "list", "--json").stdout); len(got) != 0 {
				t.Fatalf("accounts: %+v", got)
			}
			// Nothing is left to repair, and the next sign-in is clean.
			c.login(srv, alice, pw)
			if r := c.ok("", "list"); strings.Contains(r.stderr, "interrupted") {
				t.Fatalf("repaired twice: %s", r)
			}
			if items, devs := keyringItems(t, alice), srv.Devices(alice); len(items) != 1 || len(devs) != 1 {
				t.Fatalf("after signing in: items %v, devices %v", items, devs)
			}
		})
	}
}

// TestFaultCrashAfterSaveOnNewDevice: a token sign-in of an account already
// held (a new device) killed after the save: the held session keeps working
// and the new device is signed out again by the next command.
func TestFaultCrashAfterSaveOnNewDevice(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	_, device := heldToken(t, c, srv, alice, pw)
	lt := decodeJSON[loginTokenJSON](t, c.ok(pw+"\n", "login-token", "--password-stdin", "--json").stdout)

	crash := &cli{t: t, dir: c.dir, extra: []string{crashEnv(app.StepLoginSaved)}}
	if r := crash.run(lt.LoginToken+"\n", "login", "--user", alice, "--login-token-stdin"); r.code != -1 {
		t.Fatalf("the sign-in was not killed: %s", r)
	}
	if n := len(srv.Devices(alice)); n != 2 {
		t.Fatalf("want the held and the new device, got %d", n)
	}
	tokenStillWorks(t, c, srv, device)
	if devs := srv.Devices(alice); len(devs) != 1 || devs[0] != device {
		t.Fatalf("devices after repair: %v, want only %s", devs, device)
	}
	if items := keyringItems(t, alice); len(items) != 1 || items[0] != alice+"|"+device {
		t.Fatalf("keyring items after repair: %v", items)
	}
}

// TestFaultCrashSameDeviceRelogin: a sign-in again on the held device killed
// after the save: the new tokens are the account's, nothing to clean.
func TestFaultCrashSameDeviceRelogin(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	before, device := heldToken(t, c, srv, alice, pw)
	crash := &cli{t: t, dir: c.dir, extra: []string{crashEnv(app.StepLoginSaved)}}
	if r := crash.run(pw+"\n", "login", "--user", alice, "--password-stdin"); r.code != -1 {
		t.Fatalf("the sign-in was not killed: %s", r)
	}
	if tok := tokenStillWorks(t, c, srv, device); tok == before {
		t.Fatal("still the token from before the sign-in")
	}
	if items, devs := keyringItems(t, alice), srv.Devices(alice); len(items) != 1 || len(devs) != 1 {
		t.Fatalf("items %v, devices %v", items, devs)
	}
}

// TestFaultConcurrentFirstLogins: four first sign-ins of one user at once
// end with one device and one keyring item, and every process says which
// device it signed in, truly.
func TestFaultConcurrentFirstLogins(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	const n = 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	outs := make([]result, n)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := c.command(ctx, pw+"\n", "login", "--user", alice, "--password-stdin", "--json")
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				code = -2
			}
			outs[i] = result{out.String(), errb.String(), code}
		}()
	}
	wg.Wait()
	items, devs := keyringItems(t, alice), srv.Devices(alice)
	t.Logf("figure: %d concurrent first sign-ins took %s: %d server device(s), %d keyring item(s)", n, time.Since(start).Round(time.Millisecond), len(devs), len(items))
	for i, r := range outs {
		if r.code != 0 {
			t.Fatalf("sign-in %d: %s", i, r)
		}
	}
	if len(devs) != 1 || len(items) != 1 {
		t.Fatalf("want one device and one item, got devices %v, items %v", devs, items)
	}
	for i, r := range outs {
		if got := decodeJSON[accountJSON](t, r.stdout); got.DeviceID != devs[0] {
			t.Errorf("sign-in %d says device %s, the server has %s", i, got.DeviceID, devs[0])
		}
	}
	tokenStillWorks(t, c, srv, devs[0])
}

// tokenAccepted asks the server whether an access token is still valid.
func tokenAccepted(srv *homeserver.Server, token string) bool {
	c, err := matrix.NewClient(srv.URL())
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.WhoAmI(ctx, matrix.Secret(token))
	return err == nil
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFaultCrashRepairWaitsForServer: the leftover session of a killed
// sign-in is not deleted while the server cannot sign it out; the next
// command after the server is back does both.
func TestFaultCrashRepairWaitsForServer(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	crash := &cli{t: t, dir: c.dir, extra: []string{crashEnv(app.StepLoginSaved)}}
	if r := crash.run(pw+"\n", "login", "--user", alice, "--password-stdin"); r.code != -1 {
		t.Fatalf("the sign-in was not killed: %s", r)
	}
	srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/v3/logout", Status: 502, Body: `{"errcode":"M_UNKNOWN","error":"bad gateway"}`})
	r := c.ok("", "list")
	if !strings.Contains(r.stderr, "trying again next time") {
		t.Fatalf("list should say the sign-out must wait: %s", r)
	}
	if items, devs := keyringItems(t, alice), srv.Devices(alice); len(items) != 1 || len(devs) != 1 {
		t.Fatalf("with the server failing: items %v, devices %v", items, devs)
	}
	c.ok("", "list")
	if items, devs := keyringItems(t, alice), srv.Devices(alice); len(items) != 0 || len(devs) != 0 {
		t.Fatalf("with the server back: items %v, devices %v", items, devs)
	}
}
