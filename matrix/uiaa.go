package matrix

import (
	"net/url"
	"strings"
)

// AuthFallbackEndpoint is the web page a browser completes a stage on, for stages a
// terminal cannot do (SSO, captcha, terms).
var AuthFallbackEndpoint = Endpoint{
	Method: "GET",
	Path:   "/_matrix/client/v3/auth/{authType}/fallback/web",
	History: []string{
		"/_matrix/client/r0/auth/{authType}/fallback/web",
	},
}

// UIA stage types.
const (
	StagePassword  = "m.login.password"
	StageSSO       = "m.login.sso"
	StageDummy     = "m.login.dummy"
	StageTerms     = "m.login.terms"
	StageRecaptcha = "m.login.recaptcha"
)

// AuthData is the "auth" object of a UIA request.
type AuthData struct {
	Type       string          `json:"type,omitempty"`
	Session    string          `json:"session,omitempty"`
	Identifier *UserIdentifier `json:"identifier,omitempty"`
	Password   Secret          `json:"password,omitempty"`
}

// PasswordAuth completes the m.login.password stage for userID in a UIA session.
func PasswordAuth(session, userID string, password Secret) *AuthData {
	return &AuthData{
		Type:       StagePassword,
		Session:    session,
		Identifier: &UserIdentifier{Type: IdentifierUser, User: userID},
		Password:   password,
	}
}

// SessionAuth resends only the session, after a stage was completed in a browser.
func SessionAuth(session string) *AuthData { return &AuthData{Session: session} }

// secrets lists what must never come back in server text.
func (a *AuthData) secrets() []Secret {
	if a == nil {
		return nil
	}
	return []Secret{a.Password}
}

// FallbackURL is the browser page for a UIA stage: stage and session are escaped
// so a hostile value cannot change the path or add parameters.
func (c *Client) FallbackURL(stage, session string) string {
	p := strings.Replace(AuthFallbackEndpoint.Path, "{authType}", url.PathEscape(stage), 1)
	return c.baseURL + p + "?session=" + url.QueryEscape(session)
}
