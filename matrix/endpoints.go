package matrix

// Endpoint describes one Client-Server API endpoint: how it is called and what it needs.
// Each endpoint family file declares its own metadata next to its request and response types.
type Endpoint struct {
	Method      string
	Path        string   // stable path, e.g. "/_matrix/client/v3/login"
	History     []string // older / unstable paths
	Auth        bool     // needs an access token
	RateLimited bool
}

// String names the endpoint as "METHOD /path" (the stable path template, never a query).
func (e Endpoint) String() string { return e.Method + " " + e.Path }

// HasPath reports whether p is the stable path or one of the historical ones.
func (e Endpoint) HasPath(p string) bool {
	if p == e.Path {
		return true
	}
	for _, h := range e.History {
		if h == p {
			return true
		}
	}
	return false
}

// AllEndpoints lists the metadata of every endpoint this package calls.
func AllEndpoints() []Endpoint {
	return []Endpoint{
		WellKnownEndpoint, VersionsEndpoint,
		LoginFlowsEndpoint, LoginEndpoint, RefreshEndpoint, GetLoginTokenEndpoint,
		WhoAmIEndpoint, LogoutEndpoint, LogoutAllEndpoint, CapabilitiesEndpoint,
		DevicesEndpoint, DeleteDeviceEndpoint, DeleteDevicesEndpoint, AuthFallbackEndpoint,
		AuthMetadataEndpoint, AuthIssuerEndpoint,
	}
}
