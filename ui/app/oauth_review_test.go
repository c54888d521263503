package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// TestOAuthCompatAccountPage: an account signed in with a password through
// an OAuth 2.0 server's compatibility layer keeps no OAuth client, yet its
// server deletes devices only on its account page: deleting another device
// gives that page (from the server's metadata) at the device, deleting its
// own signs it out, and the login-token check names the page.
func TestOAuthCompatAccountPage(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{PasswordCompat: true})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := svc.ProbeAuth(ctx, srv.URL(), alice); err != nil { // as the front ends do first
		t.Fatal(err)
	}
	acct, err := svc.Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)})
	if err != nil {
		t.Fatal(err)
	}
	if acct.OAuth || acct.Kind != matrix.AuthOAuthPasswordCompat {
		t.Fatalf("a password sign-in on the compatibility layer: %+v", acct)
	}
	other := memoryService(t)
	theirs := signInWithDevice(t, ctx, other, srv, alice, pw).DeviceID

	err = svc.DeleteDevice(ctx, alice, theirs, nil)
	var page *AccountPageError
	want := srv.URL() + "/auth/account?action=org.matrix.device_delete&device_id=" + theirs
	if !errors.As(err, &page) || !errors.Is(err, ErrUnsupported) || page.URL != want {
		t.Fatalf("deleting another device: %v, want the account page %s", err, want)
	}
	if !slices.Contains(srv.Devices(alice), theirs) {
		t.Fatal("the other device went without the account page")
	}
	chk, err := svc.CheckLoginToken(ctx, alice)
	if err != nil || chk.Supported || !strings.HasPrefix(chk.AccountURL, srv.URL()+"/auth/account") {
		t.Fatalf("login-token check: %+v %v", chk, err)
	}
	if err := svc.DeleteDevice(ctx, alice, acct.DeviceID, nil); err != nil {
		t.Fatalf("deleting its own device: %v", err)
	}
	if _, ok := svc.Store().Account(alice); ok || slices.Contains(srv.Devices(alice), acct.DeviceID) {
		t.Fatalf("its own device's deletion left: listed=%v devices=%v", ok, srv.Devices(alice))
	}
}
