package matrix

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RefreshEndpoint is POST /refresh. The refresh token in the body is the
// credential, so no access token is sent.
var RefreshEndpoint = Endpoint{
	Method: "POST",
	Path:   "/_matrix/client/v3/refresh",
	History: []string{
		"/_matrix/client/r0/refresh",
		"/_matrix/client/v1/refresh",
		"/_matrix/client/unstable/org.matrix.msc2918/refresh",
	},
	RateLimited: true,
}

// RefreshRequest is the body of POST /refresh.
type RefreshRequest struct {
	RefreshToken Secret `json:"refresh_token"`
}

// RefreshResponse is the reply of POST /refresh.
type RefreshResponse struct {
	AccessToken  Secret    `json:"access_token"`
	RefreshToken Secret    `json:"refresh_token,omitempty"`
	ExpiresInMS  *int64    `json:"expires_in_ms,omitempty"`
	ReceivedAt   time.Time `json:"-"`
}

func (r *RefreshResponse) validate() error {
	if r.AccessToken.IsZero() {
		return fmt.Errorf("%w: refresh reply lacks access_token", ErrMalformedResponse)
	}
	if !r.AccessToken.printable() || !r.RefreshToken.printable() {
		return fmt.Errorf("%w: refresh reply has a token with characters a token cannot hold", ErrMalformedResponse)
	}
	return nil
}

// Apply returns the token set after this refresh. A reply without refresh_token
// keeps the old one: the server means "reuse it", never "forget it".
func (r *RefreshResponse) Apply(old TokenSet) TokenSet {
	t := TokenSet{
		AccessToken:  r.AccessToken,
		RefreshToken: r.RefreshToken,
		IssuedAt:     r.ReceivedAt,
		ExpiresAt:    deadline(r.ReceivedAt, r.ExpiresInMS),
	}
	if t.RefreshToken.IsZero() {
		t.RefreshToken = old.RefreshToken
	}
	return t
}

// ErrNoRefreshToken is returned by Refresh when there is nothing to refresh with.
var ErrNoRefreshToken = errors.New("no refresh token")

// Refresh exchanges a refresh token for new tokens. It sends no Authorization header.
func (c *Client) Refresh(ctx context.Context, refreshToken Secret) (*RefreshResponse, error) {
	if refreshToken.IsZero() {
		return nil, ErrNoRefreshToken
	}
	var out RefreshResponse
	at, err := c.do(ctx, call{
		ep:      RefreshEndpoint,
		body:    RefreshRequest{RefreshToken: refreshToken},
		out:     &out,
		secrets: []Secret{refreshToken},
	})
	if err != nil {
		return nil, err
	}
	out.ReceivedAt = at
	return &out, nil
}
