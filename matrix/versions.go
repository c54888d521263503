package matrix

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// VersionsEndpoint is GET /versions: which spec versions and unstable features the server has.
var VersionsEndpoint = Endpoint{
	Method: "GET",
	Path:   "/_matrix/client/versions",
}

// VersionsResponse is the reply of GET /_matrix/client/versions.
type VersionsResponse struct {
	Versions         []string        `json:"versions"`
	UnstableFeatures map[string]bool `json:"unstable_features,omitempty"`
}

// UnmarshalJSON keeps only boolean unstable_features: one odd vendor flag must not
// make a homeserver look broken.
func (v *VersionsResponse) UnmarshalJSON(data []byte) error {
	var raw struct {
		Versions         []string                   `json:"versions"`
		UnstableFeatures map[string]json.RawMessage `json:"unstable_features"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	v.Versions = raw.Versions
	v.UnstableFeatures = nil
	for k, r := range raw.UnstableFeatures {
		var b bool
		if json.Unmarshal(r, &b) == nil {
			if v.UnstableFeatures == nil {
				v.UnstableFeatures = make(map[string]bool, len(raw.UnstableFeatures))
			}
			v.UnstableFeatures[k] = b
		}
	}
	return nil
}

func (v *VersionsResponse) validate() error {
	if v.Versions == nil {
		return fmt.Errorf("%w: no versions list", ErrMalformedResponse)
	}
	return nil
}

// versionKey orders spec versions: every r0.x.y sorts below v1.0.
type versionKey struct{ era, major, minor, patch int }

func parseVersion(s string) (versionKey, bool) {
	if len(s) < 2 {
		return versionKey{}, false
	}
	var era int
	switch s[0] {
	case 'v':
		era = 1
	case 'r':
		era = 0
	default:
		return versionKey{}, false
	}
	parts := strings.Split(s[1:], ".")
	if len(parts) < 2 || len(parts) > 3 {
		return versionKey{}, false
	}
	nums := [3]int{}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return versionKey{}, false
		}
		nums[i] = n
	}
	return versionKey{era, nums[0], nums[1], nums[2]}, true
}

func (a versionKey) less(b versionKey) bool {
	if a.era != b.era {
		return a.era < b.era
	}
	if a.major != b.major {
		return a.major < b.major
	}
	if a.minor != b.minor {
		return a.minor < b.minor
	}
	return a.patch < b.patch
}

// AtLeast reports whether the server advertises version (e.g. "v1.3") or a later one.
// r0.x versions count below v1.0; unparseable entries are ignored.
func (v *VersionsResponse) AtLeast(version string) bool {
	if v == nil {
		return false
	}
	want, ok := parseVersion(version)
	if !ok {
		return false
	}
	for _, s := range v.Versions {
		if have, ok := parseVersion(s); ok && !have.less(want) {
			return true
		}
	}
	return false
}

// Unstable reports whether an unstable feature flag is advertised and true.
func (v *VersionsResponse) Unstable(feature string) bool {
	return v != nil && v.UnstableFeatures[feature]
}

// SupportsRefresh reports whether the server claims refresh tokens (spec v1.3).
// Servers may implement features beyond what they advertise, so this is a hint only.
func (v *VersionsResponse) SupportsRefresh() bool { return v.AtLeast("v1.3") }

// Versions fetches GET /_matrix/client/versions without authentication.
func (c *Client) Versions(ctx context.Context) (*VersionsResponse, error) {
	var out VersionsResponse
	if _, err := c.do(ctx, call{ep: VersionsEndpoint, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
