package matrix

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OAuth 2.0 error codes this package decides on (RFC 6749 section 5.2, RFC 8628 section 3.5).
const (
	OAuthAuthorizationPending = "authorization_pending"
	OAuthSlowDown             = "slow_down"
	OAuthAccessDenied         = "access_denied"
	OAuthExpiredToken         = "expired_token"
	OAuthInvalidGrant         = "invalid_grant"
	OAuthInvalidClient        = "invalid_client"
)

// OAuthError is a non-2xx reply of an authorization server endpoint, or the
// error an authorization redirect brought back (Status 0).
type OAuthError struct {
	Status      int
	Code        string        // "invalid_grant"...; "" if the body had none
	Description string        // error_description, sanitised and scrubbed of secrets
	RetryAfter  time.Duration // Retry-After header; 0 if none
	Endpoint    string        // e.g. "POST token_endpoint"
}

func (e *OAuthError) Error() string {
	var b strings.Builder
	if e.Endpoint != "" {
		b.WriteString(e.Endpoint)
		b.WriteString(": ")
	}
	// Status is 0 for an error the browser brought back (the authorization
	// redirect), which no HTTP status of ours describes.
	var parts []string
	if e.Status != 0 {
		parts = append(parts, strconv.Itoa(e.Status))
	}
	if e.Code != "" {
		parts = append(parts, e.Code)
	}
	b.WriteString(strings.Join(parts, " "))
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// AsOAuthError returns the OAuth error inside err, if any.
func AsOAuthError(err error) (*OAuthError, bool) {
	var e *OAuthError
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

func hasOAuthCode(err error, code string) bool {
	e, ok := AsOAuthError(err)
	return ok && e.Code == code
}

// IsAuthorizationPending reports that the user has not yet approved a device grant: poll again.
func IsAuthorizationPending(err error) bool { return hasOAuthCode(err, OAuthAuthorizationPending) }

// IsSlowDown reports that the device grant is polled too often: add 5 s to the interval.
func IsSlowDown(err error) bool { return hasOAuthCode(err, OAuthSlowDown) }

// IsAccessDenied reports that the user refused the authorisation.
func IsAccessDenied(err error) bool { return hasOAuthCode(err, OAuthAccessDenied) }

// IsExpiredToken reports that a device code expired before approval, as the
// server said (expired_token) or as the local clock saw (ErrDeviceCodeExpired).
func IsExpiredToken(err error) bool {
	return hasOAuthCode(err, OAuthExpiredToken) || errors.Is(err, ErrDeviceCodeExpired)
}

// IsInvalidGrant reports a code or refresh token the server no longer accepts: the session is over.
func IsInvalidGrant(err error) bool { return hasOAuthCode(err, OAuthInvalidGrant) }

// parseOAuthError turns a non-2xx reply of an authorization server into an
// *OAuthError. Server text is sanitised and scrubbed of the call's secrets.
func parseOAuthError(status int, header http.Header, body []byte, endpoint string, now time.Time, secrets []Secret) error {
	e := &OAuthError{Status: status, Endpoint: endpoint}
	var fields struct {
		Error       json.RawMessage `json:"error"`
		Description json.RawMessage `json:"error_description"`
	}
	var code, desc string
	if json.Unmarshal(bytes.TrimSpace(body), &fields) == nil && json.Unmarshal(fields.Error, &code) == nil {
		e.Code = truncateRunes(cleanServerText(code, secrets), 64)
		if json.Unmarshal(fields.Description, &desc) == nil {
			e.Description = cleanServerText(desc, secrets)
		}
	} else {
		e.Description = strings.TrimSuffix(nonJSONMessage(status, body, secrets), " (not a Matrix response)") + " (not an OAuth 2.0 response)"
	}
	if d, ok := parseRetryAfterHeader(header.Get("Retry-After"), now); ok {
		e.RetryAfter = d
	}
	return e
}
