//go:build unix

package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

// indexBlocker holds the account list's lock, as another process would, from
// the moment a sign-in's tokens are saved, so its account entry cannot be written.
type indexBlocker struct {
	t     *testing.T
	dir   string
	armed atomic.Bool
	f     *os.File
}

func (b *indexBlocker) checkpoint(step string) {
	if step != StepLoginSaved || !b.armed.Load() {
		return
	}
	f, err := os.OpenFile(filepath.Join(b.dir, "index.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		b.t.Error(err)
		return
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b.t.Error(err)
	}
	b.f = f
}

func (b *indexBlocker) release() {
	if b.f != nil {
		_ = unix.Flock(int(b.f.Fd()), unix.LOCK_UN)
		b.f.Close()
		b.f = nil
	}
	b.armed.Store(false)
}

func blockedService(t *testing.T) (*Service, *indexBlocker) {
	dir := t.TempDir()
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewMemoryBackend(), Dir: dir, LockTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b := &indexBlocker{t: t, dir: dir}
	t.Cleanup(b.release)
	return New(st, Options{DeviceName: "test", Checkpoint: b.checkpoint}), b
}

// TestOAuthIndexWriteFails: the tokens are saved but the account list cannot
// be written: the grant is revoked and its item deleted; the marker, which
// could not be dropped either, is settled by the next run.
func TestOAuthIndexWriteFails(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	svc, block := blockedService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := startDeviceSignIn(t, ctx, svc, srv, alice)
	block.armed.Store(true)
	_, err := l.Wait(ctx, approveDuringWait(t, l, "alice", pw, "approve"))
	block.release()
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("wait: %v, want the sign-in revoked", err)
	}
	if devs := srv.Devices(alice); len(devs) != 0 {
		t.Fatalf("the granted session lives on: %v", devs)
	}
	if err := svc.Store().Reload(); err != nil {
		t.Fatal(err)
	}
	if a := svc.Store().Accounts(); len(a) != 0 {
		t.Fatalf("accounts: %+v", a)
	}
	if p := svc.Store().PendingRemovals(); len(p) == 1 {
		if _, err := svc.Store().LoadTokens(ctx, session.AccountKey{UserID: p[0].UserID, DeviceID: p[0].DeviceID}); err == nil {
			t.Fatal("the revoked session's tokens were kept")
		}
	}
	if _, err := svc.Store().FinishPending(ctx, svc.SignOutLeftover); err != nil {
		t.Fatal(err)
	}
	nothingStored(t, svc)
}

// TestOAuthSignInAgainIndexWriteFails: a sign-in again on the held device
// whose account entry cannot be written keeps the previous session: its
// tokens go back into the keyring and the new session is revoked.
func TestOAuthSignInAgainIndexWriteFails(t *testing.T) {
	srv, alice, pw := delegated(t, homeserver.Options{})
	svc, block := blockedService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := signInWithDevice(t, ctx, svc, srv, alice, pw)
	before := mustAccount(t, svc, alice)

	l := startDeviceSignIn(t, ctx, svc, srv, alice)
	block.armed.Store(true)
	_, err := l.Wait(ctx, approveDuringWait(t, l, "alice", pw, "approve"))
	block.release()
	if err == nil || !strings.Contains(err.Error(), "keeps its previous session") {
		t.Fatalf("wait: %v", err)
	}
	if got := mustAccount(t, svc, alice); got.DeviceID != first.DeviceID || got.OAuth.ClientID != before.OAuth.ClientID {
		t.Fatalf("entry changed: %+v", got)
	}
	other := New(svc.Store(), Options{DeviceName: "test"})
	if err := other.Refresh(ctx, alice); err != nil {
		t.Fatalf("the previous session does not refresh: %v", err)
	}
	tok, err := other.AccessToken(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := matrix.NewClient(srv.URL())
	if _, err := c.WhoAmI(ctx, tok); err != nil {
		t.Fatalf("the previous session does not work: %v", err)
	}
}
