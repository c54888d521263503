package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// maxShownRunes bounds an identifier, URL or argument echoed back to the
// terminal: the longest a Matrix user ID may be (255), so real ones are never
// cut while a hostile or mistaken 100 kB value is.
const maxShownRunes = 255

// shown makes a user- or file-provided value safe to echo: escape sequences
// and control characters removed, bounded to maxShownRunes.
func shown(s string) string { return matrix.SanitizeLimit(s, maxShownRunes) }

// maxLineRunes bounds one line of text mxauth writes (a message, a doctor
// finding): room for a few shown values and the advice around them.
const maxLineRunes = 1000

// shownLine makes a whole message safe for the terminal: one line, no escape
// sequences or control characters, bounded to maxLineRunes.
func shownLine(s string) string { return matrix.SanitizeLimit(oneLine(s), maxLineRunes) }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// accountJSON is the --json shape of an account (list, login, refresh).
type accountJSON struct {
	UserID          string     `json:"user_id"`
	DeviceID        string     `json:"device_id"`
	Homeserver      string     `json:"homeserver"`
	Default         bool       `json:"default"`
	State           string     `json:"state"`
	ExpiresAt       *time.Time `json:"expires_at"` // null: see Expiry
	Expiry          string     `json:"expiry"`     // what expires_at means: known, never, unknown, none
	ExpiresInS      *int64     `json:"expires_in_s,omitempty"`
	HasRefreshToken bool       `json:"has_refresh_token"`
	Problem         string     `json:"problem,omitempty"`
	Kind            string     `json:"kind"`  // how the server signed it in: legacy, oauth, oauth-compat, unknown
	OAuth           bool       `json:"oauth"` // signed in through the OAuth 2.0 API
}

func accountJSONFrom(v app.Account, now time.Time) accountJSON {
	st := v.Status
	out := accountJSON{
		UserID:          shown(v.UserID),
		DeviceID:        shown(v.DeviceID),
		Homeserver:      shown(v.Homeserver),
		Default:         v.IsDefault,
		State:           stateName(st),
		HasRefreshToken: st.HasRefreshToken,
		Problem:         matrix.Sanitize(st.Problem),
		Expiry:          expiryKind(st),
		Kind:            cmp.Or(v.Kind.Name(), "unknown"),
		OAuth:           v.OAuth,
	}
	if !st.ExpiresAt.IsZero() {
		t := st.ExpiresAt.UTC().Truncate(time.Second)
		secs := int64(st.ExpiresAt.Sub(now).Seconds())
		out.ExpiresAt, out.ExpiresInS = &t, &secs
	}
	return out
}

// stateName is the machine-friendly state ("active", "sign-in-needed", ...).
func stateName(st session.Status) string {
	switch st.State {
	case session.StateActive, session.StateRefreshing, session.StateRetrying, session.StateExpiring:
		return st.State.String()
	case session.StateNeedsSignIn:
		return "sign-in-needed"
	case session.StateSignedOut:
		return "signed-out"
	case session.StateStoreProblem:
		return "keyring-problem"
	case session.StateNonExpiring:
		return "non-expiring"
	}
	return st.State.String()
}

// expiryKind says what is known about the access token's expiry: "known"
// (expires_at holds it), "never" (the token does not expire), "unknown" (the
// keyring could not be read) or "none" (there is no session: sign in again).
func expiryKind(st session.Status) string {
	switch {
	case st.TokensUnknown:
		return "unknown"
	case !st.ExpiresAt.IsZero():
		return "known"
	case st.State == session.StateNeedsSignIn || st.State == session.StateSignedOut:
		return "none"
	}
	return "never"
}

// expiryText is the human expiry column: "in 4m12s (15:04:05)".
func expiryText(st session.Status, now time.Time) string {
	if st.TokensUnknown {
		return "unknown"
	}
	if st.ExpiresAt.IsZero() {
		switch st.State {
		case session.StateNeedsSignIn, session.StateSignedOut, session.StateStoreProblem:
			return "-"
		}
		return "never"
	}
	left := st.ExpiresAt.Sub(now)
	if left <= 0 {
		return "expired"
	}
	return fmt.Sprintf("in %s (%s)", app.FormatDuration(left), st.ExpiresAt.Local().Format("15:04:05"))
}

// kindLine says how a homeserver signs users in, for login and doctor.
func kindLine(baseURL string, kind matrix.ServerAuthKind, issuer string) string {
	var how string
	switch kind {
	case matrix.AuthLegacy:
		how = "signs in with passwords (no OAuth 2.0 API)"
	case matrix.AuthOAuthOnly:
		how = "signs in through OAuth 2.0 only"
	case matrix.AuthOAuthPasswordCompat:
		how = "signs in through OAuth 2.0, and takes passwords through a compatibility layer"
	default:
		return shown(baseURL) + ": how it signs users in is not known"
	}
	line := shown(baseURL) + " " + how
	if issuer != "" {
		line += " (authorization server " + shown(issuer) + ")"
	}
	return line
}
