package app

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
)

type waited struct {
	acct Account
	err  error
}

func waitInBackground(ctx context.Context, l *OAuthLogin) chan waited {
	done := make(chan waited, 1)
	go func() {
		a, err := l.Wait(ctx, nil)
		done <- waited{a, err}
	}()
	return done
}

// TestOAuthBrowserSignIn: the authorization code flow through the Service,
// the browser coming back to the loopback listener; then a denial.
func TestOAuthBrowserSignIn(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	l, err := svc.StartOAuthLogin(ctx, OAuthLoginParams{Homeserver: srv.URL(), User: alice, Browser: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer l.Close()
	u, err := url.Parse(l.AuthURL)
	if err != nil || !l.Browser || l.UserCode != "" || !strings.HasPrefix(l.AuthURL, srv.URL()) ||
		!strings.HasPrefix(u.Query().Get("redirect_uri"), "http://127.0.0.1:") || u.Query().Get("code_challenge_method") != "S256" {
		t.Fatalf("started: %+v", l)
	}
	nothingStored(t, svc)
	done := waitInBackground(ctx, l)
	page := browsertest.New(t).Authorize(l.AuthURL, browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Approve}).Body
	w := <-done
	if w.err != nil {
		t.Fatalf("wait: %v (browser ended on %q)", w.err, page)
	}
	if w.acct.UserID != alice || !w.acct.OAuth || w.acct.Kind != matrix.AuthOAuthOnly {
		t.Fatalf("account: %+v", w.acct)
	}
	tok, err := svc.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := matrix.NewClient(srv.URL())
	if who, err := c.WhoAmI(ctx, tok); err != nil || who.DeviceID != w.acct.DeviceID {
		t.Fatalf("whoami: %+v %v", who, err)
	}
	if err := svc.Refresh(ctx, alice); err != nil {
		t.Fatalf("refresh of a browser sign-in: %v", err)
	}

	// Denied in the browser: nothing changes.
	svc2 := memoryService(t)
	l2, err := svc2.StartOAuthLogin(ctx, OAuthLoginParams{Homeserver: srv.URL(), User: alice, Browser: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer l2.Close()
	done = waitInBackground(ctx, l2)
	browsertest.New(t).Authorize(l2.AuthURL, browsertest.Answer{User: "alice", Password: pw, Decision: browsertest.Deny})
	if w := <-done; !errors.Is(w.err, ErrSignInDenied) {
		t.Fatalf("wait after a denial: %v", w.err)
	}
	nothingStored(t, svc2)
}
