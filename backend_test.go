package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/matrixtest"
	"mxauth/ui"
)

// memoryService is a Service over the memory keystore, for in-process tests.
func memoryService(t *testing.T) *Service {
	t.Helper()
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewMemoryBackend(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return newService(st, serviceOptions{DeviceName: "test"})
}

func TestBackendMintOnUnstablePath(t *testing.T) {
	srv, alice, pw := homeserver(t, matrixtest.Options{GetTokenUnstableOnly: true})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := svc.Login(ctx, ui.LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)}); err != nil {
		t.Fatal(err)
	}
	chk, err := svc.CheckLoginToken(ctx, alice)
	if err != nil || !chk.Supported || !strings.Contains(chk.Path, "unstable") {
		t.Fatalf("check: %+v, %v", chk, err)
	}
	_, err = svc.MintLoginToken(ctx, alice, nil)
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
	srv, alice, pw := homeserver(t, matrixtest.Options{NoGetToken: true})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := svc.Login(ctx, ui.LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)}); err != nil {
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
	if _, err := svc.MintLoginToken(ctx, alice, nil); exitCode(err) != exitUnsupported {
		t.Fatalf("mint: %v (exit %d)", err, exitCode(err))
	}
}
