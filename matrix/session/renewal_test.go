package session_test

import (
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

func TestRenewalOf(t *testing.T) {
	later := time.Now().Add(time.Hour)
	cases := []struct {
		name string
		t    matrix.TokenSet
		want session.Renewal
		can  bool
	}{
		{"never expires", matrix.TokenSet{AccessToken: "at"}, session.RenewalNotNeeded, false},
		{"never expires, refresh token anyway", matrix.TokenSet{AccessToken: "at", RefreshToken: "rt"}, session.RenewalNotNeeded, true},
		{"expires, no refresh token", matrix.TokenSet{AccessToken: "at", ExpiresAt: later}, session.RenewalBySignIn, false},
		{"expires, refresh token", matrix.TokenSet{AccessToken: "at", RefreshToken: "rt", ExpiresAt: later}, session.RenewalByRefresh, true},
	}
	for _, c := range cases {
		if got := session.RenewalOf(c.t); got != c.want {
			t.Errorf("%s: RenewalOf = %v, want %v", c.name, got, c.want)
		}
		if got := session.CanRefresh(c.t); got != c.can {
			t.Errorf("%s: CanRefresh = %v, want %v", c.name, got, c.can)
		}
	}
}

func TestServerRefreshes(t *testing.T) {
	old := &matrix.VersionsResponse{Versions: []string{"r0.6.1", "v1.2"}}
	current := &matrix.VersionsResponse{Versions: []string{"v1.2", "v1.3"}}
	expiring := matrix.TokenSet{AccessToken: "at", ExpiresAt: time.Now().Add(time.Hour)}
	refreshing := matrix.TokenSet{AccessToken: "at", RefreshToken: "rt", ExpiresAt: time.Now().Add(time.Hour)}
	if session.ServerRefreshes(old, expiring) {
		t.Error("a v1.2 server that gave no refresh token refreshes")
	}
	if !session.ServerRefreshes(old, refreshing) {
		t.Error("a server that gave a refresh token does not refresh")
	}
	if !session.ServerRefreshes(current, expiring) {
		t.Error("a v1.3 server does not refresh")
	}
}
