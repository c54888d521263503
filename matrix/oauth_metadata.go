package matrix

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// AuthMetadataEndpoint is GET /auth_metadata: the OAuth 2.0 authorization
// server metadata (RFC 8414) of a homeserver that uses the OAuth 2.0 API.
var AuthMetadataEndpoint = Endpoint{
	Method:  "GET",
	Path:    "/_matrix/client/v1/auth_metadata",
	History: []string{"/_matrix/client/unstable/org.matrix.msc2965/auth_metadata"},
}

// AuthIssuerEndpoint is the older GET /auth_issuer: only the issuer, whose
// OpenID Connect discovery document then holds the metadata.
var AuthIssuerEndpoint = Endpoint{
	Method: "GET",
	Path:   "/_matrix/client/unstable/org.matrix.msc2965/auth_issuer",
}

// Grant, response and PKCE values of the OAuth 2.0 API.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	ResponseTypeCode       = "code"
	CodeChallengeS256      = "S256"
)

// ErrOAuthUnsupported is wrapped when a homeserver offers none of the OAuth 2.0 discovery endpoints.
var ErrOAuthUnsupported = errors.New("the homeserver does not offer the OAuth 2.0 API")

// AuthMetadata is the authorization server metadata, with the spec's field names.
type AuthMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported,omitempty"`
	AccountManagementURI              string   `json:"account_management_uri,omitempty"`
	AccountManagementActionsSupported []string `json:"account_management_actions_supported,omitempty"`
}

// AuthMetadataError says which metadata field is wrong and how.
type AuthMetadataError struct {
	Field  string
	Reason string // already sanitised
}

func (e *AuthMetadataError) Error() string {
	return "authorization server metadata: " + e.Field + " " + e.Reason
}

func metaErr(field, format string, args ...any) error {
	return &AuthMetadataError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// SupportsDeviceGrant reports whether the device authorisation grant can be used.
func (m *AuthMetadata) SupportsDeviceGrant() bool {
	return m.DeviceAuthorizationEndpoint != "" && slices.Contains(m.GrantTypesSupported, GrantDeviceCode)
}

// Validate checks the fields the spec requires, the values they must contain,
// that every endpoint is on the issuer's host, and that URLs use https unless
// they point to loopback or allowInsecure is set (as for the homeserver URL).
func (m *AuthMetadata) Validate(allowInsecure bool) error {
	issuer, err := checkOAuthURL("issuer", m.Issuer, allowInsecure)
	if err != nil {
		return err
	}
	if issuer.RawQuery != "" || issuer.ForceQuery || issuer.Fragment != "" {
		return metaErr("issuer", "must not have a query or fragment")
	}
	endpoints := []struct {
		field, value string
		required     bool
	}{
		{"authorization_endpoint", m.AuthorizationEndpoint, true},
		{"token_endpoint", m.TokenEndpoint, true},
		{"revocation_endpoint", m.RevocationEndpoint, true},
		{"registration_endpoint", m.RegistrationEndpoint, true},
		{"device_authorization_endpoint", m.DeviceAuthorizationEndpoint, false},
	}
	for _, ep := range endpoints {
		if ep.value == "" && !ep.required {
			continue
		}
		u, err := checkOAuthURL(ep.field, ep.value, allowInsecure)
		if err != nil {
			return err
		}
		if !strings.EqualFold(u.Hostname(), issuer.Hostname()) {
			return metaErr(ep.field, "is on host %q, not on the issuer's host %q", Sanitize(u.Hostname()), Sanitize(issuer.Hostname()))
		}
	}
	if m.AccountManagementURI != "" {
		if _, err := checkOAuthURL("account_management_uri", m.AccountManagementURI, allowInsecure); err != nil {
			return err
		}
	}
	lists := []struct {
		field  string
		values []string
		must   []string
	}{
		{"response_types_supported", m.ResponseTypesSupported, []string{ResponseTypeCode}},
		{"grant_types_supported", m.GrantTypesSupported, []string{GrantAuthorizationCode, GrantRefreshToken}},
		{"response_modes_supported", m.ResponseModesSupported, []string{"query", "fragment"}},
		{"code_challenge_methods_supported", m.CodeChallengeMethodsSupported, []string{CodeChallengeS256}},
	}
	for _, l := range lists {
		if l.values == nil {
			return metaErr(l.field, "is missing")
		}
		for _, v := range l.must {
			if !slices.Contains(l.values, v) {
				return metaErr(l.field, "lacks %q", v)
			}
		}
	}
	return nil
}

// checkOAuthURL parses a metadata URL: present, absolute, no user info, https
// unless loopback or allowed.
func checkOAuthURL(field, raw string, allowInsecure bool) (*url.URL, error) {
	if raw == "" {
		return nil, metaErr(field, "is missing")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, metaErr(field, "%q is not an absolute URL", displayURL(raw))
	}
	if u.User != nil {
		return nil, metaErr(field, "must not contain a user name or password")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !allowInsecure && !IsLoopbackHost(u.Hostname()) {
			return nil, metaErr(field, "%q must use https (plain http:// is only allowed to loopback addresses)", displayURL(raw))
		}
	default:
		return nil, metaErr(field, "%q must use https", displayURL(raw))
	}
	return u, nil
}

// oauthEndpoint labels a call to an authorization server URL taken from the
// metadata: the label names the metadata field, never the URL's query.
func oauthEndpoint(method, field string) Endpoint {
	return Endpoint{Method: method, Path: field}
}

// authIssuerResponse is the reply of GET /auth_issuer.
type authIssuerResponse struct {
	Issuer string `json:"issuer"`
}

func (r *authIssuerResponse) validate() error {
	if r.Issuer == "" {
		return fmt.Errorf("%w: no issuer", ErrMalformedResponse)
	}
	return nil
}

// AuthMetadata discovers and validates the authorization server metadata: the
// stable endpoint, then the unstable one, then the older auth_issuer and the
// issuer's OpenID Connect discovery document. A server offering none of them
// gives an error wrapping ErrOAuthUnsupported that also satisfies IsUnsupported.
func (c *Client) AuthMetadata(ctx context.Context) (*AuthMetadata, error) {
	for _, p := range append([]string{AuthMetadataEndpoint.Path}, AuthMetadataEndpoint.History...) {
		var m AuthMetadata
		ep := AuthMetadataEndpoint
		ep.Path = p // errors name the path that failed
		_, err := c.do(ctx, call{ep: ep, out: &m})
		if err == nil {
			return c.checkedMetadata(&m, "")
		}
		if !IsUnsupported(err) {
			return nil, err
		}
	}
	var iss authIssuerResponse
	if _, err := c.do(ctx, call{ep: AuthIssuerEndpoint, out: &iss}); err != nil {
		if IsUnsupported(err) {
			return nil, fmt.Errorf("%w: %w", ErrOAuthUnsupported, err)
		}
		return nil, err
	}
	if _, err := checkOAuthURL("issuer", iss.Issuer, c.insecure); err != nil {
		return nil, err
	}
	var m AuthMetadata
	discovery := strings.TrimRight(iss.Issuer, "/") + "/.well-known/openid-configuration"
	if _, err := c.do(ctx, call{ep: oauthEndpoint(http.MethodGet, "{issuer}/.well-known/openid-configuration"), rawURL: discovery, out: &m}); err != nil {
		return nil, err
	}
	return c.checkedMetadata(&m, iss.Issuer)
}

// checkedMetadata validates m; wantIssuer, when set, is the issuer the
// homeserver named, which the document must repeat (RFC 8414 section 3.3).
func (c *Client) checkedMetadata(m *AuthMetadata, wantIssuer string) (*AuthMetadata, error) {
	if err := m.Validate(c.insecure); err != nil {
		return nil, err
	}
	if wantIssuer != "" && m.Issuer != wantIssuer {
		return nil, metaErr("issuer", "%q differs from the issuer %q the homeserver named", displayURL(m.Issuer), displayURL(wantIssuer))
	}
	return m, nil
}

// ServerAuthKind is how a homeserver signs users in.
type ServerAuthKind int

const (
	// AuthLegacy: no OAuth 2.0 API; /login (password, SSO, token) as today.
	AuthLegacy ServerAuthKind = iota + 1
	// AuthOAuthOnly: the OAuth 2.0 API and no usable password login.
	AuthOAuthOnly
	// AuthOAuthPasswordCompat: the OAuth 2.0 API, with /login still taking
	// passwords through a compatibility layer (as Matrix Authentication Service offers).
	AuthOAuthPasswordCompat
)

func (k ServerAuthKind) String() string {
	switch k {
	case AuthLegacy:
		return "legacy authentication"
	case AuthOAuthOnly:
		return "OAuth 2.0"
	case AuthOAuthPasswordCompat:
		return "OAuth 2.0 with password compatibility"
	default:
		return "unknown"
	}
}

// Name is the kind's short name in the account index and in JSON output:
// "legacy", "oauth" or "oauth-compat"; "" for an unknown kind.
func (k ServerAuthKind) Name() string {
	switch k {
	case AuthLegacy:
		return "legacy"
	case AuthOAuthOnly:
		return "oauth"
	case AuthOAuthPasswordCompat:
		return "oauth-compat"
	default:
		return ""
	}
}

// ParseServerAuthKind reads a Name; anything else is 0 (unknown).
func ParseServerAuthKind(name string) ServerAuthKind {
	for _, k := range []ServerAuthKind{AuthLegacy, AuthOAuthOnly, AuthOAuthPasswordCompat} {
		if k.Name() == name {
			return k
		}
	}
	return 0
}

// ServerAuth is what a probe of the homeserver's authentication found.
type ServerAuth struct {
	Kind     ServerAuthKind
	Metadata *AuthMetadata       // nil for AuthLegacy
	Flows    *LoginFlowsResponse // nil when /login is absent
}

// ClassifyServer tells the kinds apart from the metadata (nil: no OAuth 2.0
// API) and the /login flows (nil: no /login).
func ClassifyServer(meta *AuthMetadata, flows *LoginFlowsResponse) ServerAuthKind {
	switch {
	case meta == nil:
		return AuthLegacy
	case flows.oauthCompatible() && flows.Supports(LoginTypePassword):
		return AuthOAuthPasswordCompat
	default:
		return AuthOAuthOnly
	}
}

// oauthCompatible reports an m.login.sso flow marking /login as a compatibility
// layer of an OAuth 2.0 server (stable or MSC3824 name).
func (r *LoginFlowsResponse) oauthCompatible() bool {
	if r == nil {
		return false
	}
	for _, f := range r.Flows {
		if f.Type == LoginTypeSSO && (f.OAuthAwarePreferred || f.UnstableDelegatedOIDCCompatibility) {
			return true
		}
	}
	return false
}

// ProbeServerAuth fetches the metadata and the /login flows and classifies the
// server. A server with neither, or a failure that hides which kind it is
// (network, 5xx, invalid metadata), is an error, never a guess.
func (c *Client) ProbeServerAuth(ctx context.Context) (*ServerAuth, error) {
	meta, err := c.AuthMetadata(ctx)
	if err != nil && !errors.Is(err, ErrOAuthUnsupported) {
		return nil, err
	}
	flows, ferr := c.LoginFlows(ctx)
	if ferr != nil {
		if meta == nil || !IsUnsupported(ferr) {
			return nil, ferr
		}
		flows = nil
	}
	return &ServerAuth{Kind: ClassifyServer(meta, flows), Metadata: meta, Flows: flows}, nil
}
