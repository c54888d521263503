package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// WellKnownEndpoint is the discovery file, served on the server name's host (not
// necessarily by the homeserver).
var WellKnownEndpoint = Endpoint{
	Method: "GET",
	Path:   "/.well-known/matrix/client",
}

// WellKnown is the discovery document (also embedded in a login reply).
type WellKnown struct {
	Homeserver struct {
		BaseURL string `json:"base_url"`
	} `json:"m.homeserver"`
	IdentityServer *struct {
		BaseURL string `json:"base_url"`
	} `json:"m.identity_server,omitempty"`
}

// DiscoveryOutcome is the spec's verdict on a discovery attempt.
type DiscoveryOutcome int

// Outcomes, in the spec's words: IGNORE (no discovery), FAIL_PROMPT (tell the
// user, ask for a URL) and FAIL_ERROR (stop, do not guess further).
const (
	DiscoveryOK DiscoveryOutcome = iota
	DiscoveryIgnore
	DiscoveryFailPrompt
	DiscoveryFailError
)

func (o DiscoveryOutcome) String() string {
	switch o {
	case DiscoveryOK:
		return "OK"
	case DiscoveryIgnore:
		return "IGNORE"
	case DiscoveryFailPrompt:
		return "FAIL_PROMPT"
	case DiscoveryFailError:
		return "FAIL_ERROR"
	}
	return fmt.Sprintf("DiscoveryOutcome(%d)", int(o))
}

// DiscoveryError reports an IGNORE, FAIL_PROMPT or FAIL_ERROR outcome.
type DiscoveryError struct {
	Outcome DiscoveryOutcome
	Reason  string // what went wrong, for people
	Err     error  // underlying cause, may be nil
}

func (e *DiscoveryError) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason
}

func (e *DiscoveryError) Unwrap() error { return e.Err }

// DiscoveryResult is a homeserver ready to use: base URL checked with /versions.
type DiscoveryResult struct {
	BaseURL        string
	IdentityServer string
	Versions       *VersionsResponse
}

// DiscoverOptions tunes Discover and ResolveHomeserver.
type DiscoverOptions struct {
	HTTPClient        *http.Client
	AllowInsecureHTTP bool
	WellKnownURL      string // override for tests: full URL of the .well-known file
}

// ServerNameFromUserID returns the server name of a Matrix user ID, port included:
// "@a:example.org:8448" -> "example.org:8448". It splits at the first ':'.
func ServerNameFromUserID(userID string) (string, error) {
	if !strings.HasPrefix(userID, "@") {
		return "", errors.New("a Matrix ID starts with '@', like @alice:example.org")
	}
	i := strings.IndexByte(userID, ':')
	if i < 0 {
		return "", errors.New("a Matrix ID needs a server name after ':', like @alice:example.org")
	}
	if i == 1 {
		return "", errors.New("the Matrix ID has no user name before ':'")
	}
	for _, r := range userID[1:i] {
		if r <= ' ' || r == 0x7f {
			return "", errors.New("the Matrix ID's user name contains spaces or control characters")
		}
	}
	name := userID[i+1:]
	if err := validateServerName(name); err != nil {
		return "", err
	}
	return name, nil
}

// validateServerName checks the grammar host[:port] where host is a DNS name,
// an IPv4 address or a bracketed IPv6 literal.
func validateServerName(name string) error {
	if name == "" {
		return errors.New("empty server name")
	}
	if len(name) > 255 {
		return errors.New("server name too long")
	}
	host, port := splitServerName(name)
	if port != "" || strings.HasSuffix(name, ":") {
		if !validPort(port) {
			return fmt.Errorf("server name %q has an invalid port", Sanitize(name))
		}
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return fmt.Errorf("server name %q has an unclosed IPv6 bracket", Sanitize(name))
		}
		inner := host[1 : len(host)-1]
		if net.ParseIP(inner) == nil || !strings.Contains(inner, ":") {
			return fmt.Errorf("server name %q is not a valid IPv6 literal", Sanitize(name))
		}
		return nil
	}
	if host == "" {
		return errors.New("empty server name")
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("server name %q contains characters a host name cannot have", Sanitize(name))
		}
	}
	if strings.HasPrefix(host, ".") || strings.Contains(host, "..") {
		return fmt.Errorf("server name %q is not a valid host name", Sanitize(name))
	}
	return nil
}

// splitServerName separates host and port, keeping IPv6 brackets on the host.
func splitServerName(name string) (host, port string) {
	if strings.HasPrefix(name, "[") {
		if i := strings.IndexByte(name, ']'); i >= 0 {
			host, rest := name[:i+1], name[i+1:]
			if strings.HasPrefix(rest, ":") {
				return host, rest[1:]
			}
			if rest != "" {
				return name, ""
			}
			return host, ""
		}
		return name, ""
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return name, ""
}

// WellKnownHost drops the port from a server name, keeping [v6] brackets.
func WellKnownHost(serverName string) string {
	host, _ := splitServerName(serverName)
	return host
}

// wellKnownURL picks where the discovery file lives. Loopback server names keep
// their port and use http, so local homeservers are discoverable.
func wellKnownURL(serverName string, opt DiscoverOptions) string {
	if opt.WellKnownURL != "" {
		return opt.WellKnownURL
	}
	host, port := splitServerName(serverName)
	if IsLoopbackHost(host) && port != "" {
		return "http://" + host + ":" + port + WellKnownEndpoint.Path
	}
	return "https://" + host + WellKnownEndpoint.Path
}

// Discover runs .well-known discovery for a server name and checks the result with
// /versions. Outcomes other than success are *DiscoveryError values.
func Discover(ctx context.Context, serverName string, opt DiscoverOptions) (*DiscoveryResult, error) {
	if err := validateServerName(serverName); err != nil {
		return nil, &DiscoveryError{Outcome: DiscoveryFailError, Reason: "invalid server name", Err: err}
	}
	wkURL := wellKnownURL(serverName, opt)
	u, err := url.Parse(wkURL)
	if err != nil || u.Host == "" {
		return nil, &DiscoveryError{Outcome: DiscoveryFailError, Reason: "invalid discovery URL"}
	}
	origin, err := NewClient(u.Scheme+"://"+u.Host, WithHTTPClient(opt.HTTPClient), WithInsecureHTTP(opt.AllowInsecureHTTP))
	if err != nil {
		return nil, &DiscoveryError{Outcome: DiscoveryFailError, Reason: "cannot fetch discovery information", Err: err}
	}
	var body []byte
	_, err = origin.do(ctx, call{ep: WellKnownEndpoint, rawURL: u.String(), out: &body})
	if err != nil {
		var me *Error
		if errors.As(err, &me) && me.Status == http.StatusNotFound {
			return nil, &DiscoveryError{Outcome: DiscoveryIgnore, Reason: "no discovery information for " + Sanitize(serverName)}
		}
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, &DiscoveryError{Outcome: DiscoveryFailPrompt, Reason: "discovery failed for " + Sanitize(serverName), Err: err}
	}
	base, identity, derr := parseWellKnown(body)
	if derr != nil {
		return nil, derr
	}
	return checkDiscovered(ctx, base, identity, opt)
}

// ParseWellKnown decodes a discovery document the way Discover judges it. The error
// is a *DiscoveryError (FAIL_PROMPT for a missing base_url, FAIL_ERROR for a bad URL).
func ParseWellKnown(body []byte) (*WellKnown, error) {
	base, identity, derr := parseWellKnown(body)
	if derr != nil {
		return nil, derr
	}
	wk := &WellKnown{}
	wk.Homeserver.BaseURL = base
	if identity != "" {
		wk.IdentityServer = &struct {
			BaseURL string `json:"base_url"`
		}{identity}
	}
	return wk, nil
}

func parseWellKnown(body []byte) (base, identity string, derr *DiscoveryError) {
	prompt := func(reason string) (string, string, *DiscoveryError) {
		return "", "", &DiscoveryError{Outcome: DiscoveryFailPrompt, Reason: reason}
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return prompt("discovery information is not a JSON object")
	}
	var hs map[string]json.RawMessage
	if err := json.Unmarshal(doc["m.homeserver"], &hs); err != nil || hs == nil {
		return prompt("discovery information has no m.homeserver")
	}
	if err := json.Unmarshal(hs["base_url"], &base); err != nil || base == "" {
		return prompt("discovery information has no m.homeserver.base_url")
	}
	if err := checkURLSyntax(base); err != nil {
		return "", "", &DiscoveryError{Outcome: DiscoveryFailError, Reason: "discovered homeserver URL is invalid", Err: err}
	}
	if raw, ok := doc["m.identity_server"]; ok {
		var is map[string]json.RawMessage
		if err := json.Unmarshal(raw, &is); err != nil || is == nil {
			return prompt("discovery information has a malformed m.identity_server")
		}
		if err := json.Unmarshal(is["base_url"], &identity); err != nil || identity == "" {
			return prompt("discovery information has no m.identity_server.base_url")
		}
		if err := checkURLSyntax(identity); err != nil {
			return "", "", &DiscoveryError{Outcome: DiscoveryFailError, Reason: "discovered identity server URL is invalid", Err: err}
		}
	}
	return base, identity, nil
}

// checkURLSyntax accepts absolute http(s) URLs with a host; the scheme policy is applied later.
func checkURLSyntax(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if s := strings.ToLower(u.Scheme); s != "https" && s != "http" {
		return errors.New("not an http(s) URL")
	}
	if u.Host == "" {
		return errors.New("URL has no host")
	}
	return nil
}

// checkDiscovered normalises a discovered base URL and insists on a well-formed /versions reply.
func checkDiscovered(ctx context.Context, base, identity string, opt DiscoverOptions) (*DiscoveryResult, error) {
	c, err := NewClient(base, WithHTTPClient(opt.HTTPClient), WithInsecureHTTP(opt.AllowInsecureHTTP))
	if err != nil {
		return nil, &DiscoveryError{Outcome: DiscoveryFailError, Reason: "homeserver URL is unusable", Err: err}
	}
	v, err := c.checkVersions(ctx)
	if err != nil {
		return nil, err
	}
	res := &DiscoveryResult{BaseURL: c.BaseURL(), Versions: v}
	if identity != "" {
		// Identity servers play no part in signing in, so they are not probed.
		res.IdentityServer = strings.TrimRight(identity, "/")
	}
	return res, nil
}

// checkVersions insists on a well-formed /versions reply. Failures are
// *DiscoveryError values (FAIL_ERROR) that tell a reply no homeserver would
// give apart from a homeserver that could not be reached or had trouble.
func (c *Client) checkVersions(ctx context.Context) (*VersionsResponse, error) {
	v, err := c.Versions(ctx)
	base := Sanitize(c.BaseURL())
	switch {
	case errors.Is(err, context.Canceled):
		return nil, err
	case answeredNotMatrix(err):
		return nil, &DiscoveryError{Outcome: DiscoveryFailError, Reason: base + " is not a Matrix homeserver (check the address and its path)", Err: err}
	case err != nil:
		return nil, &DiscoveryError{Outcome: DiscoveryFailError, Reason: base + " is not a working Matrix homeserver", Err: err}
	case len(v.Versions) == 0:
		return nil, &DiscoveryError{Outcome: DiscoveryFailError, Reason: base + " is not a Matrix homeserver: it lists no Matrix versions"}
	}
	return v, nil
}

// answeredNotMatrix reports a /versions failure showing that no Matrix
// homeserver is there (a 404 or other refusal, an HTML page, JSON that is not
// the versions reply), as opposed to one that is unreachable or failing.
func answeredNotMatrix(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrMalformedResponse), errors.Is(err, ErrResponseTooLarge):
		return true
	case IsTransient(err):
		return false
	}
	_, ok := asError(err)
	return ok
}

// CheckHomeserver asks /versions whether a Matrix homeserver answers at the
// client's base URL, for when another endpoint answered as if none did (a 404,
// an HTML page, JSON that does not parse). It returns a *DiscoveryError when
// the answer shows none does, and nil when one does or when the check cannot
// tell (the server unreachable or failing): the caller's own error then stands.
func (c *Client) CheckHomeserver(ctx context.Context) error {
	_, err := c.checkVersions(ctx)
	var de *DiscoveryError
	if errors.As(err, &de) && (de.Err == nil || answeredNotMatrix(de.Err)) {
		return err
	}
	return nil
}

// ResolveHomeserver turns what a user typed into a checked homeserver. An MXID
// ("@u:example.org") runs discovery; a bare host ("example.org") tries discovery on
// it and falls back to https://host; a URL with a scheme is used as given. Every
// path ends with a /versions check.
func ResolveHomeserver(ctx context.Context, input string, opt DiscoverOptions) (*DiscoveryResult, error) {
	input = strings.TrimSpace(input)
	if input == "" {
		return nil, &DiscoveryError{Outcome: DiscoveryFailPrompt, Reason: "enter a homeserver URL or a Matrix ID"}
	}
	if strings.HasPrefix(input, "@") {
		name, err := ServerNameFromUserID(input)
		if err != nil {
			return nil, &DiscoveryError{Outcome: DiscoveryFailPrompt, Reason: "not a valid Matrix ID", Err: err}
		}
		res, err := Discover(ctx, name, opt)
		var de *DiscoveryError
		if errors.As(err, &de) && de.Outcome == DiscoveryIgnore {
			// No .well-known: the spec allows trying the server name itself.
			if fb, ferr := checkDiscovered(ctx, hostURL(name), "", opt); ferr == nil {
				return fb, nil
			}
			return nil, &DiscoveryError{Outcome: DiscoveryIgnore, Reason: "no discovery information for " + Sanitize(name) + "; enter the homeserver URL"}
		}
		return res, err
	}
	if !strings.Contains(input, "://") {
		host := strings.TrimRight(input, "/")
		if err := validateServerName(host); err != nil {
			return nil, &DiscoveryError{Outcome: DiscoveryFailPrompt, Reason: "not a valid homeserver address", Err: err}
		}
		res, err := Discover(ctx, host, opt)
		var de *DiscoveryError
		if err == nil {
			return res, nil
		}
		if !errors.As(err, &de) || de.Outcome == DiscoveryFailError {
			return nil, err
		}
		input = hostURL(host)
	}
	if err := checkURLSyntax(input); err != nil {
		return nil, &DiscoveryError{Outcome: DiscoveryFailPrompt, Reason: "not a valid homeserver URL", Err: err}
	}
	return checkDiscovered(ctx, input, "", opt)
}

// hostURL is the URL a bare server name stands for: https, or http for loopback.
func hostURL(serverName string) string {
	host, _ := splitServerName(serverName)
	if IsLoopbackHost(host) {
		return "http://" + serverName
	}
	return "https://" + serverName
}
