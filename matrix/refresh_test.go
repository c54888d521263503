package matrix

import (
	"errors"
	"testing"
	"time"
)

func TestRefreshRequest(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/_matrix/client/v3/refresh", 200, `{"access_token":"a_new_token","expires_in_ms":60000,"refresh_token":"another_new_token"}`)
	r, err := w.client(t).Refresh(testCtx(t), "some_token")
	if err != nil {
		t.Fatal(err)
	}
	req := w.last(t)
	if req.Header.Get("Authorization") != "" {
		t.Fatal("refresh sent an Authorization header")
	}
	if string(req.Body) != `{"refresh_token":"some_token"}` {
		t.Fatalf("body = %s", req.Body)
	}
	if r.AccessToken != "a_new_token" || r.RefreshToken != "another_new_token" || r.ExpiresInMS == nil || *r.ExpiresInMS != 60000 || r.ReceivedAt.IsZero() {
		t.Fatalf("resp = %+v", r)
	}
}

func TestRefreshApply(t *testing.T) {
	recv := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	old := TokenSet{AccessToken: "old_a", RefreshToken: "old_r", IssuedAt: recv.Add(-time.Hour), ExpiresAt: recv.Add(-time.Minute)}
	ms := int64(120000)

	// No refresh_token in the reply: keep the previous one, never overwrite with empty.
	kept := (&RefreshResponse{AccessToken: "new_a", ExpiresInMS: &ms, ReceivedAt: recv}).Apply(old)
	if kept.RefreshToken != "old_r" || kept.AccessToken != "new_a" || !kept.IssuedAt.Equal(recv) || !kept.ExpiresAt.Equal(recv.Add(2*time.Minute)) {
		t.Fatalf("kept = %+v", kept)
	}
	rotated := (&RefreshResponse{AccessToken: "new_a", RefreshToken: "new_r", ReceivedAt: recv}).Apply(old)
	if rotated.RefreshToken != "new_r" || rotated.Expires() {
		t.Fatalf("rotated = %+v (no expires_in_ms must mean no expiry)", rotated)
	}
}

func TestRefreshWithoutRefreshTokenKeepsOld(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/_matrix/client/v3/refresh", 200, `{"access_token":"a2","expires_in_ms":1000}`)
	r, err := w.client(t).Refresh(testCtx(t), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if ts := r.Apply(TokenSet{AccessToken: "a1", RefreshToken: "r1"}); ts.RefreshToken != "r1" || ts.AccessToken != "a2" {
		t.Fatalf("Apply = %+v", ts)
	}
}

func TestRefreshErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		header []string
		check  func(error) bool
	}{
		{"soft logout", 401, `{"errcode":"M_UNKNOWN_TOKEN","error":"Soft logged out","soft_logout":true}`, nil, func(e error) bool { return IsUnknownToken(e) && IsSoftLogout(e) && !IsTransient(e) }},
		{"hard logout", 401, `{"errcode":"M_UNKNOWN_TOKEN","soft_logout":false}`, nil, func(e error) bool { return IsUnknownToken(e) && !IsSoftLogout(e) }},
		{"synapse superseded", 403, `{"errcode":"M_FORBIDDEN","error":"refresh token isn't valid anymore"}`, nil, func(e error) bool { return IsForbidden(e) && !IsTransient(e) }},
		{"locked", 401, `{"errcode":"M_USER_LOCKED","soft_logout":true}`, nil, IsUserLocked},
		{"rate limited", 429, `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":4000}`, []string{"Retry-After", "5"}, func(e error) bool {
			d, _ := RetryAfter(e)
			return IsTransient(e) && d == 5*time.Second
		}},
		{"gateway", 502, `<html><title>Bad Gateway</title></html>`, nil, IsTransient},
		{"unsupported", 404, `{"errcode":"M_UNRECOGNIZED"}`, nil, IsUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(t)
			w.reply("POST", "/_matrix/client/v3/refresh", c.status, c.body, c.header...)
			_, err := w.client(t).Refresh(testCtx(t), "r_tok")
			if err == nil || !c.check(err) {
				t.Fatalf("err = %#v", err)
			}
		})
	}
}

func TestRefreshRejectsEmptyAndMalformed(t *testing.T) {
	w := newWire(t)
	c := w.client(t)
	if _, err := c.Refresh(testCtx(t), ""); !errors.Is(err, ErrNoRefreshToken) {
		t.Fatalf("empty token: %v", err)
	}
	if len(w.requests()) != 0 {
		t.Fatal("empty refresh token sent")
	}
	w.reply("POST", "/_matrix/client/v3/refresh", 200, `{"refresh_token":"r2"}`)
	if _, err := c.Refresh(testCtx(t), "r1"); !errors.Is(err, ErrMalformedResponse) || !IsTransient(err) {
		t.Fatalf("reply without access_token: %v", err)
	}
}
