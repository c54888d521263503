//go:build unix

package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// TestSignOutWithIndexBusyLeavesNoDeadToken: when the server has signed the
// session out but the account list cannot be written (another process holds
// its lock), the dead tokens must not be handed out afterwards.
func TestSignOutWithIndexBusyLeavesNoDeadToken(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{})
	dir := t.TempDir()
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewMemoryBackend(), Dir: dir, LockTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := New(st, Options{DeviceName: "test"}).Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)}); err != nil {
		t.Fatal(err)
	}

	f, err := os.OpenFile(filepath.Join(dir, "index.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := New(st, Options{DeviceName: "test"}).SignOut(ctx, alice); err == nil {
		t.Fatal("sign-out reported success although the account list was locked")
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)

	tok, err := New(st, Options{DeviceName: "test"}).AccessToken(ctx, alice)
	if err == nil {
		t.Fatalf("a token was handed out after the server signed the session out (%d chars)", len(tok.Reveal()))
	}
}
