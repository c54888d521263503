package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestSecretsNeverInErrorsOrLogs drives every call through a hostile server that
// echoes the request's credentials back in every place a reply can carry text,
// then searches all error strings and log output for them.
func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	secrets := []string{
		"syt_ACCESS_0123456789abcdef",
		"syr_REFRESH_0123456789abcdef",
		"correct-horse-battery-staple",
		"LOGIN_TOKEN_0123456789abcdef",
	}
	modes := []string{"json", "uia", "html", "text", "badjson", "header"}
	var mu sync.Mutex
	mode := ""
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		echo := r.Header.Get("Authorization") + " " + string(body)
		q, _ := json.Marshal(echo)
		mu.Lock()
		m := mode
		mu.Unlock()
		switch m {
		case "json":
			rw.WriteHeader(403)
			fmt.Fprintf(rw, `{"errcode":"M_FORBIDDEN","error":%s,"soft_logout":true}`, q)
		case "uia":
			rw.WriteHeader(401)
			fmt.Fprintf(rw, `{"flows":[{"stages":["m.login.password"]}],"session":"s","errcode":"M_FORBIDDEN","error":%s}`, q)
		case "html":
			rw.WriteHeader(502)
			fmt.Fprintf(rw, "<html><title>%s</title></html>", echo)
		case "text":
			rw.WriteHeader(503)
			io.WriteString(rw, strings.ReplaceAll(echo, "\n", " "))
		case "badjson":
			rw.WriteHeader(200)
			fmt.Fprintf(rw, `{"user_id":"@a:b","access_token":%s,`, q)
		case "header":
			rw.Header().Set("Retry-After", echo)
			rw.WriteHeader(429)
			fmt.Fprintf(rw, `{"errcode":"M_LIMIT_EXCEEDED","error":"%s"}`, strings.ToUpper(echo[:min(len(echo), 3)]))
		}
	}))
	defer srv.Close()

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prev := slog.Default()
	slog.SetDefault(logger)
	defer slog.SetDefault(prev)
	c, err := NewClient(srv.URL, WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	access, refresh, password, loginTok := Secret(secrets[0]), Secret(secrets[1]), Secret(secrets[2]), Secret(secrets[3])

	var errs []error
	calls := []func() error{
		func() error { _, err := c.Login(ctx, PasswordLogin("@a:b", password)); return err },
		func() error { _, err := c.Login(ctx, TokenLogin(loginTok)); return err },
		func() error { _, err := c.Refresh(ctx, refresh); return err },
		func() error {
			_, err := c.GetLoginToken(ctx, access, "", GetLoginTokenRequest{Auth: PasswordAuth("s", "@a:b", password)})
			return err
		},
		func() error { _, err := c.WhoAmI(ctx, access); return err },
		func() error { return c.Logout(ctx, access) },
		func() error { return c.LogoutAll(ctx, access) },
		func() error { _, err := c.Capabilities(ctx, access); return err },
		func() error { _, err := c.Devices(ctx, access); return err },
		func() error { return c.DeleteDevice(ctx, access, "D", PasswordAuth("s", "@a:b", password)) },
		func() error { return c.DeleteDevices(ctx, access, []string{"D"}, PasswordAuth("s", "@a:b", password)) },
	}
	for _, m := range modes {
		mu.Lock()
		mode = m
		mu.Unlock()
		for i, f := range calls {
			err := f()
			if err == nil && m != "badjson" {
				t.Errorf("mode %s call %d: no error", m, i)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) < len(calls)*(len(modes)-1) {
		t.Fatalf("only %d errors collected", len(errs))
	}

	var text strings.Builder
	for _, err := range errs {
		fmt.Fprintf(&text, "%v\n%+v\n%#v\n%s\n%q\n", err, err, err, err.Error(), err)
		if c, ok := AsUIA(err); ok {
			fmt.Fprintf(&text, "%#v %s\n", *c, c.Message)
		}
		if e, ok := asError(err); ok {
			fmt.Fprintf(&text, "%#v\n", *e)
		}
	}
	text.WriteString(logs.String())
	out := text.String()
	if !strings.Contains(logs.String(), "matrix request") {
		t.Fatal("no request logs captured; the test would prove nothing")
	}
	if !strings.Contains(out, "[redacted]") {
		t.Error("echoed secrets were not replaced: the server echo did not reach the errors")
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			i := strings.Index(out, s)
			t.Errorf("secret %q leaked near: %q", s[:6], out[max(0, i-80):min(len(out), i+40)])
		}
	}

	// Successful replies hold tokens too; printing them must not show them.
	mu.Lock()
	mode = ""
	mu.Unlock()
	ms := int64(1)
	lr := &LoginResponse{UserID: "@a:b", AccessToken: access, RefreshToken: refresh, ExpiresInMS: &ms}
	rr := &RefreshResponse{AccessToken: access, RefreshToken: refresh}
	gr := &GetLoginTokenResponse{LoginToken: loginTok}
	req := PasswordLogin("@a:b", password)
	for _, v := range []any{lr, *lr, rr, gr, req, lr.Tokens(), PasswordAuth("s", "u", password), GetLoginTokenRequest{Auth: PasswordAuth("s", "u", password)}} {
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			s := fmt.Sprintf(verb, v)
			for _, sec := range secrets {
				if strings.Contains(s, sec) {
					t.Errorf("%s of %T leaks a secret: %s", verb, v, s)
				}
			}
		}
	}
}
