package matrix_test

import (
	"errors"
	"testing"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// TestOAuthAgainstHomeserver runs the protocol layer against the in-process
// homeserver's delegated mode: the three kinds of server, a registration the
// server narrowed, and the start of a device grant.
func TestOAuthAgainstHomeserver(t *testing.T) {
	kinds := []struct {
		opt  homeserver.Options
		want matrix.ServerAuthKind
	}{
		{homeserver.Options{}, matrix.AuthLegacy},
		{homeserver.Options{Delegated: true}, matrix.AuthOAuthOnly},
		{homeserver.Options{Delegated: true, PasswordCompat: true}, matrix.AuthOAuthPasswordCompat},
	}
	for _, k := range kinds {
		srv := homeserver.New(k.opt)
		t.Cleanup(srv.Close)
		c, err := matrix.NewClient(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.ProbeServerAuth(t.Context())
		if err != nil || got.Kind != k.want {
			t.Fatalf("%+v: got %v %v, want %s", k.opt, got, err, k.want)
		}
	}

	srv := homeserver.New(homeserver.Options{Delegated: true, DeviceGrantDisabled: true})
	t.Cleanup(srv.Close)
	c, err := matrix.NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	meta, err := c.AuthMetadata(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	reg := matrix.NativeClient("mxauth", "https://mxauth.example.org/", []string{matrix.GrantRefreshToken, matrix.GrantDeviceCode}, nil)
	var dropped *matrix.GrantDroppedError
	if _, err := c.RegisterClient(t.Context(), meta, reg); !errors.As(err, &dropped) || dropped.Dropped[0] != matrix.GrantDeviceCode {
		t.Fatalf("narrowed registration: %v", err)
	}

	srv = homeserver.New(homeserver.Options{Delegated: true})
	t.Cleanup(srv.Close)
	if c, err = matrix.NewClient(srv.URL()); err != nil {
		t.Fatal(err)
	}
	if meta, err = c.AuthMetadata(t.Context()); err != nil {
		t.Fatal(err)
	}
	client, err := c.RegisterClient(t.Context(), meta, reg)
	if err != nil {
		t.Fatal(err)
	}
	deviceID, err := matrix.NewDeviceID()
	if err != nil {
		t.Fatal(err)
	}
	da, err := c.RequestDeviceAuthorization(t.Context(), meta, client.ClientID, matrix.OAuthScope(deviceID))
	if err != nil || da.UserCode == "" {
		t.Fatalf("device authorization: %+v %v", da, err)
	}
	_, err = c.RequestToken(t.Context(), meta, matrix.TokenRequest{GrantType: matrix.GrantDeviceCode, ClientID: client.ClientID, DeviceCode: da.DeviceCode})
	if !matrix.IsAuthorizationPending(err) {
		t.Fatalf("before approval: %v", err)
	}
	_, err = c.RequestToken(t.Context(), meta, matrix.TokenRequest{GrantType: matrix.GrantRefreshToken, ClientID: client.ClientID, RefreshToken: "mar_unknown_0123456789"})
	if !matrix.IsInvalidGrant(err) {
		t.Fatalf("unknown refresh token: %v", err)
	}
	if err := c.RevokeToken(t.Context(), meta, client.ClientID, "mat_unknown_0123456789", matrix.TokenHintAccess); err != nil {
		t.Fatalf("revoking an unknown token (RFC 7009: 200): %v", err)
	}
}
