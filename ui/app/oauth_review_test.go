package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"mxauth/keystore"
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

// TestAccountPageOnlyWeb: the account page comes from the account list; one
// edited to name a script, a local file or plain http to another machine is
// never handed to a browser: no link, and devices are not sent there.
func TestAccountPageOnlyWeb(t *testing.T) {
	for _, page := range []string{"javascript:alert(1)", "file:///etc/passwd", "http://auth.example.org/account", "data:text/html,x", "//auth.example.org/account"} {
		svc := memoryService(t)
		oc := matrix.OAuthClient{Issuer: "https://auth.example.org/", ClientID: "c", TokenEndpoint: "https://auth.example.org/token",
			RevocationEndpoint: "https://auth.example.org/revoke", AccountManagementURI: page}
		a := keystore.Account{UserID: "@alice:example.org", DeviceID: "DEV", Homeserver: "https://matrix.example.org", AddedAt: time.Now(), Kind: "oauth", OAuth: &oc}
		if err := svc.Store().PutAccount(a); err != nil {
			t.Fatal(err)
		}
		if u, err := svc.AccountPageURL(a.UserID, matrix.AccountActionProfile, ""); err == nil {
			t.Errorf("%s: account page %q", page, u)
		}
		if v := svc.View(a, ""); v.AccountURL != "" {
			t.Errorf("%s: the view links %q", page, v.AccountURL)
		}
		var ap *AccountPageError
		if err := svc.DeleteDevice(context.Background(), a.UserID, "OTHER", nil); errors.As(err, &ap) {
			t.Errorf("%s: devices sent to %q", page, ap.URL)
		}
	}
	// A loopback page over plain http is fine (a test or demo server).
	svc := memoryService(t)
	oc := matrix.OAuthClient{ClientID: "c", TokenEndpoint: "http://127.0.0.1:8009/auth/token", AccountManagementURI: "http://127.0.0.1:8009/auth/account"}
	a := keystore.Account{UserID: "@carol:127.0.0.1:8009", DeviceID: "DEV", Homeserver: "http://127.0.0.1:8009", AddedAt: time.Now(), Kind: "oauth", OAuth: &oc}
	if err := svc.Store().PutAccount(a); err != nil {
		t.Fatal(err)
	}
	if u, err := svc.AccountPageURL(a.UserID, "", ""); err != nil || u != "http://127.0.0.1:8009/auth/account" {
		t.Fatalf("loopback account page: %q %v", u, err)
	}
}
