package homeserver

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const maxBodyBytes = 1 << 20

// apiError is a Matrix error response.
type apiError struct {
	status  int
	errcode string
	msg     string
	extra   map[string]any
	header  http.Header
	raw     map[string]any // whole body instead of errcode/error (UIA challenges)
}

func errf(status int, errcode, msg string) *apiError {
	return &apiError{status: status, errcode: errcode, msg: msg}
}

func unknownToken(soft bool) *apiError {
	msg := "Unrecognised access token"
	if soft {
		msg = "Access token has expired"
	}
	return &apiError{status: http.StatusUnauthorized, errcode: "M_UNKNOWN_TOKEN", msg: msg,
		extra: map[string]any{"soft_logout": soft}}
}

func userLocked() *apiError {
	return &apiError{status: http.StatusUnauthorized, errcode: "M_USER_LOCKED", msg: "User account has been locked",
		extra: map[string]any{"soft_logout": true}}
}

// limitExceeded is a 429 carrying both the Retry-After header (whole seconds,
// rounded up, as Synapse does) and the older retry_after_ms field.
func limitExceeded(wait time.Duration) *apiError {
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	secs := int64(math.Ceil(wait.Seconds()))
	h := http.Header{}
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
	return &apiError{status: http.StatusTooManyRequests, errcode: "M_LIMIT_EXCEEDED", msg: "Too Many Requests",
		extra: map[string]any{"retry_after_ms": wait.Milliseconds()}, header: h}
}

func unrecognized(status int) *apiError {
	return errf(status, "M_UNRECOGNIZED", "Unrecognized request")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errcode":"M_UNKNOWN","error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.raw != nil {
		writeJSON(w, e.status, e.raw)
		return
	}
	body := map[string]any{"errcode": e.errcode, "error": e.msg}
	for k, v := range e.extra {
		body[k] = v
	}
	for k, v := range e.header {
		w.Header()[k] = v
	}
	writeJSON(w, e.status, body)
}

// readObject reads a JSON object body. An empty body is M_NOT_JSON, as in
// Synapse; valid JSON that is not an object is M_BAD_JSON. allowEmpty turns an
// empty body into {} (DELETE /devices/{id}, the logout endpoints).
func readObject(r *http.Request, allowEmpty bool) (map[string]json.RawMessage, *apiError) {
	data, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Request body too large")
		}
		return nil, errf(http.StatusBadRequest, "M_NOT_JSON", "Could not read the request body")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if allowEmpty {
			return map[string]json.RawMessage{}, nil
		}
		return nil, errf(http.StatusBadRequest, "M_NOT_JSON", "Content not JSON.")
	}
	if !json.Valid(data) {
		return nil, errf(http.StatusBadRequest, "M_NOT_JSON", "Content not JSON.")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, errf(http.StatusBadRequest, "M_BAD_JSON", "Content must be a JSON object.")
	}
	return m, nil
}

// present reports whether key is in m with a non-null value.
func present(m map[string]json.RawMessage, key string) bool {
	v, ok := m[key]
	return ok && string(v) != "null"
}

// getString returns a string field; absent/null gives ok=false, another type M_INVALID_PARAM.
func getString(m map[string]json.RawMessage, key string) (string, bool, *apiError) {
	if !present(m, key) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(m[key], &s); err != nil {
		return "", false, errf(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid parameter: "+key+" must be a string")
	}
	return s, true, nil
}

func getBool(m map[string]json.RawMessage, key string) (bool, *apiError) {
	if !present(m, key) {
		return false, nil
	}
	var b bool
	if err := json.Unmarshal(m[key], &b); err != nil {
		return false, errf(http.StatusBadRequest, "M_INVALID_PARAM", "Invalid parameter: "+key+" must be a boolean")
	}
	return b, nil
}

func getObject(m map[string]json.RawMessage, key string) (map[string]json.RawMessage, bool, *apiError) {
	if !present(m, key) {
		return nil, false, nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(m[key], &o); err != nil || o == nil {
		return nil, false, errf(http.StatusBadRequest, "M_BAD_JSON", key+" must be a JSON object")
	}
	return o, true, nil
}

// bearer extracts the access token; only the Authorization header counts
// (query-string tokens were removed from the spec).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return "", false
	}
	t := strings.TrimSpace(h[7:])
	return t, t != ""
}

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
const alnum = letters + "0123456789"

// randomString draws n characters uniformly from alphabet with crypto/rand.
func randomString(n int, alphabet string) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+16)
	limit := 256 - 256%len(alphabet) // rejection sampling avoids modulo bias
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("homeserver: crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// synapseToken builds a token shaped like Synapse's: prefix, base64 localpart,
// 20 random letters, and a base62 CRC of the rest.
func synapseToken(prefix, userID string) string {
	local := strings.TrimPrefix(userID, "@")
	if i := strings.IndexByte(local, ':'); i >= 0 {
		local = local[:i]
	}
	base := prefix + "_" + base64.RawURLEncoding.EncodeToString([]byte(local)) + "_" + randomString(20, letters)
	return base + "_" + base62(crc32.ChecksumIEEE([]byte(base)))
}

func base62(n uint32) string {
	out := make([]byte, 0, 6)
	for i := 0; i < 6; i++ {
		out = append(out, alnum[n%62])
		n /= 62
	}
	return string(out)
}

func newAccessToken(userID string) string  { return synapseToken("syt", userID) }
func newRefreshToken(userID string) string { return synapseToken("syr", userID) }
func newLoginToken() string                { return "syl_" + randomString(32, alnum) }
func newDeviceID() string                  { return randomString(10, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") }
func newSessionID() string                 { return randomString(24, letters) }
