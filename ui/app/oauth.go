package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/session"
)

// Outcomes of an OAuth 2.0 sign-in the front ends word themselves (errors.Is).
var (
	// ErrSignInDenied: the user (or the authorization server) refused the sign-in.
	ErrSignInDenied = errors.New("the sign-in was denied")
	// ErrSignInExpired: the code expired before anyone approved it.
	ErrSignInExpired = errors.New("the sign-in code expired")
)

// DefaultOAuthClientURI is the client_uri mxauth registers with: the address
// an authorization server's consent page links to. It must be https:// and
// not on localhost; the reserved .invalid name (RFC 6761) promises nothing.
const DefaultOAuthClientURI = "https://mxauth.invalid/"

// AuthProbe is how a homeserver has its users sign in.
type AuthProbe struct {
	BaseURL     string
	Kind        matrix.ServerAuthKind
	DeviceGrant bool   // an OAuth 2.0 server offering the device authorisation grant
	Issuer      string // the authorization server, "" for a legacy server
}

// ProbeAuth resolves homeserver or user (as Login does) and classifies the
// server: legacy, OAuth 2.0 only, or OAuth 2.0 with a password compatibility layer.
func (s *Service) ProbeAuth(ctx context.Context, homeserver, user string) (AuthProbe, error) {
	c, err := s.signInClient(ctx, homeserver, user)
	if err != nil {
		return AuthProbe{}, err
	}
	sa, err := s.probe(ctx, c, false)
	if err != nil {
		return AuthProbe{}, err
	}
	p := AuthProbe{BaseURL: c.BaseURL(), Kind: sa.Kind}
	if sa.Metadata != nil {
		p.DeviceGrant, p.Issuer = sa.Metadata.SupportsDeviceGrant(), sa.Metadata.Issuer
	}
	return p, nil
}

// signInClient is the client for the homeserver a sign-in names.
func (s *Service) signInClient(ctx context.Context, homeserver, user string) (*matrix.Client, error) {
	base, err := s.baseURLFor(ctx, homeserver, strings.TrimSpace(user))
	if err != nil {
		return nil, err
	}
	return s.client(base, false)
}

// probed is a probe's answer and when it came.
type probed struct {
	sa *matrix.ServerAuth
	at time.Time
}

// probeReuse is how long a probe's answer serves the next step of a sign-in
// (the front end asks ProbeAuth, then starts the sign-in), so the server is
// asked once per sign-in.
const probeReuse = time.Minute

// probe classifies c's server, reusing a recent answer when reuse is set.
// The kind is remembered: the next sign-in there records it in the account list.
func (s *Service) probe(ctx context.Context, c *matrix.Client, reuse bool) (*matrix.ServerAuth, error) {
	s.mu.Lock()
	p, ok := s.probes[c.BaseURL()]
	s.mu.Unlock()
	if reuse && ok && time.Since(p.at) < probeReuse {
		return p.sa, nil
	}
	sa, err := c.ProbeServerAuth(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.probes[c.BaseURL()] = probed{sa: sa, at: time.Now()}
	s.mu.Unlock()
	return sa, nil
}

// knownKind is the kind a probe found for baseURL in this run (0: none did).
func (s *Service) knownKind(baseURL string) matrix.ServerAuthKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.probes[baseURL]; ok {
		return p.sa.Kind
	}
	return 0
}

// OAuthLoginParams is an OAuth 2.0 sign-in as asked for.
type OAuthLoginParams struct {
	Homeserver, User string
	DeviceName       string // the client name the authorization server shows ("": the service's device name)
	Browser          bool   // authorization code flow in a browser instead of the device grant
}

// OAuthLogin is an OAuth 2.0 sign-in waiting for the user's approval.
// Nothing is stored until Wait succeeds.
type OAuthLogin struct {
	BaseURL, Issuer string
	Kind            matrix.ServerAuthKind
	Browser         bool
	// The device grant: what the user opens and types on another device.
	VerificationURI, VerificationURIComplete, UserCode string
	ExpiresAt                                          time.Time
	Interval                                           time.Duration
	// The browser sign-in: the page to open.
	AuthURL string

	svc      *Service
	c        *matrix.Client
	meta     *matrix.AuthMetadata
	clientID string
	deviceID string
	held     bool      // deviceID is the held account's (a sign-in again)
	started  time.Time // before the account list was read for the device
	user     string    // as asked for ("" when only the homeserver was given)
	da       *matrix.DeviceAuthorization
	browser  *browserFlow

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	mu     sync.Mutex
	waited bool
}

// StartOAuthLogin discovers the authorization server, registers a client for
// this sign-in (refusing a registration without the grants it needs), picks
// the device ID (a fresh one, or the held account's on a sign-in again) and
// starts the device grant, or the browser flow with its loopback listener.
// Close the result when not calling Wait.
func (s *Service) StartOAuthLogin(ctx context.Context, p OAuthLoginParams) (*OAuthLogin, error) {
	c, err := s.signInClient(ctx, p.Homeserver, p.User)
	if err != nil {
		return nil, err
	}
	sa, err := s.probe(ctx, c, true)
	if err != nil {
		return nil, err
	}
	if sa.Kind == matrix.AuthLegacy {
		return nil, unsupportedErrorf("%s does not offer OAuth 2.0 sign-in; sign in with a password", c.BaseURL())
	}
	meta := sa.Metadata
	if !p.Browser && !meta.SupportsDeviceGrant() {
		return nil, noDeviceGrant()
	}
	l := &OAuthLogin{BaseURL: c.BaseURL(), Issuer: meta.Issuer, Kind: sa.Kind, Browser: p.Browser,
		svc: s, c: c, meta: meta, user: strings.TrimSpace(p.User), started: time.Now()}
	if l.deviceID, l.held, err = s.oauthDeviceID(l.user, c.BaseURL()); err != nil {
		return nil, err
	}
	if err := s.store.CheckWritable(ctx); err != nil {
		// Checked again before the tokens are saved; failing now spares the
		// user an approval whose session could not be kept.
		return nil, fmt.Errorf("the keyring cannot store tokens now, so the sign-in was not started: %w", err)
	}
	name := p.DeviceName
	if name == "" {
		name = s.deviceName
	}
	if l.clientID, err = s.registerClient(ctx, c, meta, name, p.Browser); err != nil {
		return nil, err
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	if p.Browser {
		err = l.startBrowser()
	} else {
		err = l.startDevice(ctx)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// noDeviceGrant is the error for a server without the device grant.
func noDeviceGrant() error {
	return unsupportedErrorf("this server does not offer sign-in with a code on another device; use the browser sign-in (mxauth login --browser)")
}

// oauthDeviceID is the device an OAuth sign-in asks for: the held account's
// on this homeserver when it is an OAuth session (signing in again keeps the
// device and its keys; held is then true), a fresh one otherwise.
func (s *Service) oauthDeviceID(user, baseURL string) (id string, held bool, err error) {
	if user != "" {
		_ = s.store.Reload() // another process may hold the account by now; a broken list shows later
		if prev, ok := s.store.Account(s.heldUserID(user, baseURL)); ok && prev.OAuth != nil && prev.Homeserver == baseURL {
			return prev.DeviceID, true, nil
		}
	}
	id, err = matrix.NewDeviceID()
	return id, false, err
}

// signedInMeanwhile reports that another sign-in of the same user (another
// mxauth process, most likely) recorded a working OAuth session on a new
// device while l waited for its approval: l asked for a fresh device because
// the account was not held when it started.
func (l *OAuthLogin) signedInMeanwhile(prev keystore.Account, deviceID string) bool {
	return !l.held && prev.DeviceID != deviceID && prev.OAuth != nil && prev.Homeserver == l.c.BaseURL() &&
		!prev.SignedOut && !prev.NeedsSignIn && prev.AddedAt.After(l.started)
}

// registerClient registers this sign-in's client with the grants its flow uses.
func (s *Service) registerClient(ctx context.Context, c *matrix.Client, meta *matrix.AuthMetadata, name string, browser bool) (string, error) {
	grants := []string{matrix.GrantDeviceCode, matrix.GrantRefreshToken}
	var redirects []string
	if browser {
		grants = []string{matrix.GrantAuthorizationCode, matrix.GrantRefreshToken}
		redirects = []string{matrix.LoopbackRedirectURI}
	}
	reg, err := c.RegisterClient(ctx, meta, matrix.NativeClient(name, s.clientURI, grants, redirects))
	var dropped *matrix.GrantDroppedError
	switch {
	case errors.As(err, &dropped) && !browser:
		return "", noDeviceGrant()
	case errors.As(err, &dropped):
		return "", unsupportedErrorf("this server does not allow the browser sign-in for new clients: %v", err)
	case err != nil:
		return "", err
	case !printableID(reg.ClientID):
		return "", errors.New("the authorization server answered the registration with an unusable client ID")
	}
	return reg.ClientID, nil
}

// startDevice asks for the user code.
func (l *OAuthLogin) startDevice(ctx context.Context) error {
	da, err := l.c.RequestDeviceAuthorization(ctx, l.meta, l.clientID, matrix.OAuthScope(l.deviceID))
	if errors.Is(err, matrix.ErrNoDeviceGrant) || matrix.IsUnsupported(err) {
		return noDeviceGrant()
	}
	if err != nil {
		return err
	}
	l.da = da
	l.VerificationURI, l.VerificationURIComplete, l.UserCode = da.VerificationURI, da.VerificationURIComplete, da.UserCode
	l.ExpiresAt, l.Interval = da.ExpiresAt(), da.PollInterval()
	return nil
}

// Wait waits for the approval (polling the device grant, or taking the
// browser's callback), checks who signed in, and records the account as a
// password sign-in does: the sign-in marker, the keyring first, the account
// list after, under the same locks. A failure after the server granted the
// session revokes it, so nothing is left that nobody holds. onPoll (may be
// nil) sees each unanswered poll of the device grant.
func (l *OAuthLogin) Wait(ctx context.Context, onPoll func(matrix.DevicePoll)) (Account, error) {
	l.mu.Lock()
	if l.waited {
		l.mu.Unlock()
		return Account{}, errors.New("this sign-in was already waited for")
	}
	l.waited = true
	l.mu.Unlock()
	// The browser's listener stays open until Close: it is still sending the
	// page that tells the user how the sign-in ended.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.ctx, cancel)
	defer stop()

	resp, err := l.grant(ctx, onPoll)
	if err != nil {
		return Account{}, grantError(err)
	}
	tokens := resp.Tokens()
	tokens.ClientID = l.clientID
	oc := matrix.OAuthClientOf(l.meta, l.clientID)
	view, superseded, err := l.svc.recordOAuth(ctx, l, oc, tokens)
	if superseded {
		_, _ = l.svc.store.FinishPending(context.WithoutCancel(ctx), l.svc.SignOutLeftover)
	}
	return view, err
}

// grant runs the flow to its token reply.
func (l *OAuthLogin) grant(ctx context.Context, onPoll func(matrix.DevicePoll)) (*matrix.OAuthTokenResponse, error) {
	if l.browser != nil {
		return l.browser.wait(ctx, l.c)
	}
	return l.c.PollDeviceToken(ctx, l.meta, l.clientID, l.da, onPoll)
}

// grantError words the flow's refusals.
func grantError(err error) error {
	switch {
	case matrix.IsAccessDenied(err):
		return &kindError{ErrSignInDenied, fmt.Errorf("the sign-in was denied on the authorization server (%w)", err)}
	case matrix.IsExpiredToken(err):
		return &kindError{ErrSignInExpired, fmt.Errorf("the code expired before the sign-in was approved; start again (%w)", err)}
	case matrix.IsInvalidGrant(err):
		// The code was spent or is unknown: typically the answer that
		// granted the approved sign-in was lost on the way.
		return fmt.Errorf("the authorization server no longer accepts this sign-in's code (its answer to the approval may have been lost on the way); nothing was stored: start the sign-in again (%w)", err)
	}
	return err
}

// Close ends the sign-in: a running Wait stops, the browser's listener
// closes. Call it once done with the sign-in, also after Wait; safe to call
// more than once.
func (l *OAuthLogin) Close() {
	if l.cancel != nil {
		l.cancel()
	}
	if l.browser != nil {
		l.browser.close()
	}
}

// recordOAuth checks who the granted session belongs to and records it. It
// holds the user's sign-in locks (and the held device's lock on a sign-in
// again) from before it reads the account list until the account is recorded.
func (s *Service) recordOAuth(ctx context.Context, l *OAuthLogin, oc matrix.OAuthClient, tokens matrix.TokenSet) (view Account, superseded bool, err error) {
	c := l.c
	discard := func() { s.revokeGrant(c, oc, tokens) }
	who, err := c.WhoAmI(matrix.WithHeldSecrets(ctx, tokens.AccessToken, tokens.RefreshToken), tokens.AccessToken)
	if err != nil {
		discard()
		return view, false, fmt.Errorf("the server granted the sign-in but did not say who it is for, so it was revoked: %w", err)
	}
	if err := s.checkLoginIdentity(l.user, c.BaseURL(), &matrix.LoginResponse{UserID: who.UserID, DeviceID: who.DeviceID}); err != nil {
		discard()
		return view, false, err
	}
	if who.DeviceID != l.deviceID {
		discard()
		return view, false, fmt.Errorf("the server signed in device %s, not the device %s this sign-in asked for, so the sign-in was revoked", shown(who.DeviceID), l.deviceID)
	}
	locks := &loginLocks{store: s.store}
	defer locks.release()
	if err := locks.take(ctx, who.UserID); err != nil {
		discard()
		return view, false, err
	}
	if err := s.store.Reload(); err != nil {
		discard()
		return view, false, err
	}
	prev, hadPrev := s.store.Account(s.heldUserID(who.UserID, c.BaseURL()))
	if hadPrev && l.signedInMeanwhile(prev, who.DeviceID) {
		// Keep that one, as a password sign-in that waited for the first
		// would, instead of signing its new device out again: both report
		// the same device, and this sign-in's session is given back.
		discard()
		_, _ = s.LoadSession(ctx, prev)
		return s.View(prev, s.DefaultUserID()), false, nil
	}
	if hadPrev && prev.DeviceID == who.DeviceID {
		// The held device's stored tokens are replaced: no refresh of them
		// may run meanwhile, here or in another process.
		if err := locks.device(ctx, prev.Key()); err != nil {
			discard()
			return view, false, err
		}
	}
	if err := s.store.CheckWritable(ctx); err != nil {
		discard()
		return view, false, fmt.Errorf("the keyring cannot store tokens now, so the granted sign-in was revoked: %w", err)
	}
	return s.recordOAuthLocked(ctx, c, oc, l.Kind, session.AccountKey{UserID: who.UserID, DeviceID: who.DeviceID}, tokens, prev, hadPrev)
}

// recordOAuthLocked is record for an OAuth 2.0 session: a marker first when
// the device is new, then the tokens, then the account entry. A sign-in again
// on the held device replaces a session the server keeps alive, so the old
// one is revoked once the new one is recorded, and a failure restores it.
func (s *Service) recordOAuthLocked(ctx context.Context, c *matrix.Client, oc matrix.OAuthClient, kind matrix.ServerAuthKind, key session.AccountKey,
	tokens matrix.TokenSet, prev keystore.Account, hadPrev bool) (Account, bool, error) {
	newDevice := !hadPrev || prev.DeviceID != key.DeviceID
	insecure := s.insecure && plainRemote(c.BaseURL())
	var old matrix.TokenSet
	var oldErr error
	if newDevice {
		if err := s.store.BeginLogin(key.UserID, key.DeviceID, c.BaseURL(), insecure, &oc); err != nil {
			s.revokeGrant(c, oc, tokens)
			return Account{}, false, err
		}
	} else {
		old, oldErr = s.store.LoadTokens(ctx, prev.Key())
	}
	if _, err := s.mgr.AddWithTokens(ctx, key, c, tokens, session.WithOAuth(oc)); err != nil {
		s.undoOAuth(ctx, c, oc, key, tokens, newDevice)
		return Account{}, false, fmt.Errorf("the keyring did not take the new tokens, so the sign-in was revoked; nothing else changed: %w", err)
	}
	s.checkpoint(StepLoginSaved)
	now := time.Now().UTC()
	acct := keystore.Account{UserID: key.UserID, DeviceID: key.DeviceID, Homeserver: c.BaseURL(), AddedAt: now, LastUsedAt: now,
		InsecureHTTP: insecure, Kind: kind.Name(), OAuth: &oc}
	if hadPrev {
		acct.AddedAt, acct.DisplayName = prev.AddedAt, prev.DisplayName
	}
	if err := s.store.PutAccount(acct); err != nil {
		s.mgr.Remove(key)
		if newDevice {
			s.undoOAuth(ctx, c, oc, key, tokens, true)
			return Account{}, false, fmt.Errorf("the account list could not be written, so the sign-in was revoked: %w", err)
		}
		return Account{}, false, s.restoreHeld(ctx, c, oc, prev, old, oldErr, tokens, err)
	}
	if len(s.store.Accounts()) == 1 {
		_ = s.store.SetDefault(acct.UserID)
	}
	if !newDevice && oldErr == nil && prev.OAuth != nil {
		// The session this sign-in replaces on the same device is no longer
		// held by anyone: end it (a server that already ended it answers 200).
		s.revokeGrant(c, *prev.OAuth, old)
	}
	superseded := hadPrev && newDevice
	if superseded {
		s.mgr.Remove(prev.Key())
	}
	s.setMissing(key.UserID, nil)
	return s.View(acct, s.DefaultUserID()), superseded, nil
}

// undoOAuth takes back a granted session that could not be recorded: it is
// revoked and, for a new device, its item and marker go (once the item is
// gone; otherwise the next run finishes the job).
func (s *Service) undoOAuth(ctx context.Context, c *matrix.Client, oc matrix.OAuthClient, key session.AccountKey, tokens matrix.TokenSet, newDevice bool) {
	s.revokeGrant(c, oc, tokens)
	if !newDevice {
		return
	}
	if err := s.store.DeleteTokens(context.WithoutCancel(ctx), key); err == nil || errors.Is(err, session.ErrNoStoredTokens) {
		_ = s.store.AbandonLogin(key)
	}
}

// restoreHeld undoes a sign-in again on the held device whose account entry
// could not be written: the entry still names the old session's client, so
// the old tokens go back into the keyring and the new session is revoked.
func (s *Service) restoreHeld(ctx context.Context, c *matrix.Client, oc matrix.OAuthClient, prev keystore.Account, old matrix.TokenSet, oldErr error, tokens matrix.TokenSet, cause error) error {
	s.revokeGrant(c, oc, tokens)
	restored := oldErr == nil && s.store.SaveTokens(context.WithoutCancel(ctx), prev.Key(), old) == nil
	if restored {
		return fmt.Errorf("the account list could not be written, so the new sign-in was revoked and %s keeps its previous session: %w", prev.UserID, cause)
	}
	return fmt.Errorf("the account list could not be written, so the new sign-in was revoked, and the previous tokens of %s could not be put back: sign in again with mxauth login --user %s: %w",
		prev.UserID, prev.UserID, cause)
}

// revokeGrant ends a session this run was granted but cannot keep.
func (s *Service) revokeGrant(c *matrix.Client, oc matrix.OAuthClient, t matrix.TokenSet) {
	ctx, cancel := context.WithTimeout(matrix.WithHeldSecrets(context.Background(), t.AccessToken, t.RefreshToken), 10*time.Second)
	defer cancel()
	_ = revokeSession(ctx, c, oc, t)
}

// revokeSession ends an OAuth 2.0 session (RFC 7009): revoking the refresh
// token ends the whole session, its access tokens and its device. A server
// answers 200 for a token it no longer knows, so an ended session counts as done.
func revokeSession(ctx context.Context, c *matrix.Client, oc matrix.OAuthClient, t matrix.TokenSet) error {
	oc = oc.IssuedTo(t)
	tok, hint := t.RefreshToken, matrix.TokenHintRefresh
	if tok.IsZero() {
		tok, hint = t.AccessToken, matrix.TokenHintAccess
	}
	return c.RevokeOAuth(ctx, oc, tok, hint)
}

// signOutOAuth revokes an OAuth 2.0 account's session with the tokens stored
// for it, read under the account's lock so that no refresh rotates them meanwhile.
//
// It refreshes first. After a refresh whose answer was lost, the stored pair
// is one the server already replaced: MAS then answers a revocation of either
// of its tokens with 200 and leaves the session running on the pair nobody
// received. Redeeming the stored refresh token again gets that branch back
// (the server's rule for a lost answer), and revoking its new refresh token
// ends the session whichever case it was.
func (s *Service) signOutOAuth(ctx context.Context, a keystore.Account, sess *session.Session) error {
	// A session the server ended has nothing left to refresh: what the
	// keyring still holds (if anything) is revoked below as it is.
	if err := sess.RefreshNow(ctx); err != nil && !errors.Is(err, session.ErrSignedOut) && !errors.Is(err, session.ErrNeedsSignIn) {
		return err
	}
	unlock, err := s.store.LockAccount(ctx, a.Key())
	if err != nil {
		return err
	}
	defer unlock()
	t, err := s.store.LoadTokens(ctx, a.Key())
	if errors.Is(err, session.ErrNoStoredTokens) {
		return nil // the session ended and its tokens went already
	}
	if err != nil {
		return err
	}
	return revokeSession(matrix.WithHeldSecrets(ctx, t.AccessToken, t.RefreshToken), sess.Client(), *a.OAuth, t)
}

// AccountPageError says that the server manages this on its account page:
// an OAuth 2.0 server signs other devices out there, not through the API.
// It matches ErrUnsupported.
type AccountPageError struct {
	URL, Action, DeviceID string
}

func (e *AccountPageError) Error() string {
	if e.DeviceID != "" {
		return fmt.Sprintf("this server signs devices out on its account page: open %s to sign out device %s", e.URL, e.DeviceID)
	}
	return "this server signs devices out on its account page: open " + e.URL
}

func (e *AccountPageError) Is(target error) bool { return target == ErrUnsupported }

// AccountPageURL is the account-management page of an OAuth 2.0 account's
// server for action (matrix.AccountAction...) on deviceID ("" for none).
func (s *Service) AccountPageURL(userID, action, deviceID string) (string, error) {
	a, err := s.Account(userID)
	if err != nil {
		return "", err
	}
	return accountPage(a, action, deviceID)
}

func accountPage(a keystore.Account, action, deviceID string) (string, error) {
	if a.OAuth == nil {
		return "", unsupportedErrorf("%s is not signed in through OAuth 2.0, so mxauth knows no account page for it", shown(a.UserID))
	}
	u, ok := a.OAuth.AccountManagementURL(action, deviceID)
	if !ok || matrix.Sanitize(u) != u || !webPage(u, a.InsecureHTTP) {
		return "", unsupportedErrorf("the server of %s names no account page", shown(a.UserID))
	}
	return u, nil
}

// webPage reports an address a browser may be sent to: https, or plain http
// to loopback (or where the user allowed it at sign-in). The account list
// could have been edited to name a script or a local file.
func webPage(raw string, insecure bool) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return true
	case "http":
		return insecure || matrix.IsLoopbackHost(u.Hostname())
	}
	return false
}

// deviceDeletion is the error DeleteDevices returns for an OAuth 2.0 account:
// the page where the user signs the devices out.
func deviceDeletion(a keystore.Account, ids []string) error {
	action, id := matrix.AccountActionDeviceDelete, ""
	if len(ids) == 1 {
		id = ids[0]
	} else {
		action = matrix.AccountActionDevicesList
	}
	u, err := accountPage(a, action, id)
	if err != nil {
		return unsupportedErrorf("this server signs devices out only on its account page, and it names none")
	}
	return &AccountPageError{URL: u, Action: action, DeviceID: id}
}

// serverAccountPage is the record of a's authorization server that names its
// account page, asked of the server now (for a session of the password
// compatibility layer, which keeps no OAuth client); nil when the server no
// longer uses OAuth 2.0.
func (s *Service) serverAccountPage(ctx context.Context, a keystore.Account) (*matrix.OAuthClient, error) {
	c, err := s.AccountClient(a)
	if err != nil {
		return nil, err
	}
	sa, err := s.probe(ctx, c, true)
	if err != nil || sa.Metadata == nil {
		return nil, err
	}
	oc := matrix.OAuthClientOf(sa.Metadata, "")
	return &oc, nil
}

// oauthLoginTokenCheck answers CheckLoginToken for an account of an OAuth
// 2.0 server, where get_token does not exist.
func oauthLoginTokenCheck(a keystore.Account) LoginTokenCheck {
	chk := LoginTokenCheck{Reason: "this server delegates sign-in to its authorization server, where login tokens do not exist; " +
		"sign the new device in with its own client (mxauth login on that machine), then check it on the account page"}
	if u, err := accountPage(a, matrix.AccountActionDevicesList, ""); err == nil {
		chk.AccountURL = u
	}
	return chk
}

// oauthServer reports an account of an OAuth 2.0 server (its session signed
// in through OAuth, or through the password compatibility layer).
func oauthServer(a keystore.Account) bool {
	k := matrix.ParseServerAuthKind(a.Kind)
	return a.OAuth != nil || k == matrix.AuthOAuthOnly || k == matrix.AuthOAuthPasswordCompat
}
