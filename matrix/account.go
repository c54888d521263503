package matrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// WhoAmIEndpoint is GET /account/whoami: a cheap liveness check of an access token.
var WhoAmIEndpoint = Endpoint{
	Method:      "GET",
	Path:        "/_matrix/client/v3/account/whoami",
	History:     []string{"/_matrix/client/r0/account/whoami"},
	Auth:        true,
	RateLimited: true,
}

// LogoutEndpoint is POST /logout: revokes the token and deletes its device.
var LogoutEndpoint = Endpoint{
	Method:  "POST",
	Path:    "/_matrix/client/v3/logout",
	History: []string{"/_matrix/client/r0/logout"},
	Auth:    true,
}

// LogoutAllEndpoint is POST /logout/all: revokes every token of the user.
var LogoutAllEndpoint = Endpoint{
	Method:  "POST",
	Path:    "/_matrix/client/v3/logout/all",
	History: []string{"/_matrix/client/r0/logout/all"},
	Auth:    true,
}

// CapabilitiesEndpoint is GET /capabilities: per-user feature switches.
var CapabilitiesEndpoint = Endpoint{
	Method:      "GET",
	Path:        "/_matrix/client/v3/capabilities",
	History:     []string{"/_matrix/client/r0/capabilities"},
	Auth:        true,
	RateLimited: true,
}

// DevicesEndpoint is GET /devices: the user's devices.
var DevicesEndpoint = Endpoint{
	Method:  "GET",
	Path:    "/_matrix/client/v3/devices",
	History: []string{"/_matrix/client/r0/devices"},
	Auth:    true,
}

// DeleteDeviceEndpoint is DELETE /devices/{deviceId}, behind UIA.
var DeleteDeviceEndpoint = Endpoint{
	Method:  "DELETE",
	Path:    "/_matrix/client/v3/devices/{deviceId}",
	History: []string{"/_matrix/client/r0/devices/{deviceId}"},
	Auth:    true,
}

// DeleteDevicesEndpoint is POST /delete_devices, behind UIA.
var DeleteDevicesEndpoint = Endpoint{
	Method:  "POST",
	Path:    "/_matrix/client/v3/delete_devices",
	History: []string{"/_matrix/client/r0/delete_devices"},
	Auth:    true,
}

// WhoAmIResponse is the reply of GET /account/whoami.
type WhoAmIResponse struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id,omitempty"`
	IsGuest  bool   `json:"is_guest,omitempty"`
}

func (r *WhoAmIResponse) validate() error {
	if r.UserID == "" {
		return fmt.Errorf("%w: whoami reply lacks user_id", ErrMalformedResponse)
	}
	return nil
}

// WhoAmI asks who owns accessToken.
func (c *Client) WhoAmI(ctx context.Context, accessToken Secret) (*WhoAmIResponse, error) {
	var out WhoAmIResponse
	if _, err := c.do(ctx, call{ep: WhoAmIEndpoint, token: accessToken, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout revokes accessToken and deletes its device. A 401 M_UNKNOWN_TOKEN means it
// was already gone; callers clear local state either way.
func (c *Client) Logout(ctx context.Context, accessToken Secret) error {
	_, err := c.do(ctx, call{ep: LogoutEndpoint, token: accessToken})
	return err
}

// LogoutAll revokes every access token of the user, this one included.
func (c *Client) LogoutAll(ctx context.Context, accessToken Secret) error {
	_, err := c.do(ctx, call{ep: LogoutAllEndpoint, token: accessToken})
	return err
}

// CapabilitiesResponse is the reply of GET /capabilities.
type CapabilitiesResponse struct {
	Capabilities map[string]json.RawMessage `json:"capabilities"`
}

func (r *CapabilitiesResponse) validate() error {
	if r.Capabilities == nil {
		return fmt.Errorf("%w: capabilities reply lacks capabilities", ErrMalformedResponse)
	}
	return nil
}

// boolCapability reads {"enabled": bool}; ok is false when absent or malformed.
func (r *CapabilitiesResponse) boolCapability(name string) (enabled, ok bool) {
	if r == nil {
		return false, false
	}
	raw, found := r.Capabilities[name]
	if !found {
		return false, false
	}
	var v struct {
		Enabled *bool `json:"enabled"`
	}
	if json.Unmarshal(raw, &v) != nil || v.Enabled == nil {
		return false, false
	}
	return *v.Enabled, true
}

// GetLoginTokenEnabled reads m.get_login_token.enabled (or its MSC3882 name); absent means false.
func (r *CapabilitiesResponse) GetLoginTokenEnabled() bool {
	if on, ok := r.boolCapability("m.get_login_token"); ok {
		return on
	}
	on, _ := r.boolCapability("org.matrix.msc3882.get_login_token")
	return on
}

// ChangePasswordEnabled reads m.change_password.enabled; absent means true.
func (r *CapabilitiesResponse) ChangePasswordEnabled() bool {
	if on, ok := r.boolCapability("m.change_password"); ok {
		return on
	}
	return true
}

// Capabilities fetches GET /capabilities; values are per user, so never share them across accounts.
func (c *Client) Capabilities(ctx context.Context, accessToken Secret) (*CapabilitiesResponse, error) {
	var out CapabilitiesResponse
	if _, err := c.do(ctx, call{ep: CapabilitiesEndpoint, token: accessToken, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Device is one of the user's devices.
type Device struct {
	DeviceID    string `json:"device_id"`
	DisplayName string `json:"display_name,omitempty"`
	LastSeenIP  string `json:"last_seen_ip,omitempty"`
	LastSeenTS  *int64 `json:"last_seen_ts,omitempty"`
}

// DevicesResponse is the reply of GET /devices.
type DevicesResponse struct {
	Devices []Device `json:"devices"`
}

func (r *DevicesResponse) validate() error {
	for _, d := range r.Devices {
		if d.DeviceID == "" {
			return fmt.Errorf("%w: a device lacks device_id", ErrMalformedResponse)
		}
	}
	return nil
}

// Devices lists the user's devices. Display names and IPs are server text, so they
// come back sanitised for display.
func (c *Client) Devices(ctx context.Context, accessToken Secret) ([]Device, error) {
	var out DevicesResponse
	if _, err := c.do(ctx, call{ep: DevicesEndpoint, token: accessToken, out: &out}); err != nil {
		return nil, err
	}
	devs := out.Devices
	if devs == nil {
		devs = []Device{}
	}
	for i := range devs {
		devs[i].DisplayName = Sanitize(devs[i].DisplayName)
		devs[i].LastSeenIP = Sanitize(devs[i].LastSeenIP)
	}
	return devs, nil
}

// DeleteDeviceRequest is the body of DELETE /devices/{deviceId}.
type DeleteDeviceRequest struct {
	Auth *AuthData `json:"auth,omitempty"`
}

// DeleteDevicesRequest is the body of POST /delete_devices.
type DeleteDevicesRequest struct {
	Devices []string  `json:"devices"`
	Auth    *AuthData `json:"auth,omitempty"`
}

// DeleteDevice deletes one device. Without auth (or with incomplete auth) it fails
// with a *UIAChallenge.
func (c *Client) DeleteDevice(ctx context.Context, accessToken Secret, deviceID string, auth *AuthData) error {
	if deviceID == "" {
		return errors.New("no device ID")
	}
	path := strings.Replace(DeleteDeviceEndpoint.Path, "{deviceId}", url.PathEscape(deviceID), 1)
	_, err := c.do(ctx, call{ep: DeleteDeviceEndpoint, path: path, token: accessToken, body: DeleteDeviceRequest{Auth: auth}, secrets: auth.secrets()})
	return err
}

// DeleteDevices deletes several devices at once, behind UIA like DeleteDevice.
func (c *Client) DeleteDevices(ctx context.Context, accessToken Secret, deviceIDs []string, auth *AuthData) error {
	ids := deviceIDs
	if ids == nil {
		ids = []string{} // "devices" is required, even when empty
	}
	_, err := c.do(ctx, call{ep: DeleteDevicesEndpoint, token: accessToken, body: DeleteDevicesRequest{Devices: ids, Auth: auth}, secrets: auth.secrets()})
	return err
}
