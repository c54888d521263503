package matrix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

var errNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParseErrorRetryAfter(t *testing.T) {
	cases := []struct {
		name   string
		header http.Header
		body   string
		want   time.Duration
	}{
		{"header seconds wins over ms", hdr("Retry-After", "3"), `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":2500}`, 3 * time.Second},
		{"ms only", nil, `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":2500}`, 2500 * time.Millisecond},
		{"http-date", hdr("Retry-After", errNow.Add(90*time.Second).Format(http.TimeFormat)), `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":1}`, 90 * time.Second},
		{"past http-date is zero", hdr("Retry-After", errNow.Add(-time.Hour).Format(http.TimeFormat)), `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":5000}`, 0},
		{"garbage header falls back", hdr("Retry-After", "soon"), `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":700}`, 700 * time.Millisecond},
		{"negative header falls back", hdr("Retry-After", "-4"), `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":700}`, 700 * time.Millisecond},
		{"negative ms ignored", nil, `{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":-5}`, 0},
		{"huge clamped", hdr("Retry-After", "99999999999"), `{}`, maxRetryAfter},
		{"huge ms clamped", nil, `{"retry_after_ms":1e300}`, maxRetryAfter},
		{"none", nil, `{"errcode":"M_LIMIT_EXCEEDED"}`, 0},
		{"non-json with header", hdr("Retry-After", "7"), `Too Many Requests`, 7 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.header
			if h == nil {
				h = http.Header{}
			}
			err := ParseError(429, h, []byte(c.body), "POST /x", errNow)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T", err)
			}
			if e.RetryAfter != c.want {
				t.Fatalf("RetryAfter = %v, want %v", e.RetryAfter, c.want)
			}
			d, ok := RetryAfter(err)
			if ok != (c.want > 0) || d != c.want {
				t.Fatalf("RetryAfter() = %v, %v", d, ok)
			}
			if !IsLimitExceeded(err) || !IsTransient(err) {
				t.Fatal("429 not rate limited / transient")
			}
		})
	}
}

func TestParseError401UIAvsToken(t *testing.T) {
	uia := ParseError(401, http.Header{}, []byte(`{"flows":[{"stages":["m.login.password"]}],"session":"S1","params":{}}`), "POST /_matrix/client/v1/login/get_token", errNow)
	c, ok := AsUIA(uia)
	if !ok || c.Session != "S1" || !c.CanUsePassword() || c.StageFailed() {
		t.Fatalf("UIA challenge not parsed: %#v", uia)
	}
	if IsUnknownToken(uia) || IsMissingToken(uia) || IsForbidden(uia) || IsTransient(uia) || IsSoftLogout(uia) {
		t.Fatal("UIA challenge classified as a token/forbidden/transient error")
	}
	// Wrong password: still UIA, with errcode.
	failed := ParseError(401, http.Header{}, []byte(`{"flows":[{"stages":["m.login.password"]}],"session":"S1","errcode":"M_FORBIDDEN","error":"Invalid username or password"}`), "", errNow)
	c, ok = AsUIA(failed)
	if !ok || !c.StageFailed() || c.Session != "S1" || IsForbidden(failed) {
		t.Fatalf("failed stage: %#v", failed)
	}
	if !strings.Contains(c.Error(), "Invalid username or password") {
		t.Errorf("Error() = %q", c.Error())
	}
	tok := ParseError(401, http.Header{}, []byte(`{"errcode":"M_UNKNOWN_TOKEN","error":"Access token has expired","soft_logout":true}`), "GET /x", errNow)
	if _, ok := AsUIA(tok); ok {
		t.Fatal("token error parsed as UIA")
	}
	if !IsUnknownToken(tok) || !IsSoftLogout(tok) || IsTransient(tok) {
		t.Fatalf("token error: %#v", tok)
	}
	// flows of the wrong shape is not a challenge.
	odd := ParseError(401, http.Header{}, []byte(`{"flows":"nope","errcode":"M_UNKNOWN_TOKEN"}`), "", errNow)
	if _, ok := AsUIA(odd); ok || !IsUnknownToken(odd) {
		t.Fatalf("malformed flows: %#v", odd)
	}
	// flows on a non-401 is an ordinary error.
	if _, ok := AsUIA(ParseError(403, http.Header{}, []byte(`{"flows":[]}`), "", errNow)); ok {
		t.Fatal("403 with flows parsed as UIA")
	}
}

func TestParseErrorNonJSON(t *testing.T) {
	html := "<!DOCTYPE html><html><head><title>502 Bad Gateway\x1b[31m</title></head><body><h1>nginx</h1>" + strings.Repeat("x", 10000) + "</body></html>"
	err := ParseError(502, http.Header{}, []byte(html), "POST /_matrix/client/v3/refresh", errNow)
	var e *Error
	if !errors.As(err, &e) || e.Status != 502 || e.ErrCode != "" {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(e.Message, "502 Bad Gateway") || strings.ContainsRune(e.Message, 0x1b) || len(e.Message) > 200 {
		t.Fatalf("Message = %q", e.Message)
	}
	if !IsTransient(err) {
		t.Fatal("502 not transient")
	}
	err = ParseError(503, http.Header{}, []byte("upstream connect error\nsecond line"), "", errNow)
	if !errors.As(err, &e) || !strings.HasPrefix(e.Message, "upstream connect error") || strings.Contains(e.Message, "second") {
		t.Fatalf("plain text: %q", e.Message)
	}
	err = ParseError(500, http.Header{}, nil, "", errNow)
	if !errors.As(err, &e) || !strings.Contains(e.Message, "Internal Server Error") {
		t.Fatalf("empty body: %q", e.Message)
	}
	err = ParseError(599, http.Header{}, []byte("<html></html>"), "", errNow)
	if !errors.As(err, &e) || !strings.Contains(e.Message, "HTTP 599") {
		t.Fatalf("unknown status: %q", e.Message)
	}
}

func TestParseErrorSanitises(t *testing.T) {
	body := `{"errcode":"M_FORBIDDEN\u001b[2J","error":"bad \u001b]0;pwned\u0007\u202eevil\u0000 text` + strings.Repeat("!", 2000) + `"}`
	err := ParseError(403, http.Header{}, []byte(body), "", errNow)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	if e.ErrCode != "M_FORBIDDEN" {
		t.Errorf("ErrCode = %q", e.ErrCode)
	}
	if strings.ContainsAny(e.Message, "\x1b\x00\u202e\a") || strings.Contains(e.Message, "pwned") {
		t.Errorf("Message not sanitised: %q", e.Message)
	}
	if n := len([]rune(e.Message)); n > MaxMessageRunes {
		t.Errorf("Message has %d runes", n)
	}
}

func TestErrorPredicates(t *testing.T) {
	mk := func(status int, code string) error { return &Error{Status: status, ErrCode: code} }
	wrapped := fmt.Errorf("outer: %w", mk(401, "M_USER_LOCKED"))
	checks := []struct {
		name string
		fn   func(error) bool
		yes  []error
		no   []error
	}{
		{"IsUnknownToken", IsUnknownToken, []error{mk(401, "M_UNKNOWN_TOKEN")}, []error{mk(401, "M_MISSING_TOKEN"), mk(403, "M_FORBIDDEN"), nil}},
		{"IsMissingToken", IsMissingToken, []error{mk(401, "M_MISSING_TOKEN"), ErrNoAccessToken}, []error{mk(401, "M_UNKNOWN_TOKEN")}},
		{"IsForbidden", IsForbidden, []error{mk(403, "M_FORBIDDEN")}, []error{mk(403, "M_USER_DEACTIVATED")}},
		{"IsLimitExceeded", IsLimitExceeded, []error{mk(429, ""), mk(400, "M_LIMIT_EXCEEDED")}, []error{mk(500, "")}},
		{"IsUserLocked", IsUserLocked, []error{mk(401, "M_USER_LOCKED"), wrapped}, []error{mk(401, "M_UNKNOWN_TOKEN")}},
		{"IsUserDeactivated", IsUserDeactivated, []error{mk(403, "M_USER_DEACTIVATED")}, []error{mk(403, "M_FORBIDDEN")}},
		{"IsUnsupported", IsUnsupported, []error{mk(404, ""), mk(405, "M_UNRECOGNIZED"), mk(400, "M_UNRECOGNIZED")}, []error{mk(400, "M_INVALID_PARAM"), mk(403, "")}},
		{"IsSoftLogout", IsSoftLogout, []error{&Error{Status: 401, SoftLogout: true}}, []error{mk(401, "M_UNKNOWN_TOKEN")}},
		{"IsTransient", IsTransient, []error{mk(500, ""), mk(503, ""), mk(429, ""), &TransportError{Err: errors.New("reset")}, context.DeadlineExceeded}, []error{mk(400, ""), mk(401, "M_UNKNOWN_TOKEN"), context.Canceled, nil, &TransportError{Err: context.Canceled}}},
	}
	for _, c := range checks {
		for _, e := range c.yes {
			if !c.fn(e) {
				t.Errorf("%s(%v) = false", c.name, e)
			}
		}
		for _, e := range c.no {
			if c.fn(e) {
				t.Errorf("%s(%v) = true", c.name, e)
			}
		}
	}
	if _, ok := RetryAfter(errors.New("plain")); ok {
		t.Error("RetryAfter on a plain error")
	}
}

func TestErrorStrings(t *testing.T) {
	e := &Error{Status: 429, ErrCode: "M_LIMIT_EXCEEDED", Message: "Too many", RetryAfter: 2 * time.Second, Endpoint: "POST /_matrix/client/v3/login", SoftLogout: true}
	s := e.Error()
	for _, want := range []string{"POST /_matrix/client/v3/login", "429", "M_LIMIT_EXCEEDED", "Too many", "2s", "soft logout"} {
		if !strings.Contains(s, want) {
			t.Errorf("Error() = %q lacks %q", s, want)
		}
	}
	if got := (&Error{Status: 500}).Error(); got != "500" {
		t.Errorf("bare Error() = %q", got)
	}
	te := &TransportError{Endpoint: "GET /x", Err: errors.New("boom")}
	if te.Error() != "GET /x: boom" || (&TransportError{}).Error() != "unknown error" || (&TransportError{Err: errors.New("b")}).Error() != "b" {
		t.Errorf("TransportError strings: %q", te.Error())
	}
	c := &UIAChallenge{Flows: []UIAFlow{{Stages: []string{"m.login.sso"}}, {Stages: []string{"m.login.password"}}}, endpoint: "POST /p"}
	if got := c.Error(); !strings.Contains(got, "m.login.sso or m.login.password") || !strings.HasPrefix(got, "POST /p: ") {
		t.Errorf("UIA Error() = %q", got)
	}
	if got := (&UIAChallenge{}).Error(); got != "additional authentication required" {
		t.Errorf("empty UIA Error() = %q", got)
	}
	if got := (&UIAChallenge{ErrCode: "M_FORBIDDEN"}).Error(); !strings.Contains(got, "authentication failed") {
		t.Errorf("failed UIA Error() = %q", got)
	}
}

func TestUIANextStages(t *testing.T) {
	c := &UIAChallenge{
		Flows: []UIAFlow{
			{Stages: []string{"m.login.recaptcha", "m.login.password"}},
			{Stages: []string{"m.login.recaptcha", "m.login.email.identity"}},
			{Stages: []string{"m.login.sso"}},
			{Stages: []string{"m.login.sso"}},
		},
		Completed: []string{"m.login.recaptcha"},
	}
	got := strings.Join(c.NextStages(), ",")
	if got != "m.login.password,m.login.email.identity,m.login.sso" {
		t.Fatalf("NextStages = %s", got)
	}
	if !c.CanUsePassword() {
		t.Fatal("CanUsePassword false")
	}
	sso := &UIAChallenge{Flows: []UIAFlow{{Stages: []string{"m.login.sso"}}}}
	if sso.CanUsePassword() {
		t.Fatal("sso-only flow claims password")
	}
	done := &UIAChallenge{Flows: []UIAFlow{{Stages: []string{"m.login.sso"}}}, Completed: []string{"m.login.sso"}}
	if len(done.NextStages()) != 0 {
		t.Fatal("completed flow has next stages")
	}
}
