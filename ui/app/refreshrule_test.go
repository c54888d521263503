package app

import (
	"context"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// TestServerInfoRefreshTokens: an expiring token is no sign that the server
// refreshes; a v1.2 server that gave no refresh token does not.
func TestServerInfoRefreshTokens(t *testing.T) {
	srv, alice, pw := startHomeserver(t, homeserver.Options{NoRefresh: true, NonRefreshableLifetime: 5 * time.Minute})
	srv.InjectFault(homeserver.Fault{PathPrefix: "/_matrix/client/versions", Status: 200, Body: `{"versions":["r0.6.1","v1.1","v1.2"]}`, Count: -1})
	svc := memoryService(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := svc.Login(ctx, LoginParams{Homeserver: srv.URL(), User: alice, Password: matrix.Secret(pw)}); err != nil {
		t.Fatal(err)
	}
	info, err := svc.ServerInfo(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if info.RefreshTokens {
		t.Fatalf("server info says the server refreshes: %+v", info)
	}
}
