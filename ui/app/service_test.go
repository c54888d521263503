package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

// memoryService is a Service over the memory keystore, for in-process tests.
func memoryService(t *testing.T) *Service {
	t.Helper()
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewMemoryBackend(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return New(st, Options{DeviceName: "test"})
}

func TestBackendMintOnUnstablePath(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{GetTokenUnstableOnly: true})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := svc.Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)}); err != nil {
		t.Fatal(err)
	}
	chk, err := svc.CheckLoginToken(ctx, alice)
	if err != nil || !chk.Supported {
		t.Fatalf("check: %+v, %v", chk, err)
	}
	srv.ResetLog()
	_, err = svc.MintLoginToken(ctx, alice, nil)
	if got := endpoints(srv.Requests()); !strings.Contains(got[len(got)-1], "unstable") {
		t.Fatalf("the UIA session did not move to the advertised unstable path: %v", got)
	}
	ch, ok := matrix.AsUIA(err)
	if !ok || !ch.CanUsePassword() {
		t.Fatalf("first mint: want a password challenge, got %v", err)
	}
	_, err = svc.MintLoginToken(ctx, alice, matrix.PasswordAuth(ch.Session, alice, "wrong"))
	if ch2, ok := matrix.AsUIA(err); !ok || !ch2.StageFailed() {
		t.Fatalf("wrong password: %v", err)
	}
	resp, err := svc.MintLoginToken(ctx, alice, matrix.PasswordAuth(ch.Session, alice, matrix.Secret(pw)))
	if err != nil || resp.LoginToken.IsZero() {
		t.Fatalf("mint: %v", err)
	}
}

func TestBackendNoGetToken(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{NoGetToken: true})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := svc.Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)}); err != nil {
		t.Fatal(err)
	}
	chk, err := svc.CheckLoginToken(ctx, alice)
	if err != nil || chk.Supported || chk.Reason != "this server does not offer login tokens" {
		t.Fatalf("check: %+v, %v", chk, err)
	}
	info, err := svc.ServerInfo(ctx, alice)
	if err != nil || info.GetLoginToken || info.Note == "" || len(info.Versions) == 0 {
		t.Fatalf("server info: %+v, %v", info, err)
	}
	if _, err := svc.MintLoginToken(ctx, alice, nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("mint: %v, want ErrUnsupported", err)
	}
}

// TestBackendFollowsOtherProcesses: the running app (Service.Run) picks up an
// account another mxauth process added, a sign-in again done elsewhere after
// the server ended the session, and a removal, from the shared account list.
func TestBackendFollowsOtherProcesses(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	dir, secrets := t.TempDir(), keystore.NewMemoryBackend()
	open := func() *Service {
		st, err := keystore.Open(keystore.Options{Backend: secrets, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		// Polling often finds the changes soon; the waits below keep the
		// default poll's bound.
		return New(st, Options{DeviceName: "test", IndexPoll: 50 * time.Millisecond})
	}
	running, other := open(), open()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go running.Run(ctx)

	stateOf := func() (session.State, bool) {
		for _, a := range running.Accounts() {
			if a.UserID == alice {
				return a.Status.State, true
			}
		}
		return 0, false
	}
	waitState := func(what string, ok func(session.State, bool) bool) {
		t.Helper()
		for deadline := time.Now().Add(3 * indexPoll); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if ok(stateOf()) {
				return
			}
		}
		st, held := stateOf()
		t.Fatalf("%s: the running app shows held=%v state=%v", what, held, st)
	}

	first, err := other.Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)})
	if err != nil {
		t.Fatal(err)
	}
	waitState("added elsewhere", func(st session.State, held bool) bool { return held && st == session.StateActive })

	// The server ends the session softly; the running app notices on its next call.
	srv.SoftLogoutDevice(alice, first.DeviceID)
	if _, err := running.Devices(ctx, alice); err == nil {
		t.Fatal("devices after a soft logout should fail")
	}
	waitState("soft logout", func(st session.State, held bool) bool { return held && st == session.StateNeedsSignIn })

	// Signing in again in the other process (same device) brings it back here.
	again, err := other.Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw), DeviceID: first.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	if again.DeviceID != first.DeviceID {
		t.Fatalf("sign-in again made device %s, want %s", again.DeviceID, first.DeviceID)
	}
	waitState("signed in again elsewhere", func(st session.State, held bool) bool { return held && st == session.StateActive })
	if _, err := running.Devices(ctx, alice); err != nil {
		t.Fatalf("the running app should use the new tokens: %v", err)
	}

	if err := other.SignOut(ctx, alice); err != nil {
		t.Fatal(err)
	}
	waitState("removed elsewhere", func(_ session.State, held bool) bool { return !held })
}

// TestBackendBareNameReusesDevice: the add-account form of the full-screen
// app (a user name and a homeserver URL) signs a held account in again on its
// device too.
func TestBackendBareNameReusesDevice(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := svc // as the TUI calls it
	var ids []string
	for _, user := range []string{"alice", alice, "alice"} {
		v, err := b.Login(ctx, LoginParams{Homeserver: srv.URL(), User: user, Password: matrix.Secret(pw)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.DeviceID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] || len(srv.Devices(alice)) != 1 || len(svc.Accounts()) != 1 {
		t.Fatalf("devices %v, server %v, accounts %d", ids, srv.Devices(alice), len(svc.Accounts()))
	}
}

// startHomeserver starts a test homeserver with alice (and her password).
func startHomeserver(t *testing.T, opt homeserver.Options) (srv *homeserver.Server, alice, password string) {
	t.Helper()
	srv = homeserver.New(opt)
	t.Cleanup(srv.Close)
	password = "correct horse " + t.Name()
	alice = srv.AddUser("alice", password)
	return srv, alice, password
}

// endpoints is "METHOD /path" for each request, in order.
func endpoints(reqs []homeserver.LoggedRequest) []string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}
