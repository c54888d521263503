package matrix

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Scopes of the OAuth 2.0 API (stable forms).
const (
	ScopeClientAPI    = "urn:matrix:client:api:*"
	ScopeDevicePrefix = "urn:matrix:client:device:"
)

// OAuthScope is the scope a session asks for: the whole client API and exactly one device.
func OAuthScope(deviceID string) string { return ScopeClientAPI + " " + ScopeDevicePrefix + deviceID }

const deviceIDChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// NewDeviceID returns a fresh device ID for an OAuth 2.0 session: 12 characters of [A-Z0-9].
func NewDeviceID() (string, error) {
	out := make([]byte, 0, 12)
	buf := make([]byte, 32)
	for len(out) < 12 {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generating a device ID: %w", err)
		}
		for _, b := range buf {
			// 252 is the largest multiple of 36 below 256: no bias.
			if b < 252 && len(out) < 12 {
				out = append(out, deviceIDChars[int(b)%len(deviceIDChars)])
			}
		}
	}
	return string(out), nil
}

// ClientRegistration is the client metadata sent to the registration endpoint (RFC 7591).
type ClientRegistration struct {
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri"`
	ApplicationType         string   `json:"application_type"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	RedirectURIs            []string `json:"redirect_uris,omitempty"`
}

// NativeClient is the registration of a public native client using grants;
// redirectURIs may be empty for a client that only uses the device grant.
func NativeClient(name, clientURI string, grants []string, redirectURIs []string) ClientRegistration {
	r := ClientRegistration{
		ClientName:              name,
		ClientURI:               clientURI,
		ApplicationType:         "native",
		TokenEndpointAuthMethod: "none",
		GrantTypes:              slices.Clone(grants),
		RedirectURIs:            slices.Clone(redirectURIs),
	}
	if slices.Contains(grants, GrantAuthorizationCode) {
		r.ResponseTypes = []string{ResponseTypeCode}
	}
	return r
}

func (r ClientRegistration) check() error {
	u, err := url.Parse(r.ClientURI)
	switch {
	case err != nil || u.Host == "" || !strings.EqualFold(u.Scheme, "https"):
		return errors.New("client registration: client_uri must be an https:// URL")
	case u.User != nil:
		return errors.New("client registration: client_uri must not contain a user name or password")
	case len(r.GrantTypes) == 0:
		return errors.New("client registration: no grant types")
	}
	for _, raw := range r.RedirectURIs {
		if err := checkRedirectURI(raw); err != nil {
			return fmt.Errorf("client registration: redirect URI %q %w", displayURL(raw), err)
		}
	}
	return nil
}

// checkRedirectURI applies the spec's rules a native client can break: no user
// info or fragment, plain http only to loopback, and a loopback URI registered
// without a port (the server accepts any port at authorisation time).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Scheme == "":
		return errors.New("is not an absolute URI")
	case u.User != nil:
		return errors.New("must not contain a user name or password")
	case u.Fragment != "":
		return errors.New("must not have a fragment")
	case strings.EqualFold(u.Scheme, "http") && !IsLoopbackHost(u.Hostname()):
		return errors.New("uses plain http:// to a host that is not loopback")
	case IsLoopbackHost(u.Hostname()) && u.Port() != "":
		return errors.New("is a loopback URI with a port; register it without one")
	}
	return nil
}

// ClientRegistrationResponse is the 201 reply of the registration endpoint.
type ClientRegistrationResponse struct {
	ClientID      string   `json:"client_id"`
	GrantTypes    []string `json:"grant_types,omitempty"`
	ResponseTypes []string `json:"response_types,omitempty"`
	RedirectURIs  []string `json:"redirect_uris,omitempty"`
}

func (r *ClientRegistrationResponse) validate() error {
	if r.ClientID == "" {
		return fmt.Errorf("%w: registration reply lacks client_id", ErrMalformedResponse)
	}
	return nil
}

// GrantDroppedError is a registration the server accepted without some grant
// types the client asked for (an administrator may have disabled one).
type GrantDroppedError struct {
	ClientID string
	Dropped  []string // sanitised
}

func (e *GrantDroppedError) Error() string {
	return "the authorization server registered the client without the grant type(s) " + strings.Join(e.Dropped, ", ")
}

// RegisterClient registers a client (RFC 7591) at the metadata's registration
// endpoint. A reply granting fewer grant types than asked for is a
// *GrantDroppedError: a later flow would fail in a less clear way.
func (c *Client) RegisterClient(ctx context.Context, meta *AuthMetadata, reg ClientRegistration) (*ClientRegistrationResponse, error) {
	if err := reg.check(); err != nil {
		return nil, err
	}
	target, err := c.oauthURL("registration_endpoint", meta.RegistrationEndpoint)
	if err != nil {
		return nil, err
	}
	var out ClientRegistrationResponse
	if _, err := c.do(ctx, call{ep: oauthEndpoint(http.MethodPost, "registration_endpoint"), rawURL: target, body: reg, out: &out, oauth: true}); err != nil {
		return nil, err
	}
	granted := out.GrantTypes
	if granted == nil {
		granted = []string{GrantAuthorizationCode} // RFC 7591 section 2: the default
	}
	var dropped []string
	for _, g := range reg.GrantTypes {
		if !slices.Contains(granted, g) {
			dropped = append(dropped, Sanitize(g))
		}
	}
	if len(dropped) > 0 {
		return nil, &GrantDroppedError{ClientID: Sanitize(out.ClientID), Dropped: dropped}
	}
	return &out, nil
}

// oauthURL checks an endpoint URL from the metadata against the client's http rule.
func (c *Client) oauthURL(field, raw string) (string, error) {
	if _, err := checkOAuthURL(field, raw, c.insecure); err != nil {
		return "", err
	}
	return raw, nil
}

// TokenRequest is a form POSTed to the token endpoint; fields a grant does not use stay empty.
type TokenRequest struct {
	GrantType    string
	ClientID     string
	Code         Secret // authorization_code
	RedirectURI  string // authorization_code
	CodeVerifier Secret // authorization_code (PKCE)
	DeviceCode   Secret // device_code
	RefreshToken Secret // refresh_token
}

func (r TokenRequest) form() url.Values {
	f := url.Values{"grant_type": {r.GrantType}, "client_id": {r.ClientID}}
	add := func(k, v string) {
		if v != "" {
			f.Set(k, v)
		}
	}
	add("code", r.Code.Reveal())
	add("redirect_uri", r.RedirectURI)
	add("code_verifier", r.CodeVerifier.Reveal())
	add("device_code", r.DeviceCode.Reveal())
	add("refresh_token", r.RefreshToken.Reveal())
	return f
}

func (r TokenRequest) secrets() []Secret {
	return []Secret{r.Code, r.CodeVerifier, r.DeviceCode, r.RefreshToken}
}

// OAuthTokenResponse is the 200 reply of the token endpoint (RFC 6749 section 5.1).
type OAuthTokenResponse struct {
	AccessToken  Secret    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    *int64    `json:"expires_in,omitempty"` // seconds
	RefreshToken Secret    `json:"refresh_token"`
	Scope        string    `json:"scope,omitempty"`
	ReceivedAt   time.Time `json:"-"`
}

// validate requires a refresh token: a session without one would end when the
// short-lived access token does, breaking the promise to stay signed in.
func (r *OAuthTokenResponse) validate() error {
	switch {
	case r.AccessToken.IsZero():
		return fmt.Errorf("%w: token reply lacks access_token", ErrMalformedResponse)
	case r.RefreshToken.IsZero():
		return fmt.Errorf("%w: token reply lacks refresh_token", ErrMalformedResponse)
	case !strings.EqualFold(r.TokenType, "Bearer"):
		// Not quoted: a hostile server could echo a token there.
		return fmt.Errorf("%w: token reply has a token_type other than Bearer", ErrMalformedResponse)
	case r.ExpiresIn != nil && *r.ExpiresIn < 0:
		return fmt.Errorf("%w: token reply has a negative expires_in", ErrMalformedResponse)
	case r.ExpiresIn != nil && *r.ExpiresIn == 0:
		// Expired on arrival: a session built on it could hand out no token.
		return fmt.Errorf("%w: token reply has an expires_in of 0", ErrMalformedResponse)
	case !r.AccessToken.printable() || !r.RefreshToken.printable():
		return fmt.Errorf("%w: token reply has a token with characters a token cannot hold", ErrMalformedResponse)
	}
	return nil
}

// Tokens returns the token set this reply grants.
func (r *OAuthTokenResponse) Tokens() TokenSet {
	var ms *int64
	if r.ExpiresIn != nil {
		v := min(*r.ExpiresIn, int64(1<<53)/1000) * 1000
		ms = &v
	}
	return TokenSet{
		AccessToken:  r.AccessToken,
		RefreshToken: r.RefreshToken,
		IssuedAt:     r.ReceivedAt,
		ExpiresAt:    deadline(r.ReceivedAt, ms),
	}
}

// RequestToken POSTs a grant to the token endpoint. OAuth errors
// (authorization_pending, invalid_grant...) come back as *OAuthError.
// The refresh and authorization code grants are sent by x/oauth2 (see
// oauthCall); a single device code request, which x/oauth2 only makes inside
// its polling loop (PollDeviceToken), is posted directly.
func (c *Client) RequestToken(ctx context.Context, meta *AuthMetadata, req TokenRequest) (*OAuthTokenResponse, error) {
	if req.GrantType == "" || req.ClientID == "" {
		return nil, errors.New("token request needs a grant type and a client ID")
	}
	target, err := c.oauthURL("token_endpoint", meta.TokenEndpoint)
	if err != nil {
		return nil, err
	}
	var out OAuthTokenResponse
	var at time.Time
	switch req.GrantType {
	case GrantRefreshToken, GrantAuthorizationCode:
		at, err = c.exchangeToken(ctx, target, req, &out)
	default:
		at, err = c.do(ctx, call{
			ep:      oauthEndpoint(http.MethodPost, "token_endpoint"),
			rawURL:  target,
			form:    req.form(),
			out:     &out,
			oauth:   true,
			secrets: req.secrets(),
		})
	}
	if err != nil {
		return nil, err
	}
	out.ReceivedAt = at
	return &out, nil
}

// exchangeToken redeems a refresh token or an authorization code through x/oauth2.
func (c *Client) exchangeToken(ctx context.Context, tokenURL string, req TokenRequest, out *OAuthTokenResponse) (time.Time, error) {
	cfg := oauthConfig(req.ClientID, oauth2.Endpoint{TokenURL: tokenURL})
	oc := c.newOAuthCall(ctx, "POST token_endpoint", req.secrets()...)
	octx := oc.context(ctx)
	var err error
	if req.GrantType == GrantRefreshToken {
		if req.RefreshToken.IsZero() {
			return time.Time{}, ErrNoRefreshToken
		}
		// A token with no access token is never valid: Token() refreshes at once.
		_, err = cfg.TokenSource(octx, &oauth2.Token{RefreshToken: req.RefreshToken.Reveal()}).Token()
	} else {
		cfg.RedirectURL = req.RedirectURI
		var opts []oauth2.AuthCodeOption
		if !req.CodeVerifier.IsZero() {
			opts = append(opts, oauth2.VerifierOption(req.CodeVerifier.Reveal()))
		}
		_, err = cfg.Exchange(octx, req.Code.Reveal(), opts...)
	}
	return oc.finish(err, out)
}

// Token type hints for revocation (RFC 7009 section 2.1).
const (
	TokenHintAccess  = "access_token"
	TokenHintRefresh = "refresh_token"
)

// RevokeToken revokes a token (RFC 7009) at the metadata's revocation endpoint;
// revoking either token of a session ends both. 200 is success.
func (c *Client) RevokeToken(ctx context.Context, meta *AuthMetadata, clientID string, token Secret, hint string) error {
	if token.IsZero() {
		return fmt.Errorf("revocation: %w", ErrNoAccessToken)
	}
	target, err := c.oauthURL("revocation_endpoint", meta.RevocationEndpoint)
	if err != nil {
		return err
	}
	form := url.Values{"token": {token.Reveal()}, "client_id": {clientID}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	_, err = c.do(ctx, call{
		ep:      oauthEndpoint(http.MethodPost, "revocation_endpoint"),
		rawURL:  target,
		form:    form,
		oauth:   true,
		secrets: []Secret{token},
	})
	return err
}

// ErrNoDeviceGrant is returned when the server's metadata offers no device authorisation grant.
var ErrNoDeviceGrant = errors.New("the authorization server does not offer the device authorisation grant")

// defaultPollInterval is RFC 8628's polling interval when the server names none.
const defaultPollInterval = 5 * time.Second

// DeviceAuthorization is the reply of the device authorization endpoint (RFC 8628 section 3.2).
type DeviceAuthorization struct {
	DeviceCode              Secret    `json:"device_code"`
	UserCode                string    `json:"user_code"`
	VerificationURI         string    `json:"verification_uri"`
	VerificationURIComplete string    `json:"verification_uri_complete,omitempty"`
	ExpiresIn               int64     `json:"expires_in"` // seconds
	Interval                int64     `json:"interval,omitempty"`
	ReceivedAt              time.Time `json:"-"`
}

// validate refuses a reply the user could not act on. The user code and the
// URIs are shown to the user to type or open, so text that sanitising would
// change is refused rather than shown altered.
func (r *DeviceAuthorization) validate() error {
	switch {
	case r.DeviceCode.IsZero() || !r.DeviceCode.printable():
		return fmt.Errorf("%w: device authorization reply lacks a usable device_code", ErrMalformedResponse)
	case r.UserCode == "" || Sanitize(r.UserCode) != r.UserCode:
		return fmt.Errorf("%w: device authorization reply lacks a displayable user_code", ErrMalformedResponse)
	case r.VerificationURI == "":
		return fmt.Errorf("%w: device authorization reply lacks verification_uri", ErrMalformedResponse)
	case r.ExpiresIn <= 0:
		return fmt.Errorf("%w: device authorization reply lacks a positive expires_in", ErrMalformedResponse)
	case r.Interval < 0:
		return fmt.Errorf("%w: device authorization reply has a negative interval", ErrMalformedResponse)
	}
	return nil
}

// checkURIs applies the client's http rule to the URIs the user is sent to.
func (r *DeviceAuthorization) checkURIs(allowInsecure bool) error {
	for field, raw := range map[string]string{"verification_uri": r.VerificationURI, "verification_uri_complete": r.VerificationURIComplete} {
		if raw == "" {
			continue
		}
		if _, err := checkOAuthURL(field, raw, allowInsecure); err != nil {
			var me *AuthMetadataError
			errors.As(err, &me)
			return fmt.Errorf("%w: device authorization reply: %s %s", ErrMalformedResponse, me.Field, me.Reason)
		}
		if Sanitize(raw) != raw {
			return fmt.Errorf("%w: device authorization reply: %s holds characters that cannot be shown", ErrMalformedResponse, field)
		}
	}
	return nil
}

// PollInterval is how long to wait between token requests: the server's interval, else 5 s.
func (r *DeviceAuthorization) PollInterval() time.Duration {
	if r.Interval <= 0 {
		return defaultPollInterval
	}
	return clampDuration(float64(r.Interval) * float64(time.Second))
}

// ExpiresAt is when the device code stops being accepted.
func (r *DeviceAuthorization) ExpiresAt() time.Time {
	return r.ReceivedAt.Add(clampDuration(float64(r.ExpiresIn) * float64(time.Second)))
}

// RequestDeviceAuthorization starts a device authorisation grant (RFC 8628)
// for clientID and scope (oauth2.Config.DeviceAuth underneath; the reply is
// read and checked here).
func (c *Client) RequestDeviceAuthorization(ctx context.Context, meta *AuthMetadata, clientID, scope string) (*DeviceAuthorization, error) {
	if meta.DeviceAuthorizationEndpoint == "" {
		return nil, ErrNoDeviceGrant
	}
	target, err := c.oauthURL("device_authorization_endpoint", meta.DeviceAuthorizationEndpoint)
	if err != nil {
		return nil, err
	}
	cfg := oauthConfig(clientID, oauth2.Endpoint{DeviceAuthURL: target})
	if scope != "" {
		cfg.Scopes = []string{scope}
	}
	oc := c.newOAuthCall(ctx, "POST device_authorization_endpoint")
	_, err = cfg.DeviceAuth(oc.context(ctx))
	var out DeviceAuthorization
	at, err := oc.finish(err, &out)
	if err != nil {
		return nil, err
	}
	if err := out.checkURIs(c.insecure); err != nil {
		return nil, &TransportError{Endpoint: "POST device_authorization_endpoint", Err: err}
	}
	out.ReceivedAt = at
	return &out, nil
}
