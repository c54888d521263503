package matrix

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
)

// OAuthClient is what a session signed in through the OAuth 2.0 API needs after
// sign-in: where to refresh and revoke, as which client, and the user's account
// page. Nothing here is secret, so it lives in the account index.
type OAuthClient struct {
	Issuer                   string   `json:"issuer"`
	ClientID                 string   `json:"client_id"`
	TokenEndpoint            string   `json:"token_endpoint"`
	RevocationEndpoint       string   `json:"revocation_endpoint,omitempty"`
	AccountManagementURI     string   `json:"account_management_uri,omitempty"`
	AccountManagementActions []string `json:"account_management_actions,omitempty"`
}

// OAuthClientOf records a registered client of the server meta describes.
func OAuthClientOf(meta *AuthMetadata, clientID string) OAuthClient {
	return OAuthClient{
		Issuer:                   meta.Issuer,
		ClientID:                 clientID,
		TokenEndpoint:            meta.TokenEndpoint,
		RevocationEndpoint:       meta.RevocationEndpoint,
		AccountManagementURI:     meta.AccountManagementURI,
		AccountManagementActions: slices.Clone(meta.AccountManagementActionsSupported),
	}
}

// IssuedTo is oc as the client t was issued to: t's own client ID when it
// records one (see TokenSet.ClientID), oc's otherwise.
func (oc OAuthClient) IssuedTo(t TokenSet) OAuthClient {
	if t.ClientID != "" {
		oc.ClientID = t.ClientID
	}
	return oc
}

// metadata is the part of the server's metadata the token and revocation calls use.
func (oc OAuthClient) metadata() *AuthMetadata {
	return &AuthMetadata{Issuer: oc.Issuer, TokenEndpoint: oc.TokenEndpoint, RevocationEndpoint: oc.RevocationEndpoint}
}

// Valid reports whether the record can refresh a session.
func (oc OAuthClient) Valid() bool { return oc.ClientID != "" && oc.TokenEndpoint != "" }

// RefreshOAuth redeems a refresh token at the token endpoint as oc's client.
func (c *Client) RefreshOAuth(ctx context.Context, oc OAuthClient, refreshToken Secret) (*OAuthTokenResponse, error) {
	if refreshToken.IsZero() {
		return nil, ErrNoRefreshToken
	}
	if !oc.Valid() {
		return nil, errors.New("this account's OAuth 2.0 client is not recorded; sign in again")
	}
	resp, err := c.RequestToken(ctx, oc.metadata(), TokenRequest{GrantType: GrantRefreshToken, ClientID: oc.ClientID, RefreshToken: refreshToken})
	if err != nil {
		return nil, err
	}
	if err := resp.validate(); err != nil {
		return nil, &TransportError{Endpoint: "POST token_endpoint", Err: err}
	}
	return resp, nil
}

// RevokeOAuth ends a session by revoking one of its tokens (RFC 7009) as oc's client.
func (c *Client) RevokeOAuth(ctx context.Context, oc OAuthClient, token Secret, hint string) error {
	if oc.RevocationEndpoint == "" {
		return errors.New("the authorization server offers no revocation endpoint")
	}
	return c.RevokeToken(ctx, oc.metadata(), oc.ClientID, token, hint)
}

// IsOAuthSessionEnded reports a token endpoint refusal that ends the session:
// invalid_grant or any other 4xx except a rate limit. 5xx, 429 and network
// failures are transient: the refresh token stays and is tried again.
func IsOAuthSessionEnded(err error) bool {
	e, ok := AsOAuthError(err)
	return ok && e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests
}

// AccountManagementURL is the user's account page with an action for a device
// (spec: account_management_uri with action and device_id query parameters).
// An action the server does not list is still linked: the page then opens on
// its start. ok is false when the server named no account page.
func (oc OAuthClient) AccountManagementURL(action, deviceID string) (link string, ok bool) {
	if oc.AccountManagementURI == "" {
		return "", false
	}
	u, err := url.Parse(oc.AccountManagementURI)
	if err != nil {
		return "", false
	}
	q := u.Query()
	if action != "" {
		q.Set("action", action)
	}
	if deviceID != "" {
		q.Set("device_id", deviceID)
	}
	u.RawQuery = q.Encode()
	return u.String(), true
}

// Account management actions (spec, account_management_actions_supported).
const (
	AccountActionProfile      = "org.matrix.profile"
	AccountActionDevicesList  = "org.matrix.devices_list"
	AccountActionDeviceView   = "org.matrix.device_view"
	AccountActionDeviceDelete = "org.matrix.device_delete"
)
