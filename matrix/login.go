package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// LoginFlowsEndpoint is GET /login: which login types the server offers.
var LoginFlowsEndpoint = Endpoint{
	Method:      "GET",
	Path:        "/_matrix/client/v3/login",
	History:     []string{"/_matrix/client/r0/login"},
	RateLimited: true,
}

// LoginEndpoint is POST /login: a single request and reply, not UIA.
var LoginEndpoint = Endpoint{
	Method:      "POST",
	Path:        "/_matrix/client/v3/login",
	History:     []string{"/_matrix/client/r0/login"},
	RateLimited: true,
}

// Login and identifier types.
const (
	LoginTypePassword = "m.login.password"
	LoginTypeToken    = "m.login.token"
	LoginTypeSSO      = "m.login.sso"
	IdentifierUser    = "m.id.user"
)

// IdentityProvider is one SSO provider of an m.login.sso flow.
type IdentityProvider struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Icon  string `json:"icon,omitempty"`
	Brand string `json:"brand,omitempty"`
}

// LoginFlow is one login type offered by GET /login.
type LoginFlow struct {
	Type                  string             `json:"type"`
	GetLoginToken         bool               `json:"get_login_token,omitempty"`
	UnstableGetLoginToken bool               `json:"org.matrix.msc3882.get_login_token,omitempty"`
	IdentityProviders     []IdentityProvider `json:"identity_providers,omitempty"`
	OAuthAwarePreferred   bool               `json:"oauth_aware_preferred,omitempty"`
	// UnstableDelegatedOIDCCompatibility is MSC3824's name for oauth_aware_preferred.
	UnstableDelegatedOIDCCompatibility bool `json:"org.matrix.msc3824.delegated_oidc_compatibility,omitempty"`
}

// LoginFlowsResponse is the reply of GET /login.
type LoginFlowsResponse struct {
	Flows []LoginFlow `json:"flows"`
}

func (r *LoginFlowsResponse) validate() error {
	if r.Flows == nil {
		return fmt.Errorf("%w: no flows list", ErrMalformedResponse)
	}
	return nil
}

// Supports reports whether flowType is offered.
func (r *LoginFlowsResponse) Supports(flowType string) bool {
	if r == nil {
		return false
	}
	for _, f := range r.Flows {
		if f.Type == flowType {
			return true
		}
	}
	return false
}

// AdvertisesGetLoginToken reports whether the m.login.token flow says the server
// implements get_token (stable or MSC3882 name). It says nothing about a given user.
func (r *LoginFlowsResponse) AdvertisesGetLoginToken() bool {
	return r.advertises(true) || r.advertises(false)
}

func (r *LoginFlowsResponse) advertises(stable bool) bool {
	if r == nil {
		return false
	}
	for _, f := range r.Flows {
		if f.Type != LoginTypeToken {
			continue
		}
		if stable && f.GetLoginToken || !stable && f.UnstableGetLoginToken {
			return true
		}
	}
	return false
}

// OAuthOnly reports an SSO flow marked oauth_aware_preferred: a password prompt is wrong here.
func (r *LoginFlowsResponse) OAuthOnly() bool {
	if r == nil {
		return false
	}
	for _, f := range r.Flows {
		if f.Type == LoginTypeSSO && f.OAuthAwarePreferred {
			return true
		}
	}
	return false
}

// LoginFlows fetches GET /login. A 404 (OAuth-only server) satisfies IsUnsupported.
func (c *Client) LoginFlows(ctx context.Context) (*LoginFlowsResponse, error) {
	var out LoginFlowsResponse
	if _, err := c.do(ctx, call{ep: LoginFlowsEndpoint, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// UserIdentifier names the user logging in or authenticating.
type UserIdentifier struct {
	Type    string `json:"type"`
	User    string `json:"user,omitempty"`
	Medium  string `json:"medium,omitempty"`
	Address string `json:"address,omitempty"`
	Country string `json:"country,omitempty"`
	Phone   string `json:"phone,omitempty"`
}

// LoginRequest is the body of POST /login.
type LoginRequest struct {
	Type                     string          `json:"type"`
	Identifier               *UserIdentifier `json:"identifier,omitempty"`
	Password                 Secret          `json:"password,omitempty"`
	Token                    Secret          `json:"token,omitempty"`
	DeviceID                 string          `json:"device_id,omitempty"`
	InitialDeviceDisplayName string          `json:"initial_device_display_name,omitempty"`
	RefreshToken             bool            `json:"refresh_token,omitempty"`
}

// PasswordLogin is a password login for a user ID (or localpart) that opts in to refresh tokens.
func PasswordLogin(user string, password Secret) LoginRequest {
	return LoginRequest{
		Type:         LoginTypePassword,
		Identifier:   &UserIdentifier{Type: IdentifierUser, User: user},
		Password:     password,
		RefreshToken: true,
	}
}

// TokenLogin logs in with a login token (which identifies the user) and opts in to refresh tokens.
func TokenLogin(token Secret) LoginRequest {
	return LoginRequest{Type: LoginTypeToken, Token: token, RefreshToken: true}
}

func (r LoginRequest) check() error {
	switch {
	case r.Type == "":
		return errors.New("login type is required")
	case r.Type == LoginTypePassword && (r.Identifier == nil || r.Identifier.Type == ""):
		return errors.New("password login needs a user identifier")
	case r.Type == LoginTypePassword && r.Password.IsZero():
		return errors.New("password login needs a password")
	case r.Type == LoginTypeToken && r.Token.IsZero():
		return errors.New("token login needs a login token")
	}
	return nil
}

// LoginResponse is the reply of POST /login.
type LoginResponse struct {
	UserID       string     `json:"user_id"`
	AccessToken  Secret     `json:"access_token"`
	DeviceID     string     `json:"device_id"`
	WellKnown    *WellKnown `json:"well_known,omitempty"`
	RefreshToken Secret     `json:"refresh_token,omitempty"`
	ExpiresInMS  *int64     `json:"expires_in_ms,omitempty"`
	HomeServer   string     `json:"home_server,omitempty"` // deprecated, never relied on
	ReceivedAt   time.Time  `json:"-"`                     // set by the client when the response arrived
}

// UnmarshalJSON decodes the optional well_known and home_server leniently: the
// login already happened server-side, so a malformed hint must not cost the tokens.
func (r *LoginResponse) UnmarshalJSON(data []byte) error {
	type plain LoginResponse
	var aux struct {
		plain
		WellKnown  json.RawMessage `json:"well_known,omitempty"`
		HomeServer json.RawMessage `json:"home_server,omitempty"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*r = LoginResponse(aux.plain)
	r.WellKnown, r.HomeServer = nil, ""
	if len(aux.WellKnown) > 0 {
		var wk WellKnown
		if json.Unmarshal(aux.WellKnown, &wk) == nil && wk.Homeserver.BaseURL != "" {
			r.WellKnown = &wk
		}
	}
	if len(aux.HomeServer) > 0 {
		var hs string
		if json.Unmarshal(aux.HomeServer, &hs) == nil {
			r.HomeServer = hs
		}
	}
	return nil
}

func (r *LoginResponse) validate() error {
	switch {
	case r.UserID == "":
		return fmt.Errorf("%w: login reply lacks user_id", ErrMalformedResponse)
	case r.AccessToken.IsZero():
		return fmt.Errorf("%w: login reply lacks access_token", ErrMalformedResponse)
	case r.DeviceID == "":
		return fmt.Errorf("%w: login reply lacks device_id", ErrMalformedResponse)
	case !r.AccessToken.printable(), !r.RefreshToken.printable():
		return fmt.Errorf("%w: login reply has a token with characters a token cannot hold", ErrMalformedResponse)
	}
	return nil
}

// Tokens converts the reply into a TokenSet; the deadline is ReceivedAt + expires_in_ms.
func (r *LoginResponse) Tokens() TokenSet {
	return TokenSet{
		AccessToken:  r.AccessToken,
		RefreshToken: r.RefreshToken,
		IssuedAt:     r.ReceivedAt,
		ExpiresAt:    deadline(r.ReceivedAt, r.ExpiresInMS),
	}
}

// deadline turns a wire lifetime into an instant, once, at the edge. nil means never.
func deadline(received time.Time, ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return received.Add(msToDuration(*ms))
}

// msToDuration converts wire milliseconds, clamping negatives to 0 and huge values
// to about 100 years instead of overflowing.
func msToDuration(ms int64) time.Duration {
	const maxMS = int64(100 * 365 * 24 * time.Hour / time.Millisecond)
	switch {
	case ms <= 0:
		return 0
	case ms > maxMS || ms > math.MaxInt64/int64(time.Millisecond):
		return time.Duration(maxMS) * time.Millisecond
	}
	return time.Duration(ms) * time.Millisecond
}

// Login performs POST /login. The password or token never appears in errors, even
// if the server echoes it.
func (c *Client) Login(ctx context.Context, req LoginRequest) (*LoginResponse, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	var out LoginResponse
	at, err := c.do(ctx, call{ep: LoginEndpoint, body: req, out: &out, secrets: []Secret{req.Password, req.Token}})
	if err != nil {
		return nil, err
	}
	out.ReceivedAt = at
	return &out, nil
}

// FollowWellKnown applies a login reply's well_known: when it names another
// homeserver that answers /versions, it returns a client for it and true. Otherwise
// it returns c and false; err says why a differing base URL was not taken.
func (c *Client) FollowWellKnown(ctx context.Context, wk *WellKnown) (*Client, bool, error) {
	if wk == nil || wk.Homeserver.BaseURL == "" {
		return c, false, nil
	}
	base, err := NormaliseBaseURL(wk.Homeserver.BaseURL, c.insecure)
	if err != nil {
		return c, false, &DiscoveryError{Outcome: DiscoveryFailError, Reason: "login reply names an unusable homeserver URL", Err: err}
	}
	if base == c.baseURL {
		return c, false, nil
	}
	nc, err := c.WithBaseURL(base)
	if err != nil {
		return c, false, err
	}
	v, err := nc.Versions(ctx)
	if err == nil && len(v.Versions) == 0 {
		err = fmt.Errorf("%w: no versions listed", ErrMalformedResponse)
	}
	if err != nil {
		return c, false, &DiscoveryError{Outcome: DiscoveryFailError, Reason: Sanitize(base) + " from the login reply is not a working Matrix homeserver", Err: err}
	}
	return nc, true, nil
}
