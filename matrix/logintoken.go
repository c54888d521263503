package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Unstable MSC3882 paths: rev 1 (flag org.matrix.msc3882.get_login_token on the
// flow or capability) and rev 0 (unstable_features["org.matrix.msc3882"]).
const (
	GetLoginTokenUnstablePath     = "/_matrix/client/unstable/org.matrix.msc3882/login/get_token"
	GetLoginTokenUnstableRev0Path = "/_matrix/client/unstable/org.matrix.msc3882/login/token"
	// UnstableLoginTokenFeature is the /versions flag of MSC3882 rev 0.
	UnstableLoginTokenFeature = "org.matrix.msc3882"
)

// GetLoginTokenEndpoint is POST /login/get_token (spec v1.7; note the v1 prefix):
// mints a single-use m.login.token behind UIA.
var GetLoginTokenEndpoint = Endpoint{
	Method:      "POST",
	Path:        "/_matrix/client/v1/login/get_token",
	History:     []string{GetLoginTokenUnstablePath, GetLoginTokenUnstableRev0Path},
	Auth:        true,
	RateLimited: true,
}

// GetLoginTokenRequest is the body of get_token; it is always sent as a JSON object,
// {} on the first call, because servers reject an empty body.
type GetLoginTokenRequest struct {
	Auth *AuthData `json:"auth,omitempty"`
}

// GetLoginTokenResponse is the minted token and its remaining lifetime.
type GetLoginTokenResponse struct {
	LoginToken  Secret    `json:"login_token"`
	ExpiresInMS int64     `json:"expires_in_ms"`
	ReceivedAt  time.Time `json:"-"`
}

// UnmarshalJSON also accepts the legacy expires_in (seconds) that MSC3882 rev 0
// servers send, when expires_in_ms is missing.
func (r *GetLoginTokenResponse) UnmarshalJSON(data []byte) error {
	var aux struct {
		LoginToken  Secret `json:"login_token"`
		ExpiresInMS *int64 `json:"expires_in_ms"`
		ExpiresIn   *int64 `json:"expires_in"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	r.LoginToken = aux.LoginToken
	r.ExpiresInMS = -1 // marks "absent" for validate
	switch {
	case aux.ExpiresInMS != nil:
		r.ExpiresInMS = *aux.ExpiresInMS
	case aux.ExpiresIn != nil && *aux.ExpiresIn >= 0 && *aux.ExpiresIn < 1<<40:
		r.ExpiresInMS = *aux.ExpiresIn * 1000
	}
	return nil
}

func (r *GetLoginTokenResponse) validate() error {
	if r.LoginToken.IsZero() {
		return fmt.Errorf("%w: get_token reply lacks login_token", ErrMalformedResponse)
	}
	if !r.LoginToken.printable() {
		return fmt.Errorf("%w: get_token reply has a login_token with characters a token cannot hold", ErrMalformedResponse)
	}
	if r.ExpiresInMS < 0 {
		return fmt.Errorf("%w: get_token reply lacks expires_in_ms", ErrMalformedResponse)
	}
	return nil
}

// ExpiresAt is when the server stops accepting the token.
func (r *GetLoginTokenResponse) ExpiresAt() time.Time {
	return r.ReceivedAt.Add(msToDuration(r.ExpiresInMS))
}

// LoginTokenPath picks the get_token path the server advertises: the stable one for
// v1.7+ or a get_login_token flow flag, else an MSC3882 path only where advertised.
// Callers keep the path for a whole UIA session (servers reject a changed path).
func LoginTokenPath(v *VersionsResponse, flows *LoginFlowsResponse) (string, bool) {
	switch {
	case v.AtLeast("v1.7") || flows.advertises(true):
		return GetLoginTokenEndpoint.Path, true
	case flows.advertises(false):
		return GetLoginTokenUnstablePath, true
	case v.Unstable(UnstableLoginTokenFeature):
		return GetLoginTokenUnstableRev0Path, true
	}
	return "", false
}

// GetLoginToken mints a login token at path ("" means the stable path). A 401 with
// flows comes back as *UIAChallenge; answer it with req.Auth and the same path.
func (c *Client) GetLoginToken(ctx context.Context, accessToken Secret, path string, req GetLoginTokenRequest) (*GetLoginTokenResponse, error) {
	if path == "" {
		path = GetLoginTokenEndpoint.Path
	}
	if !GetLoginTokenEndpoint.HasPath(path) {
		return nil, fmt.Errorf("unknown get_token path %q", Sanitize(path))
	}
	ep := GetLoginTokenEndpoint
	ep.Path = path // errors name the path actually used
	var out GetLoginTokenResponse
	at, err := c.do(ctx, call{ep: ep, token: accessToken, body: req, out: &out, secrets: req.Auth.secrets()})
	if err != nil {
		return nil, err
	}
	out.ReceivedAt = at
	return &out, nil
}
