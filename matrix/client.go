package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Version is the program version sent in the User-Agent; main may overwrite it.
var Version = "0.1.0"

// MaxResponseBytes caps every response body; auth replies are tiny, so more is a fault.
const MaxResponseBytes = 1 << 20

// DefaultTimeout bounds each call on top of the caller's context.
const DefaultTimeout = 30 * time.Second

var (
	// ErrResponseTooLarge is wrapped by a TransportError when a body exceeds MaxResponseBytes.
	ErrResponseTooLarge = errors.New("response larger than 1 MiB")
	// ErrMalformedResponse is wrapped by a TransportError when a 2xx body is not the expected JSON.
	ErrMalformedResponse = errors.New("malformed response")
	// ErrInsecureURL is returned for plain http:// to a non-loopback host without WithInsecureHTTP.
	ErrInsecureURL = errors.New("plain http:// is only allowed to loopback addresses")
	// ErrCrossHostRedirect is returned when a server redirects a request with
	// a body (a form or JSON, which may hold a secret) to another host.
	ErrCrossHostRedirect = errors.New("the server redirected the request to another host, where its body is not sent")
	// ErrNoAccessToken is returned before any network use when an authenticated call gets no token.
	ErrNoAccessToken = errors.New("no access token")
)

// Client calls one homeserver. It is safe for concurrent use and holds no tokens:
// every authenticated call takes the token it should use.
type Client struct {
	baseURL  string
	hc       *http.Client
	insecure bool
	timeout  time.Duration
	logger   *slog.Logger
	now      func() time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient uses hc for requests (its Timeout, if any, also applies).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithInsecureHTTP allows plain http:// to any host, for test setups only.
func WithInsecureHTTP(allow bool) Option { return func(c *Client) { c.insecure = allow } }

// WithTimeout sets the per-call timeout (default 30 s); 0 or less disables it.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithLogger sends request logs (Debug level, never secrets) to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.logger = l } }

// WithClock sets the clock used for ReceivedAt and HTTP-date Retry-After (tests).
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// NewClient returns a client for the homeserver at baseURL (see NormaliseBaseURL).
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	c := &Client{timeout: DefaultTimeout, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	base, err := NormaliseBaseURL(baseURL, c.insecure)
	if err != nil {
		return nil, err
	}
	c.baseURL = base
	c.hc = guardRedirects(c.hc, c.insecure)
	return c, nil
}

// BaseURL is the normalised homeserver URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.baseURL }

// WithBaseURL returns a copy of c, with the same options, that talks to another base URL.
func (c *Client) WithBaseURL(baseURL string) (*Client, error) {
	base, err := NormaliseBaseURL(baseURL, c.insecure)
	if err != nil {
		return nil, err
	}
	nc := *c
	nc.baseURL = base
	return &nc, nil
}

// NormaliseBaseURL checks a homeserver URL and returns it in the form paths are
// appended to: scheme and host lower-cased, no trailing '/', no query or fragment,
// no user info. Plain http:// is refused unless the host is loopback or allowInsecure.
func NormaliseBaseURL(raw string, allowInsecure bool) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("empty homeserver URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the input, which is user or server text; keep it out.
		return "", fmt.Errorf("homeserver URL %q is not a valid URL", displayURL(raw))
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme != "https" && u.Scheme != "http" {
		return "", fmt.Errorf("homeserver URL %q must start with https://", displayURL(raw))
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("homeserver URL %q has no host", displayURL(raw))
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and the account list.
		return "", fmt.Errorf("homeserver URL must not contain a user name or password")
	}
	if p := u.Port(); p != "" && !validPort(p) {
		return "", fmt.Errorf("homeserver URL %q has an invalid port", displayURL(raw))
	}
	u.Host = strings.ToLower(u.Host)
	if u.Scheme == "http" && !allowInsecure && !IsLoopbackHost(u.Hostname()) {
		return "", ErrInsecureURL
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery = "", "", "", false
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = strings.TrimRight(u.RawPath, "/")
	return u.String(), nil
}

// displayURL is user-typed URL text fit for an error: sanitised, with anything that
// could be user info (before an '@') left out.
func displayURL(raw string) string {
	if i := strings.LastIndexByte(raw, '@'); i >= 0 {
		prefix := ""
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			prefix = raw[:j+3]
		}
		raw = prefix + "…@" + raw[i+1:]
	}
	return Sanitize(raw)
}

// IsLoopbackHost reports whether host (no port, brackets allowed) is localhost, 127.0.0.0/8 or ::1.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
	}
	return n > 0 && n <= 65535
}

// guardRedirects copies hc with a redirect policy that never follows a downgrade to
// plain http (the Authorization header could follow it), never sends a request
// body on to another host, and stops loops.
func guardRedirects(hc *http.Client, insecure bool) *http.Client {
	var nc http.Client
	if hc != nil {
		nc = *hc
	}
	prev := nc.CheckRedirect
	nc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme != "https" && !insecure && !IsLoopbackHost(req.URL.Hostname()) {
			return ErrInsecureURL
		}
		if req.Method != http.MethodGet && req.Method != http.MethodHead && !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
			// A 307 or 308 resends the body: a password, a refresh token or
			// a device code would reach a host the server's metadata never named.
			return ErrCrossHostRedirect
		}
		if prev != nil {
			return prev(req, via)
		}
		if len(via) >= 10 {
			return errors.New("too many redirects")
		}
		return nil
	}
	return &nc
}

// call is one request as do() sends it.
type call struct {
	ep      Endpoint
	path    string     // concrete path; ep.Path when empty
	rawURL  string     // absolute URL overriding baseURL+path (well-known)
	token   Secret     // sent as Authorization: Bearer when ep.Auth
	body    any        // JSON body for non-GET requests; nil sends {}
	form    url.Values // form body (OAuth endpoints) instead of JSON when set
	oauth   bool       // non-2xx replies are OAuth 2.0 errors (RFC 6749 section 5.2)
	out     any        // decoded from a 2xx body; *[]byte takes it raw; nil ignores it
	secrets []Secret   // scrubbed from any server text that ends up in an error
}

// validator is implemented by response types with required fields.
type validator interface{ validate() error }

// do sends one request and returns when the response arrived.
func (c *Client) do(ctx context.Context, cl call) (time.Time, error) {
	label := cl.ep.String()
	if cl.ep.Auth && cl.token.IsZero() {
		return time.Time{}, fmt.Errorf("%s: %w", label, ErrNoAccessToken)
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	target := cl.rawURL
	if target == "" {
		p := cl.path
		if p == "" {
			p = cl.ep.Path
		}
		target = c.baseURL + p
	}
	var body io.Reader
	if cl.ep.Method != http.MethodGet && cl.ep.Method != http.MethodHead {
		payload := []byte("{}")
		if cl.form != nil {
			payload = []byte(cl.form.Encode())
		} else if cl.body != nil {
			b, err := json.Marshal(cl.body)
			if err != nil {
				return time.Time{}, fmt.Errorf("%s: encoding request: %w", label, err)
			}
			payload = b
		}
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, cl.ep.Method, target, body)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: building request failed", label)
	}
	req.Header.Set("User-Agent", "mxauth/"+Version)
	req.Header.Set("Accept", "application/json")
	if cl.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.ep.Auth {
		req.Header.Set("Authorization", "Bearer "+cl.token.Reveal())
	}

	log := c.logger
	if log == nil {
		log = slog.Default()
	}
	start := c.now()
	resp, err := c.hc.Do(req)
	if err != nil {
		terr := &TransportError{Endpoint: label, Err: unwrapURLError(err)}
		log.LogAttrs(ctx, slog.LevelDebug, "matrix request failed", slog.String("endpoint", label), slog.String("error", terr.Error()))
		return time.Time{}, terr
	}
	defer resp.Body.Close()
	received := c.now()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		terr := &TransportError{Endpoint: label, Err: unwrapURLError(err)}
		log.LogAttrs(ctx, slog.LevelDebug, "matrix response unreadable", slog.String("endpoint", label), slog.Int("status", resp.StatusCode), slog.String("error", terr.Error()))
		return received, terr
	}
	if len(data) > MaxResponseBytes {
		return received, &TransportError{Endpoint: label, Err: ErrResponseTooLarge}
	}
	secrets := append(slices.Clone(cl.secrets), heldSecrets(ctx)...)
	if cl.ep.Auth {
		secrets = append(secrets, cl.token)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var perr error
		if cl.oauth {
			perr = parseOAuthError(resp.StatusCode, resp.Header, data, label, received, secrets)
		} else {
			perr = parseError(resp.StatusCode, resp.Header, data, label, received, secrets)
		}
		log.LogAttrs(ctx, slog.LevelDebug, "matrix request rejected", slog.String("endpoint", label), slog.Int("status", resp.StatusCode), slog.String("error", perr.Error()), slog.Duration("took", received.Sub(start)))
		return received, perr
	}
	log.LogAttrs(ctx, slog.LevelDebug, "matrix request", slog.String("endpoint", label), slog.Int("status", resp.StatusCode), slog.Duration("took", received.Sub(start)))
	switch out := cl.out.(type) {
	case nil:
		return received, nil
	case *[]byte:
		*out = data
		return received, nil
	default:
		if err := decodeJSON(data, out); err != nil {
			return received, &TransportError{Endpoint: label, Err: err}
		}
		if v, ok := out.(validator); ok {
			if err := v.validate(); err != nil {
				return received, &TransportError{Endpoint: label, Err: err}
			}
		}
		return received, nil
	}
}

// decodeJSON decodes a 2xx body, describing failures without echoing body content
// (a half-read body may hold token bytes).
func decodeJSON(data []byte, out any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return fmt.Errorf("%w: empty body", ErrMalformedResponse)
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformedResponse)
	}
	if err := json.Unmarshal(trimmed, out); err != nil {
		return describeJSONError(err)
	}
	return nil
}

func describeJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("%w: field %s has the wrong type", ErrMalformedResponse, Sanitize(field))
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: invalid or truncated JSON", ErrMalformedResponse)
	default:
		return fmt.Errorf("%w: invalid JSON", ErrMalformedResponse)
	}
}

// unwrapURLError drops *url.Error's wrapper: it repeats the URL, which the endpoint label already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}
