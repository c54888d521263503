package matrix

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLoginTokenPath(t *testing.T) {
	v := func(versions []string, flags map[string]bool) *VersionsResponse {
		return &VersionsResponse{Versions: versions, UnstableFeatures: flags}
	}
	flows := func(stable, unstable bool) *LoginFlowsResponse {
		return &LoginFlowsResponse{Flows: []LoginFlow{{Type: LoginTypePassword}, {Type: LoginTypeToken, GetLoginToken: stable, UnstableGetLoginToken: unstable}}}
	}
	cases := []struct {
		name  string
		v     *VersionsResponse
		f     *LoginFlowsResponse
		want  string
		found bool
	}{
		{"v1.7", v([]string{"v1.1", "v1.7"}, nil), nil, "/_matrix/client/v1/login/get_token", true},
		{"v1.12", v([]string{"v1.12"}, nil), flows(false, false), "/_matrix/client/v1/login/get_token", true},
		{"old versions but stable flow flag", v([]string{"v1.1"}, nil), flows(true, false), "/_matrix/client/v1/login/get_token", true},
		{"rev1 flow flag", v([]string{"v1.5"}, map[string]bool{"org.matrix.msc3882": true}), flows(false, true), GetLoginTokenUnstablePath, true},
		{"rev0 feature flag", v([]string{"v1.5"}, map[string]bool{"org.matrix.msc3882": true}), nil, GetLoginTokenUnstableRev0Path, true},
		{"feature flag false", v([]string{"v1.5"}, map[string]bool{"org.matrix.msc3882": false}), flows(false, false), "", false},
		{"nothing advertised", v([]string{"r0.6.1", "v1.6"}, nil), flows(false, false), "", false},
		{"nil everything", nil, nil, "", false},
	}
	for _, c := range cases {
		got, ok := LoginTokenPath(c.v, c.f)
		if got != c.want || ok != c.found {
			t.Errorf("%s: LoginTokenPath = %q, %v; want %q, %v", c.name, got, ok, c.want, c.found)
		}
	}
}

const uiaChallenge = `{"flows":[{"stages":["m.login.password"]}],"params":{},"session":"sess-1"}`

func TestGetLoginTokenUIAFlow(t *testing.T) {
	w := newWire(t)
	path := "/_matrix/client/v1/login/get_token"
	w.sequence("POST", path,
		jsonReply(401, uiaChallenge),
		jsonReply(401, `{"flows":[{"stages":["m.login.password"]}],"params":{},"session":"sess-1","errcode":"M_FORBIDDEN","error":"Invalid username or password"}`),
		jsonReply(200, `{"login_token":"minted_login_token","expires_in_ms":120000,"expires_in":120}`),
	)
	at := time.Date(2032, 2, 2, 2, 2, 2, 0, time.UTC)
	c := w.client(t, WithClock(func() time.Time { return at }))
	ctx := testCtx(t)

	// First call: a real {} body, answered by a UIA challenge that is not a token error.
	_, err := c.GetLoginToken(ctx, "syt_access", path, GetLoginTokenRequest{})
	if string(w.last(t).Body) != "{}" {
		t.Fatalf("first get_token body = %q, want {}", w.last(t).Body)
	}
	if w.last(t).Header.Get("Authorization") != "Bearer syt_access" {
		t.Fatal("no access token sent")
	}
	ch, ok := AsUIA(err)
	if !ok || IsUnknownToken(err) || IsMissingToken(err) || ch.Session != "sess-1" || !ch.CanUsePassword() {
		t.Fatalf("first call: %#v", err)
	}

	// Wrong password: still UIA, same session, re-prompt.
	_, err = c.GetLoginToken(ctx, "syt_access", path, GetLoginTokenRequest{Auth: PasswordAuth(ch.Session, "@me:hs", "wrong-password")})
	ch2, ok := AsUIA(err)
	if !ok || !ch2.StageFailed() || ch2.Session != ch.Session || ch2.ErrCode != "M_FORBIDDEN" {
		t.Fatalf("wrong password: %#v", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatal("password in error")
	}
	body := w.last(t).bodyMap(t)
	wantAuth := map[string]any{"type": "m.login.password", "session": "sess-1", "identifier": map[string]any{"type": "m.id.user", "user": "@me:hs"}, "password": "wrong-password"}
	if mustJSON(t, body["auth"]) != mustJSON(t, wantAuth) {
		t.Fatalf("auth = %v", body["auth"])
	}

	resp, err := c.GetLoginToken(ctx, "syt_access", path, GetLoginTokenRequest{Auth: PasswordAuth(ch2.Session, "@me:hs", "right-password")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.LoginToken != "minted_login_token" || resp.ExpiresInMS != 120000 || !resp.ExpiresAt().Equal(at.Add(2*time.Minute)) {
		t.Fatalf("resp = %+v", resp)
	}
}

func TestGetLoginTokenFallbackResendsSessionOnly(t *testing.T) {
	w := newWire(t)
	path := GetLoginTokenUnstablePath
	w.sequence("POST", path,
		jsonReply(401, `{"flows":[{"stages":["m.login.sso"]}],"session":"s/s&x=1"}`),
		jsonReply(200, `{"login_token":"tok","expires_in_ms":300000}`),
	)
	c := w.client(t)
	_, err := c.GetLoginToken(testCtx(t), "at", path, GetLoginTokenRequest{})
	ch, ok := AsUIA(err)
	if !ok || ch.CanUsePassword() {
		t.Fatalf("sso challenge: %v", err)
	}
	u := c.FallbackURL(ch.NextStages()[0], ch.Session)
	if u != w.URL+"/_matrix/client/v3/auth/m.login.sso/fallback/web?session=s%2Fs%26x%3D1" {
		t.Fatalf("FallbackURL = %q", u)
	}
	if _, err := c.GetLoginToken(testCtx(t), "at", path, GetLoginTokenRequest{Auth: SessionAuth(ch.Session)}); err != nil {
		t.Fatal(err)
	}
	if got := string(w.last(t).Body); got != `{"auth":{"session":"s/s\u0026x=1"}}` {
		t.Fatalf("fallback resend body = %s", got)
	}
	if w.last(t).Path != path {
		t.Fatalf("path changed mid-session: %s", w.last(t).Path)
	}
}

func TestFallbackURLEscapesStage(t *testing.T) {
	c, err := NewClient("https://hs.example/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	got := c.FallbackURL("../x?y", "a b")
	if got != "https://hs.example/prefix/_matrix/client/v3/auth/..%2Fx%3Fy/fallback/web?session=a+b" {
		t.Fatalf("FallbackURL = %q", got)
	}
}

func TestGetLoginTokenErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		header []string
		check  func(error) bool
	}{
		{"unsupported 404", 404, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`, nil, IsUnsupported},
		{"unsupported 405", 405, `{"errcode":"M_UNRECOGNIZED"}`, nil, IsUnsupported},
		{"not allowed 400", 400, `{"errcode":"M_UNKNOWN","error":"not allowed"}`, nil, func(e error) bool { return !IsUnsupported(e) && !IsTransient(e) }},
		{"token 401", 401, `{"errcode":"M_UNKNOWN_TOKEN","soft_logout":true}`, nil, func(e error) bool { _, uia := AsUIA(e); return IsUnknownToken(e) && !uia }},
		{"rate limit after UIA", 429, `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":59000}`, []string{"Retry-After", "60"}, func(e error) bool {
			d, _ := RetryAfter(e)
			return IsLimitExceeded(e) && d == time.Minute
		}},
		{"locked", 401, `{"errcode":"M_USER_LOCKED","error":"locked","soft_logout":true}`, nil, IsUserLocked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWire(t)
			w.reply("POST", "/_matrix/client/v1/login/get_token", c.status, c.body, c.header...)
			_, err := w.client(t).GetLoginToken(testCtx(t), "at", "", GetLoginTokenRequest{Auth: SessionAuth("s")})
			if err == nil || !c.check(err) {
				t.Fatalf("err = %#v", err)
			}
		})
	}
}

func TestGetLoginTokenPathsAndReplies(t *testing.T) {
	w := newWire(t)
	c := w.client(t)
	if _, err := c.GetLoginToken(testCtx(t), "at", "/_matrix/client/v3/evil", GetLoginTokenRequest{}); err == nil {
		t.Fatal("unknown path accepted")
	}
	if _, err := c.GetLoginToken(testCtx(t), "", "", GetLoginTokenRequest{}); !IsMissingToken(err) {
		t.Fatalf("no token: %v", err)
	}
	if len(w.requests()) != 0 {
		t.Fatal("request sent")
	}
	// MSC3882 rev 0 with only the legacy seconds field.
	w.reply("POST", GetLoginTokenUnstableRev0Path, 200, `{"login_token":"t0","expires_in":300}`)
	r, err := c.GetLoginToken(testCtx(t), "at", GetLoginTokenUnstableRev0Path, GetLoginTokenRequest{})
	if err != nil || r.ExpiresInMS != 300000 {
		t.Fatalf("rev0 reply: %+v %v", r, err)
	}
	for _, body := range []string{`{"login_token":"t"}`, `{"expires_in_ms":5}`, `{"login_token":"t","expires_in_ms":"5"}`} {
		w.reply("POST", GetLoginTokenEndpoint.Path, 200, body)
		if _, err := c.GetLoginToken(testCtx(t), "at", "", GetLoginTokenRequest{}); !errors.Is(err, ErrMalformedResponse) {
			t.Errorf("reply %s: err = %v", body, err)
		}
	}
	var g GetLoginTokenResponse
	if err := json.Unmarshal([]byte(`[`), &g); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestGetLoginTokenPathStableInErrors(t *testing.T) {
	w := newWire(t)
	w.on("POST", GetLoginTokenUnstablePath, func(rw http.ResponseWriter, _ *http.Request) {
		rw.WriteHeader(500)
	})
	_, err := w.client(t).GetLoginToken(testCtx(t), "at", GetLoginTokenUnstablePath, GetLoginTokenRequest{})
	var e *Error
	if !errors.As(err, &e) || e.Endpoint != "POST "+GetLoginTokenUnstablePath {
		t.Fatalf("endpoint label: %#v", err)
	}
}
