package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// The OAuth 2.0 requests that golang.org/x/oauth2 sends (device authorization,
// the device grant's polling, the code exchange, refresh) go through an
// oauthCall: x/oauth2 builds the form and runs the grant's loop, while our
// http.Client, carried by the oauth2.HTTPClient context key, keeps our
// timeouts, TLS and redirect rules, and a transport wrapper caps and keeps
// each reply. What comes back is then read by this package, never taken from
// x/oauth2: its errors quote the raw reply (RetrieveError.Error prints the
// body, which may echo a token), and on refresh it fills in the old refresh
// token when the reply has none, hiding a reply that ends the session's
// promise to stay signed in.

// oauthReply is one reply of an authorization server, read whole.
type oauthReply struct {
	status int
	header http.Header
	body   []byte
	at     time.Time
}

// oauthCall is one x/oauth2 operation made with c's HTTP stack.
type oauthCall struct {
	c        *Client
	endpoint string   // label for errors and logs, e.g. "POST token_endpoint"
	secrets  []Secret // scrubbed from server text in errors
	onSend   func()   // before each request
	onReply  func(oauthReply)

	mu   sync.Mutex
	last *oauthReply
}

func (c *Client) newOAuthCall(ctx context.Context, endpoint string, secrets ...Secret) *oauthCall {
	return &oauthCall{c: c, endpoint: endpoint, secrets: append(slices.Clone(secrets), heldSecrets(ctx)...)}
}

// context returns ctx carrying the http.Client x/oauth2 is to use: a copy of
// ours (redirect guard, jar, timeout) whose transport reads replies through t.
func (oc *oauthCall) context(ctx context.Context) context.Context {
	hc := *oc.c.hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = &oauthTransport{call: oc, base: base, ctx: ctx}
	return context.WithValue(ctx, oauth2.HTTPClient, &hc)
}

func (oc *oauthCall) record(r oauthReply) {
	oc.mu.Lock()
	oc.last = &r
	oc.mu.Unlock()
	if oc.onReply != nil {
		oc.onReply(r)
	}
}

func (oc *oauthCall) lastReply() *oauthReply {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	return oc.last
}

func (oc *oauthCall) logger() *slog.Logger {
	if oc.c.logger != nil {
		return oc.c.logger
	}
	return slog.Default()
}

// oauthTransport sends x/oauth2's requests with our headers and per-call
// timeout and reads each reply whole, refusing one over MaxResponseBytes
// (x/oauth2 would silently cut it at 1 MiB and misread the rest).
type oauthTransport struct {
	call *oauthCall
	base http.RoundTripper
	ctx  context.Context // the caller's, for requests x/oauth2 builds without it
}

func (t *oauthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	oc := t.call
	ctx := req.Context()
	if ctx.Value(oauth2.HTTPClient) == nil {
		// x/oauth2 sends the device authorization request without the
		// caller's context: put it back so cancelling works.
		ctx = t.ctx
	}
	if oc.c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, oc.c.timeout)
		defer cancel()
	}
	out := req.Clone(ctx)
	out.Header.Set("User-Agent", "mxauth/"+Version)
	out.Header.Set("Accept", "application/json")
	log := oc.logger()
	start := oc.c.now()
	if oc.onSend != nil {
		oc.onSend()
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelDebug, "matrix request failed", slog.String("endpoint", oc.endpoint), slog.String("error", (&TransportError{Endpoint: oc.endpoint, Err: err}).Error()))
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	received := oc.c.now()
	if err != nil {
		log.LogAttrs(ctx, slog.LevelDebug, "matrix response unreadable", slog.String("endpoint", oc.endpoint), slog.Int("status", resp.StatusCode))
		return nil, err
	}
	if len(data) > MaxResponseBytes {
		return nil, ErrResponseTooLarge
	}
	log.LogAttrs(ctx, slog.LevelDebug, "matrix request", slog.String("endpoint", oc.endpoint), slog.Int("status", resp.StatusCode), slog.Duration("took", received.Sub(start)))
	oc.record(oauthReply{status: resp.StatusCode, header: resp.Header.Clone(), body: data, at: received})
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	return resp, nil
}

func is2xx(status int) bool { return status >= 200 && status <= 299 }

// finish turns what x/oauth2 returned into this package's results: on success
// the last reply is decoded into out (and validated); a non-2xx reply becomes
// an *OAuthError, a failed exchange a *TransportError. x/oauth2's own error
// values never leave: their text may hold the reply's body.
func (oc *oauthCall) finish(err error, out any) (time.Time, error) {
	if err == nil {
		return oc.decode(out)
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && !is2xx(re.Response.StatusCode) {
		return time.Time{}, oc.oauthError(re)
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return time.Time{}, &TransportError{Endpoint: oc.endpoint, Err: unwrapURLError(err)}
	}
	// x/oauth2 refused a 2xx reply (no access_token, an "error" field, JSON
	// it cannot read): say what is wrong in this package's words.
	if r := oc.lastReply(); r == nil || !is2xx(r.status) {
		return time.Time{}, &TransportError{Endpoint: oc.endpoint, Err: errors.New("the request could not be sent")}
	}
	if at, derr := oc.decode(out); derr != nil {
		return at, derr
	}
	return time.Time{}, &TransportError{Endpoint: oc.endpoint, Err: fmt.Errorf("%w: the reply is not a usable OAuth 2.0 answer", ErrMalformedResponse)}
}

// decode reads the last reply into out as do() reads a 2xx body.
func (oc *oauthCall) decode(out any) (time.Time, error) {
	r := oc.lastReply()
	if r == nil {
		return time.Time{}, &TransportError{Endpoint: oc.endpoint, Err: fmt.Errorf("%w: no reply", ErrMalformedResponse)}
	}
	if err := decodeJSON(r.body, out); err != nil {
		return r.at, &TransportError{Endpoint: oc.endpoint, Err: err}
	}
	if v, ok := out.(validator); ok {
		if err := v.validate(); err != nil {
			return r.at, &TransportError{Endpoint: oc.endpoint, Err: err}
		}
	}
	return r.at, nil
}

// oauthError reads a refusal as parseOAuthError does (sanitised, scrubbed of
// the call's secrets); an error code x/oauth2 found in a form-encoded body is
// taken the same way.
func (oc *oauthCall) oauthError(re *oauth2.RetrieveError) error {
	at := oc.c.now()
	if r := oc.lastReply(); r != nil {
		at = r.at
	}
	err := parseOAuthError(re.Response.StatusCode, re.Response.Header, re.Body, oc.endpoint, at, oc.secrets)
	if e, ok := AsOAuthError(err); ok && e.Code == "" && re.ErrorCode != "" {
		e.Code = truncateRunes(cleanServerText(re.ErrorCode, oc.secrets), 64)
		e.Description = cleanServerText(re.ErrorDescription, oc.secrets)
	}
	oc.logger().Debug("matrix request rejected", slog.String("endpoint", oc.endpoint), slog.Int("status", re.Response.StatusCode), slog.String("error", err.Error()))
	return err
}

// oauthConfig is the x/oauth2 view of a public client of meta's server:
// client_id in the form, no secret (AuthStyleInParams, never probing with an
// Authorization header).
func oauthConfig(clientID string, endpoint oauth2.Endpoint) *oauth2.Config {
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{ClientID: clientID, Endpoint: endpoint}
}

// ErrDeviceCodeExpired is the device grant's end when expires_in passed
// locally before the user approved; IsExpiredToken matches it.
var ErrDeviceCodeExpired = errors.New("the device code expired before the sign-in was approved")

// DevicePoll describes one pending or slow_down answer of the device grant's polling.
type DevicePoll struct {
	Attempt  int           // 1 for the first token request
	Interval time.Duration // the interval now in force (grows by 5 s on slow_down)
	SlowDown bool          // this answer was slow_down
}

// slowDownStep is RFC 8628 section 3.5's increase of the interval on slow_down.
const slowDownStep = 5 // seconds

// PollDeviceToken polls the token endpoint until the grant ends
// (oauth2.Config.DeviceAccessToken underneath), calling onPoll (may be nil)
// after each pending/slow_down answer. Ends with the token reply (validated:
// refresh token required), or an error: *OAuthError access_denied /
// expired_token (IsAccessDenied / IsExpiredToken), ErrDeviceCodeExpired when
// expires_in passed locally (IsExpiredToken also matches it), ctx.Err() on
// cancel, a transport error otherwise. A transient network failure (or a 5xx
// or 429) during polling does not end the grant: it polls on at the interval.
// A token reply refused as unusable (no refresh token...) is revoked, best
// effort, so no session is left behind on the server.
func (c *Client) PollDeviceToken(ctx context.Context, meta *AuthMetadata, clientID string, da *DeviceAuthorization, onPoll func(DevicePoll)) (*OAuthTokenResponse, error) {
	if da == nil || da.DeviceCode.IsZero() || clientID == "" {
		return nil, errors.New("device grant polling needs a device code and a client ID")
	}
	target, err := c.oauthURL("token_endpoint", meta.TokenEndpoint)
	if err != nil {
		return nil, err
	}
	p := &devicePoller{c: c, onPoll: onPoll, interval: da.Interval}
	if p.interval <= 0 {
		p.interval = int64(defaultPollInterval / time.Second)
	}
	// x/oauth2 measures expiry on the wall clock; c.now may be a test clock.
	expiry := time.Now().Add(da.ExpiresAt().Sub(c.now()))
	cfg := oauthConfig(clientID, oauth2.Endpoint{TokenURL: target})
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !time.Now().Before(expiry) {
			return nil, ErrDeviceCodeExpired
		}
		call := c.newOAuthCall(ctx, "POST token_endpoint", da.DeviceCode)
		call.onSend, call.onReply = p.sent, p.observe
		_, err := cfg.DeviceAccessToken(call.context(ctx), &oauth2.DeviceAuthResponse{
			DeviceCode: da.DeviceCode.Reveal(),
			Expiry:     expiry,
			Interval:   p.currentInterval(),
		})
		var out OAuthTokenResponse
		at, err := call.finish(err, &out)
		switch {
		case err == nil:
			out.ReceivedAt = at
			return &out, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !time.Now().Before(expiry):
			return nil, ErrDeviceCodeExpired
		case errors.Is(err, ErrMalformedResponse) || errors.Is(err, ErrResponseTooLarge):
			c.discardTokens(ctx, meta, clientID, &out)
			return nil, err
		case IsTransient(err):
			continue // DeviceAccessToken waits the interval before its first request
		default:
			return nil, err
		}
	}
}

// devicePoller follows the polling through the replies x/oauth2 receives.
type devicePoller struct {
	c        *Client
	onPoll   func(DevicePoll)
	mu       sync.Mutex
	attempt  int
	interval int64 // seconds, as RFC 8628 counts
}

func (p *devicePoller) currentInterval() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interval
}

// sent counts token requests, answered or not.
func (p *devicePoller) sent() {
	p.mu.Lock()
	p.attempt++
	p.mu.Unlock()
}

// observe reads each answer of the token endpoint and reports the pending
// and slow_down ones; it runs on the polling goroutine, so onPoll does too.
func (p *devicePoller) observe(r oauthReply) {
	p.mu.Lock()
	poll := DevicePoll{Attempt: p.attempt}
	code := replyErrorCode(r)
	if code == OAuthSlowDown {
		p.interval += slowDownStep
		poll.SlowDown = true
	}
	poll.Interval = clampDuration(float64(p.interval) * float64(time.Second))
	p.mu.Unlock()
	if (code == OAuthAuthorizationPending || code == OAuthSlowDown) && p.onPoll != nil {
		p.onPoll(poll)
	}
}

// replyErrorCode is the OAuth error code of a reply as x/oauth2 reads it (a
// JSON or form-encoded "error", whatever the status), so the interval kept
// here grows exactly when x/oauth2's does.
func replyErrorCode(r oauthReply) string {
	var code string
	switch ct, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); ct {
	case "application/x-www-form-urlencoded", "text/plain":
		if v, err := url.ParseQuery(string(r.body)); err == nil {
			code = v.Get("error")
		}
	default:
		var fields struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(r.body, &fields) == nil {
			code = fields.Error
		}
	}
	return code
}

// discardTokens revokes, best effort, the tokens of a token reply this
// package refused: the server created a session the caller will never hold.
func (c *Client) discardTokens(ctx context.Context, meta *AuthMetadata, clientID string, r *OAuthTokenResponse) {
	if meta.RevocationEndpoint == "" {
		return
	}
	if !r.RefreshToken.IsZero() && r.RefreshToken.printable() {
		_ = c.RevokeToken(ctx, meta, clientID, r.RefreshToken, TokenHintRefresh)
		return
	}
	if !r.AccessToken.IsZero() && r.AccessToken.printable() {
		_ = c.RevokeToken(ctx, meta, clientID, r.AccessToken, TokenHintAccess)
	}
}
