package app

import (
	"mxauth/matrix"
	"mxauth/matrix/session"
)

// Account is what the front ends show of one account: no secrets.
type Account struct {
	UserID, DeviceID, Homeserver, DisplayName string
	Status                                    session.Status
	IsDefault                                 bool
	// Kind is the server's kind recorded at sign-in (0: not recorded, an older entry).
	Kind matrix.ServerAuthKind
	// OAuth: the session was signed in through the OAuth 2.0 API.
	OAuth bool
	// AccountURL is the server's account-management page ("" if none is known).
	AccountURL string
}

// LoginParams is a password sign-in, as entered in the form or on the command line.
type LoginParams struct {
	Homeserver, User string
	Password         matrix.Secret
	DeviceName       string
	DeviceID         string // reuse on sign-in-again
}

// ServerInfo is what a homeserver supports, for the details screen.
type ServerInfo struct {
	Versions      []string
	RefreshTokens bool
	GetLoginToken bool
	Note          string
	Kind          matrix.ServerAuthKind // how the server signs users in (0: could not tell)
}

// LoginTokenCheck says whether an account can mint a login token.
type LoginTokenCheck struct {
	Supported bool
	Reason    string
	Path      string
	// AccountURL, on a server without login tokens that has an account page:
	// where a device signed in with its own client can be checked.
	AccountURL string
}

// DemoInfo is what the demo banner shows.
type DemoInfo struct {
	Homeserver string
	Users      []DemoUser
	Crowd      *DemoCrowd // the --accounts users, nil without them
	OAuth      *DemoOAuth // the homeserver that signs in through OAuth 2.0, nil without it
}

// DemoOAuth is the demo's second homeserver: it delegates sign-in to its own
// OAuth 2.0 authorization server, whose pages (plain HTML forms) approve a
// device grant. Its users are left for the newcomer to add.
type DemoOAuth struct {
	Homeserver  string     // base URL
	ApprovalURL string     // the page where a device grant's code is entered and approved
	Users       []DemoUser // sign in on the approval page with these
}

// DemoUser is one ready-made demo account.
type DemoUser struct {
	UserID, Password string
	SignedIn         bool // signed in before the app opened
}

// DemoCrowd is the many extra demo users, all signed in, sharing a password.
type DemoCrowd struct {
	First, Last string
	Count       int
	Password    string
}
