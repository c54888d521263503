package homeserver

import (
	"net"
	"net/http"
	"time"
)

// The exported surface other packages build on; a change here breaks them.
var (
	_ func(Options) *Server                = New
	_ func(net.Listener, Options) *Server  = NewOnListener
	_ func(*Server) string                 = (*Server).URL
	_ func(*Server) string                 = (*Server).ServerName
	_ func(*Server)                        = (*Server).Close
	_ func(*Server, string, string) string = (*Server).AddUser
	_ func(*Server, string, bool)          = (*Server).SetUserLocked
	_ func(*Server, string, bool)          = (*Server).SetUserDeactivated
	_ func(*Server, string, string)        = (*Server).SoftLogoutDevice
	_ func(*Server, string, string)        = (*Server).HardLogoutDevice
	_ func(*Server, string, ...string)     = (*Server).SetUIAStages
	_ func(*Server, string)                = (*Server).CompleteFallback
	_ func(*Server, Fault)                 = (*Server).InjectFault
	_ func(*Server)                        = (*Server).ClearFaults
	_ func(*Server) []LoggedRequest        = (*Server).Requests
	_ func(*Server)                        = (*Server).ResetLog
	_ func(*Server) int                    = (*Server).ExpiredTokenUses
	_ func(*Server) int                    = (*Server).RefreshCount
	_ func(*Server, string) []string       = (*Server).Devices
	_                                      = Options{ServerName: "", AccessTokenLifetime: time.Second, LoginTokenLifetime: time.Second, LoginTokenRateLimit: true, NoRefresh: true, NoGetToken: true, GetTokenUnstableOnly: true, OAuthOnly: true, FailedLoginLimit: 1}
	_                                      = Fault{PathPrefix: "", Status: 1, Body: "", Header: http.Header{}, DropAfterHandling: true, Truncate: true, Delay: time.Second, Count: 1}
	_                                      = LoggedRequest{Time: time.Time{}, Method: "", Path: "", Status: 1, Authenticated: true, TokenExpired: true, UserID: "", DeviceID: ""}
)
