package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error codes this package decides on.
const (
	ErrCodeForbidden       = "M_FORBIDDEN"
	ErrCodeUnknownToken    = "M_UNKNOWN_TOKEN"
	ErrCodeMissingToken    = "M_MISSING_TOKEN"
	ErrCodeLimitExceeded   = "M_LIMIT_EXCEEDED"
	ErrCodeUserLocked      = "M_USER_LOCKED"
	ErrCodeUserDeactivated = "M_USER_DEACTIVATED"
	ErrCodeUnrecognized    = "M_UNRECOGNIZED"
)

// maxRetryAfter bounds a server-requested wait so a bogus value cannot park a session for years.
const maxRetryAfter = 24 * time.Hour

// Error is any non-2xx Matrix error response that is not a UIA challenge.
type Error struct {
	Status     int
	ErrCode    string        // "M_FORBIDDEN"...; "" if body had none
	Message    string        // server "error" text, sanitised and truncated
	SoftLogout bool          // soft_logout: the server kept the session, re-login keeps the device
	RetryAfter time.Duration // Retry-After header (seconds or HTTP-date) first, then retry_after_ms; 0 if none
	Endpoint   string        // e.g. "POST /_matrix/client/v3/refresh" (never a token or query)
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Endpoint != "" {
		b.WriteString(e.Endpoint)
		b.WriteString(": ")
	}
	b.WriteString(strconv.Itoa(e.Status))
	if e.ErrCode != "" {
		b.WriteString(" ")
		b.WriteString(e.ErrCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.SoftLogout {
		b.WriteString(" (soft logout)")
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter.Round(time.Millisecond))
	}
	return b.String()
}

// UIAChallenge is a 401 carrying "flows": the server wants user-interactive
// authentication. It is never a token failure.
type UIAChallenge struct {
	Flows     []UIAFlow                  `json:"flows"`
	Params    map[string]json.RawMessage `json:"params,omitempty"`
	Session   string                     `json:"session,omitempty"`
	Completed []string                   `json:"completed,omitempty"`
	ErrCode   string                     `json:"errcode,omitempty"` // set when a stage just failed (wrong password: M_FORBIDDEN)
	Message   string                     `json:"error,omitempty"`

	endpoint string
}

// UIAFlow is one alternative sequence of stages.
type UIAFlow struct {
	Stages []string `json:"stages"`
}

func (c *UIAChallenge) Error() string {
	prefix := ""
	if c.endpoint != "" {
		prefix = c.endpoint + ": "
	}
	if c.StageFailed() {
		msg := c.Message
		if msg == "" {
			msg = "authentication failed"
		}
		return fmt.Sprintf("%s%s (%s), try again", prefix, msg, c.ErrCode)
	}
	next := c.NextStages()
	for i, s := range next {
		next[i] = Sanitize(s)
	}
	if len(next) == 0 {
		return prefix + "additional authentication required"
	}
	return prefix + "additional authentication required (" + strings.Join(next, " or ") + ")"
}

// NextStages returns the first not-yet-completed stage of each flow, without duplicates.
func (c *UIAChallenge) NextStages() []string {
	done := make(map[string]bool, len(c.Completed))
	for _, s := range c.Completed {
		done[s] = true
	}
	seen := map[string]bool{}
	var next []string
	for _, f := range c.Flows {
		for _, s := range f.Stages {
			if done[s] {
				continue
			}
			if !seen[s] {
				seen[s] = true
				next = append(next, s)
			}
			break
		}
	}
	return next
}

// CanUsePassword reports whether some flow's next stage is m.login.password.
func (c *UIAChallenge) CanUsePassword() bool {
	for _, s := range c.NextStages() {
		if s == StagePassword {
			return true
		}
	}
	return false
}

// StageFailed reports whether the last attempted stage failed (e.g. a wrong password).
func (c *UIAChallenge) StageFailed() bool { return c.ErrCode != "" }

// TransportError is a failure below the Matrix layer: dial, reset, timeout, a body
// too large, or a 2xx whose JSON is invalid or truncated.
type TransportError struct {
	Endpoint string
	Err      error
}

func (e *TransportError) Error() string {
	cause := "unknown error"
	switch {
	case errors.Is(e.Err, context.DeadlineExceeded):
		// Go's wording ("context deadline exceeded") means nothing to a user.
		cause = "the homeserver did not answer in time"
		if strings.HasSuffix(e.Endpoint, "_endpoint") {
			// The OAuth 2.0 calls name their endpoint by its metadata field.
			cause = "the authorization server did not answer in time"
		}
	case e.Err != nil:
		cause = e.Err.Error()
	}
	if e.Endpoint == "" {
		return cause
	}
	return e.Endpoint + ": " + cause
}

func (e *TransportError) Unwrap() error { return e.Err }

func asError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

func hasCode(err error, code string) bool {
	e, ok := asError(err)
	return ok && e.ErrCode == code
}

// IsUnknownToken reports a 401 M_UNKNOWN_TOKEN (never a UIA challenge).
func IsUnknownToken(err error) bool { return hasCode(err, ErrCodeUnknownToken) }

// IsMissingToken reports M_MISSING_TOKEN, or a call made without any token.
func IsMissingToken(err error) bool {
	return hasCode(err, ErrCodeMissingToken) || errors.Is(err, ErrNoAccessToken)
}

// IsForbidden reports M_FORBIDDEN outside UIA (wrong credentials, superseded refresh token...).
func IsForbidden(err error) bool { return hasCode(err, ErrCodeForbidden) }

// IsLimitExceeded reports a 429 or M_LIMIT_EXCEEDED.
func IsLimitExceeded(err error) bool {
	e, ok := asError(err)
	return ok && (e.Status == http.StatusTooManyRequests || e.ErrCode == ErrCodeLimitExceeded)
}

// IsUserLocked reports M_USER_LOCKED: re-login will not help.
func IsUserLocked(err error) bool { return hasCode(err, ErrCodeUserLocked) }

// IsUserDeactivated reports M_USER_DEACTIVATED.
func IsUserDeactivated(err error) bool { return hasCode(err, ErrCodeUserDeactivated) }

// IsUnsupported reports that the server lacks the endpoint: 404, 405 or M_UNRECOGNIZED.
func IsUnsupported(err error) bool {
	e, ok := asError(err)
	return ok && (e.Status == http.StatusNotFound || e.Status == http.StatusMethodNotAllowed || e.ErrCode == ErrCodeUnrecognized)
}

// IsSoftLogout reports an error carrying soft_logout: true.
func IsSoftLogout(err error) bool {
	e, ok := asError(err)
	return ok && e.SoftLogout
}

// IsTransient reports failures worth retrying with the same credentials: transport
// errors, deadlines, 5xx and 429. A cancelled context is the caller's choice, not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, ErrInsecureURL) {
		return false
	}
	if _, ok := AsUIA(err); ok {
		return false
	}
	if e, ok := asError(err); ok {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.ErrCode == ErrCodeLimitExceeded
	}
	if e, ok := AsOAuthError(err); ok {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	var te *TransportError
	return errors.As(err, &te) || errors.Is(err, context.DeadlineExceeded)
}

// RetryAfter returns the server-requested wait, if it gave one.
func RetryAfter(err error) (time.Duration, bool) {
	if oe, ok := AsOAuthError(err); ok && oe.RetryAfter > 0 {
		return oe.RetryAfter, true
	}
	e, ok := asError(err)
	if !ok || e.RetryAfter <= 0 {
		return 0, false
	}
	return e.RetryAfter, true
}

// AsUIA returns the UIA challenge inside err, if any.
func AsUIA(err error) (*UIAChallenge, bool) {
	var c *UIAChallenge
	if errors.As(err, &c) {
		return c, true
	}
	return nil, false
}

// ParseError turns a non-2xx response into an *Error or, for a 401 with flows, a
// *UIAChallenge. now anchors an HTTP-date Retry-After. It never fails: any body,
// JSON or not, yields an error value.
func ParseError(status int, header http.Header, body []byte, endpoint string, now time.Time) error {
	return parseError(status, header, body, endpoint, now, nil)
}

func parseError(status int, header http.Header, body []byte, endpoint string, now time.Time, secrets []Secret) error {
	var fields map[string]json.RawMessage
	isJSON := json.Unmarshal(bytes.TrimSpace(body), &fields) == nil && fields != nil
	if isJSON && status == http.StatusUnauthorized {
		if c := parseUIA(fields, secrets); c != nil {
			c.endpoint = endpoint
			return c
		}
	}
	e := &Error{Status: status, Endpoint: endpoint}
	if isJSON {
		var s string
		if json.Unmarshal(fields["errcode"], &s) == nil {
			e.ErrCode = truncateRunes(stripUnsafe(s), 64)
		}
		if json.Unmarshal(fields["error"], &s) == nil {
			e.Message = cleanServerText(s, secrets)
		}
		var b bool
		if json.Unmarshal(fields["soft_logout"], &b) == nil {
			e.SoftLogout = b
		}
		var ms float64
		if json.Unmarshal(fields["retry_after_ms"], &ms) == nil && ms > 0 {
			e.RetryAfter = clampDuration(ms * float64(time.Millisecond))
		}
	} else {
		e.Message = nonJSONMessage(status, body, secrets)
	}
	if d, ok := parseRetryAfterHeader(header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	}
	return e
}

func parseUIA(fields map[string]json.RawMessage, secrets []Secret) *UIAChallenge {
	raw, ok := fields["flows"]
	if !ok {
		return nil
	}
	c := &UIAChallenge{}
	if err := json.Unmarshal(raw, &c.Flows); err != nil || c.Flows == nil {
		return nil
	}
	var s string
	if json.Unmarshal(fields["session"], &s) == nil {
		c.Session = s
	}
	var completed []string
	if json.Unmarshal(fields["completed"], &completed) == nil {
		c.Completed = completed
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(fields["params"], &params) == nil && len(params) > 0 {
		c.Params = params
	}
	if json.Unmarshal(fields["errcode"], &s) == nil {
		c.ErrCode = truncateRunes(stripUnsafe(s), 64)
	}
	s = ""
	if json.Unmarshal(fields["error"], &s) == nil {
		c.Message = cleanServerText(s, secrets)
	}
	return c
}

// nonJSONMessage summarises a proxy's HTML or text error page in one short line.
func nonJSONMessage(status int, body []byte, secrets []Secret) string {
	text := string(body)
	if len(text) > 4096 {
		text = text[:4096]
	}
	if indexFold(text, "<html") >= 0 || indexFold(text, "<!doctype") >= 0 || indexFold(text, "<title") >= 0 {
		title := ""
		if i := indexFold(text, "<title>"); i >= 0 {
			title = text[i+len("<title>"):]
			if j := indexFold(title, "</title>"); j >= 0 {
				title = title[:j]
			}
		}
		text = title
	} else if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = text[:i]
	}
	msg := truncateRunes(cleanServerText(text, secrets), 120)
	if msg == "" {
		msg = http.StatusText(status)
		if msg == "" {
			msg = "HTTP " + strconv.Itoa(status)
		}
	}
	return msg + " (not a Matrix response)"
}

// indexFold finds an ASCII needle in s ignoring case, with byte offsets valid in s.
func indexFold(s, needle string) int {
	for i := 0; i+len(needle) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			return i
		}
	}
	return -1
}

// parseRetryAfterHeader reads delay-seconds or an HTTP-date.
func parseRetryAfterHeader(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return clampDuration(float64(n) * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return clampDuration(float64(d)), true
	}
	return 0, false
}

func clampDuration(ns float64) time.Duration {
	if math.IsNaN(ns) || ns <= 0 {
		return 0
	}
	if ns >= float64(maxRetryAfter) {
		return maxRetryAfter
	}
	return time.Duration(ns)
}
