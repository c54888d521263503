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
