// Package app holds the use-cases both front ends (the TUI in ui, the command
// line in ui/cli) share: sign in, refresh, hand out tokens, mint login tokens,
// list and delete devices, sign out, and finish half-done work. It has no exit
// codes: its failures are typed (see errors.go) and each front end words them.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/session"
)

// Service is where accounts, the keyring and sessions meet. The TUI (as a
// ui.Backend) and every CLI command go through it, so login, refresh and
// sign-out behave the same everywhere.
type Service struct {
	store       *keystore.Store
	mgr         *session.Manager
	httpClient  *http.Client  // nil: the matrix package's default
	httpTimeout time.Duration // 0: the matrix package's default
	indexPoll   time.Duration
	insecure    bool   // plain http:// to non-loopback hosts was asked for
	deviceName  string // default display name for new devices
	clientURI   string // client_uri of OAuth 2.0 registrations
	demo        *DemoInfo
	events      chan session.Event
	checkpoint  func(step string)

	mu       sync.Mutex
	clients  map[string]*matrix.Client
	missing  map[string]session.Status // index entries the engine holds no session for, by user ID
	uiaPaths map[string]string         // get_token path chosen for a user's running UIA session
	loading  bool                      // LoadAll has yet to finish: unknown accounts are loading
	probes   map[string]probed         // what probes found, by base URL
}

// Options configures a Service; the zero value is the defaults.
type Options struct {
	HTTPClient   *http.Client  // nil: the matrix package's default
	HTTPTimeout  time.Duration // per call to a homeserver; 0: matrix.DefaultTimeout
	InsecureHTTP bool          // allow plain http:// to a non-loopback homeserver
	DeviceName   string        // "": "mxauth on HOST"
	// OAuthClientURI is the client_uri OAuth 2.0 sign-ins register with
	// ("": DefaultOAuthClientURI).
	OAuthClientURI string
	Demo           *DemoInfo
	// IndexPoll is how often Run looks for changes other processes made to
	// the account index; 0: every 2 s.
	IndexPoll time.Duration
	// Checkpoint, if set, is called at each named step (Step...) of a
	// multi-step change, so tests can stop the process exactly there.
	Checkpoint func(step string)
}

// Steps passed to Options.Checkpoint.
const (
	StepLoginSaved = "login-saved" // a sign-in's tokens are in the keyring, its account not yet in the index
)

// New makes a Service over store.
func New(store *keystore.Store, opt Options) *Service {
	name := opt.DeviceName
	if name == "" {
		name = defaultDeviceName()
	}
	checkpoint := opt.Checkpoint
	if checkpoint == nil {
		checkpoint = func(string) {}
	}
	return &Service{
		store:       store,
		mgr:         session.NewManager(store, session.ManagerOptions{EventBuffer: 64}),
		httpClient:  opt.HTTPClient,
		httpTimeout: opt.HTTPTimeout,
		indexPoll:   cmp.Or(opt.IndexPoll, indexPoll),
		insecure:    opt.InsecureHTTP,
		deviceName:  name,
		clientURI:   cmp.Or(opt.OAuthClientURI, DefaultOAuthClientURI),
		demo:        opt.Demo,
		events:      make(chan session.Event, 64),
		checkpoint:  checkpoint,
		clients:     map[string]*matrix.Client{},
		missing:     map[string]session.Status{},
		uiaPaths:    map[string]string{},
		probes:      map[string]probed{},
	}
}

func defaultDeviceName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "mxauth"
	}
	return "mxauth on " + host
}

// client returns the cached client for a base URL. allowHTTP is true for base
// URLs the user already accepted at sign-in (stored in the index).
func (s *Service) client(baseURL string, allowHTTP bool) (*matrix.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[baseURL]; ok {
		return c, nil
	}
	opts := []matrix.Option{matrix.WithInsecureHTTP(s.insecure || allowHTTP)}
	if s.httpClient != nil {
		opts = append(opts, matrix.WithHTTPClient(s.httpClient))
	}
	if s.httpTimeout > 0 {
		opts = append(opts, matrix.WithTimeout(s.httpTimeout))
	}
	c, err := matrix.NewClient(baseURL, opts...)
	if err != nil {
		return nil, err
	}
	s.clients[c.BaseURL()] = c
	return c, nil
}

// AccountClient is the client for a stored account. The stored homeserver
// passes the same rules as one given on the command line: https, or plain
// http to loopback, or plain http elsewhere only if the user allowed it when
// signing in.
func (s *Service) AccountClient(a keystore.Account) (*matrix.Client, error) {
	c, err := s.client(a.Homeserver, a.InsecureHTTP)
	switch {
	case errors.Is(err, matrix.ErrInsecureURL):
		return nil, fmt.Errorf("the stored homeserver %s is plain http:// to another machine, which was not allowed at sign-in, so no token is sent there; if it is really meant, sign in again with mxauth login --user %s --homeserver %s --insecure-http",
			shown(a.Homeserver), shown(a.UserID), shown(a.Homeserver))
	case err != nil:
		return nil, fmt.Errorf("the stored homeserver %s cannot be used: %w", shown(a.Homeserver), err)
	}
	return c, nil
}

// plainRemote reports a plain http:// base URL to a host other than this machine.
func plainRemote(baseURL string) bool {
	u, err := url.Parse(baseURL)
	return err == nil && u.Scheme == "http" && !matrix.IsLoopbackHost(u.Hostname())
}

// Account finds an account by user ID, or the default one for "".
func (s *Service) Account(userID string) (keystore.Account, error) {
	if userID == "" {
		if a, ok := s.store.Default(); ok {
			return a, nil
		}
		if len(s.store.Accounts()) == 0 {
			return keystore.Account{}, signInErrorf("no accounts yet: add one with mxauth login --user @you:example.org")
		}
		return keystore.Account{}, usageErrorf("several accounts and none is the default: pick one with --account @you:example.org")
	}
	a, ok := s.store.Account(userID)
	if !ok {
		return keystore.Account{}, signInErrorf("no account %s: see mxauth list", shown(userID))
	}
	return a, nil
}

// Session returns the running session for userID ("" = default), loading its
// tokens from the keyring on first use.
func (s *Service) Session(ctx context.Context, userID string) (*session.Session, keystore.Account, error) {
	a, err := s.Account(userID)
	if err != nil {
		return nil, a, err
	}
	sess, err := s.LoadSession(ctx, a)
	return sess, a, err
}

// LoadSession returns the account's session, loading its tokens from the
// keyring and starting it if the engine holds none yet.
func (s *Service) LoadSession(ctx context.Context, a keystore.Account) (*session.Session, error) {
	key := session.AccountKey{UserID: a.UserID, DeviceID: a.DeviceID}
	if sess, ok := s.mgr.Session(key); ok {
		return sess, nil
	}
	if a.NeedsSignIn {
		// The server no longer accepts the stored tokens: hand none out, and
		// leave the item (and the device) for the next sign-in.
		s.setMissing(a.UserID, &session.Status{Account: key, BaseURL: a.Homeserver, State: session.StateNeedsSignIn, Problem: signInAgainProblem(a)})
		return nil, needsSignInErrorf("%s: the server no longer accepts the stored tokens; %s", a.UserID, signInAgainProblem(a))
	}
	c, err := s.AccountClient(a)
	if err == nil {
		var sess *session.Session
		sess, err = s.mgr.Add(ctx, key, c, sessionOptions(a)...)
		if err == nil {
			if a.SignedOut {
				// Another run learned that the server signed this device out
				// but could not delete its tokens: they are dead.
				sess.MarkSignedOut()
			}
			s.setMissing(a.UserID, nil)
			return sess, nil
		}
	}
	st := session.Status{Account: key, BaseURL: a.Homeserver, State: session.StateNeedsSignIn}
	switch {
	case IsStoreProblem(err):
		st.State, st.Problem = session.StateStoreProblem, err.Error()
		st.TokensUnknown, st.Keyring = true, session.KeyringIssueOf(err)
	case errors.Is(err, session.ErrNoStoredTokens):
		st.Problem = "no saved tokens: sign in again"
		if a.SignedOut {
			st.State, st.Problem = session.StateSignedOut, "signed out by the server: sign in again"
		}
		err = needsSignInErrorf("%s needs to sign in again: mxauth login --user %s", shown(a.UserID), shown(a.UserID))
	default:
		st.Problem = err.Error()
	}
	s.setMissing(a.UserID, &st)
	return nil, err
}

// sessionOptions says how the engine renews an account's session: as its
// OAuth 2.0 client when it has one, at /refresh otherwise.
func sessionOptions(a keystore.Account) []session.AddOption {
	if a.OAuth != nil {
		return []session.AddOption{session.WithOAuth(*a.OAuth)}
	}
	return nil
}

func (s *Service) setMissing(userID string, st *session.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == nil {
		delete(s.missing, userID)
		return
	}
	s.missing[userID] = *st
}

// LoadAll starts a session for every account in the index; accounts without
// usable tokens are shown as needing sign-in instead of failing the start. A
// hung keyring costs it one keyring deadline in all (see keystore.Store.call).
func (s *Service) LoadAll(ctx context.Context) {
	for _, a := range s.store.Accounts() {
		_, _ = s.LoadSession(ctx, a)
	}
	s.mu.Lock()
	s.loading = false
	s.mu.Unlock()
}

// MarkLoading shows accounts without a session as loading until LoadAll ends,
// for a screen drawn before their tokens are read.
func (s *Service) MarkLoading() {
	s.mu.Lock()
	s.loading = true
	s.mu.Unlock()
}

// status is the engine's view of an account, or the reason it has none.
func (s *Service) status(a keystore.Account) session.Status {
	key := session.AccountKey{UserID: a.UserID, DeviceID: a.DeviceID}
	if sess, ok := s.mgr.Session(key); ok {
		return sess.Status()
	}
	s.mu.Lock()
	st, ok := s.missing[a.UserID]
	loading := s.loading
	s.mu.Unlock()
	if ok {
		return st
	}
	if loading {
		return session.Status{Account: key, BaseURL: a.Homeserver, State: session.StateLoading, TokensUnknown: true}
	}
	return session.Status{Account: key, BaseURL: a.Homeserver, State: session.StateNeedsSignIn, Problem: "not loaded"}
}

// View is the account as the front ends show it; def is the default user ID.
func (s *Service) View(a keystore.Account, def string) Account {
	v := Account{
		UserID:      a.UserID,
		DeviceID:    a.DeviceID,
		Homeserver:  a.Homeserver,
		DisplayName: a.DisplayName,
		Status:      s.status(a),
		IsDefault:   a.UserID == def,
		Kind:        matrix.ParseServerAuthKind(a.Kind),
		OAuth:       a.OAuth != nil,
	}
	v.AccountURL, _ = accountPage(a, "", "")
	return v
}

// DefaultUserID is the default account's user ID ("" when there is none).
func (s *Service) DefaultUserID() string {
	if d, ok := s.store.Default(); ok {
		return d.UserID
	}
	return ""
}

// Accounts is an in-memory snapshot for the UI.
func (s *Service) Accounts() []Account {
	def := s.DefaultUserID()
	var out []Account
	for _, a := range s.store.Accounts() {
		out = append(out, s.View(a, def))
	}
	return out
}

// Events are the engine's events, after the index has been told about them.
func (s *Service) Events() <-chan session.Event { return s.events }

// Run drives the refresh engine and mirrors session endings into the index
// until ctx ends; the TUI runs it in the background.
func (s *Service) Run(ctx context.Context) {
	go s.mgr.Run(ctx)
	watch := time.NewTicker(s.indexPoll)
	defer watch.Stop()
	seen := s.indexStamp()
	for {
		select {
		case <-ctx.Done():
			return
		case <-watch.C:
			if now := s.indexStamp(); now != seen {
				seen = now
				s.syncWithIndex(ctx)
			}
		case ev := <-s.mgr.Events():
			s.recordState(ev.Status)
			select {
			case s.events <- ev:
			default: // the UI is behind; it reads statuses on its own tick anyway
			}
		}
	}
}

// indexPoll is by default how often the running app looks for accounts that another
// mxauth process added, signed in again or removed.
const indexPoll = 2 * time.Second

type fileStamp struct {
	mod  time.Time
	size int64
}

func (s *Service) indexStamp() fileStamp {
	fi, err := os.Stat(s.store.IndexPath())
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// syncWithIndex re-reads the account list after another process changed it
// and brings the sessions in line: new accounts start, removed ones stop, and
// an account signed in again elsewhere (new device, or its sign-in flag
// cleared) is reloaded from the keyring.
func (s *Service) syncWithIndex(ctx context.Context) {
	if err := s.store.Reload(); err != nil {
		return // a file being rewritten or broken: keep what we have and look again later
	}
	held := map[string]session.AccountKey{}
	for _, st := range s.mgr.Statuses() {
		held[st.Account.UserID] = st.Account
	}
	for _, a := range s.store.Accounts() {
		key := session.AccountKey{UserID: a.UserID, DeviceID: a.DeviceID}
		old, running := held[a.UserID]
		delete(held, a.UserID)
		if running && old == key {
			// Reload when this process and the index disagree on whether the
			// session ended: signed in again elsewhere, or ended elsewhere.
			// Reload, too, when the entry names another OAuth client: a sign-in
			// again elsewhere on this device stored tokens only that client can
			// refresh.
			sess, ok := s.mgr.Session(key)
			ended := ok && (sess.Status().State == session.StateNeedsSignIn || sess.Status().State == session.StateSignedOut)
			if ended == (a.NeedsSignIn || a.SignedOut) && (!ok || sameOAuthClient(sess, a)) {
				continue
			}
		}
		if running {
			s.mgr.Remove(old)
		}
		_, _ = s.LoadSession(ctx, a)
	}
	for user, key := range held {
		s.mgr.Remove(key)
		s.setMissing(user, nil)
	}
}

// sameOAuthClient reports whether sess refreshes as the client a's entry names.
func sameOAuthClient(sess *session.Session, a keystore.Account) bool {
	oc, ok := sess.OAuth()
	if !ok || a.OAuth == nil {
		return !ok && a.OAuth == nil
	}
	return oc.ClientID == a.OAuth.ClientID && oc.TokenEndpoint == a.OAuth.TokenEndpoint
}

// recordState records in the index that the server ended a session, so that
// every later run treats its stored tokens as dead (see load) and shows the
// right state before any network call. Only a new sign-in, which rewrites the
// entry, clears the flags: no other state proves the session alive again.
func (s *Service) recordState(st session.Status) {
	a, ok := s.store.Account(st.Account.UserID)
	if !ok || a.DeviceID != st.Account.DeviceID {
		return
	}
	signedOut := st.State == session.StateSignedOut
	needs := st.State == session.StateNeedsSignIn
	if !signedOut && !needs {
		return // only an ending is recorded
	}
	if a.SignedOut == signedOut && a.NeedsSignIn == needs {
		return
	}
	a.SignedOut, a.NeedsSignIn = signedOut, needs
	_ = s.store.PutAccount(a) // best effort: the session itself already refuses its tokens
}

// Resolve turns a homeserver URL, server name or MXID into a checked base URL.
func (s *Service) Resolve(ctx context.Context, input string) (string, error) {
	input = strings.TrimSpace(input)
	if input == "" {
		return "", errors.New("enter a homeserver URL or a user ID like @you:example.org")
	}
	res, err := matrix.ResolveHomeserver(ctx, input, matrix.DiscoverOptions{
		HTTPClient:        s.httpClient,
		AllowInsecureHTTP: s.insecure,
	})
	if err != nil {
		return "", err
	}
	return res.BaseURL, nil
}

// baseURLFor uses an explicit homeserver as given (no discovery), else
// discovers it from the user ID.
func (s *Service) baseURLFor(ctx context.Context, homeserver, user string) (string, error) {
	if homeserver != "" {
		return matrix.NormaliseBaseURL(homeserver, s.insecure)
	}
	if !strings.HasPrefix(user, "@") {
		return "", usageErrorf("give the full user ID (@you:example.org) or a homeserver URL")
	}
	return s.Resolve(ctx, user)
}

// Login signs in with a password (a new device, or the given one again).
func (s *Service) Login(ctx context.Context, p LoginParams) (Account, error) {
	if p.Password.IsZero() {
		return Account{}, errors.New("the password is empty")
	}
	user := strings.TrimSpace(p.User)
	req := matrix.PasswordLogin(user, p.Password)
	req.DeviceID = p.DeviceID
	req.InitialDeviceDisplayName = p.DeviceName
	return s.login(ctx, p.Homeserver, user, req)
}

// LoginWithToken signs a new device in with a single-use m.login.token.
func (s *Service) LoginWithToken(ctx context.Context, homeserver, user string, token matrix.Secret, deviceName string) (Account, error) {
	if token.IsZero() {
		return Account{}, errors.New("the login token is empty")
	}
	req := matrix.TokenLogin(token)
	req.InitialDeviceDisplayName = deviceName
	return s.login(ctx, homeserver, strings.TrimSpace(user), req)
}

// login runs one login request and records the result: tokens go to the
// keyring first, then the index entry. Sign-ins of one user run one after the
// other across processes, and the keyring is checked before the server is
// asked. A failure logs a device this login created out again and leaves
// every held session as it was, or says exactly what was lost.
func (s *Service) login(ctx context.Context, homeserver, user string, req matrix.LoginRequest) (Account, error) {
	base, err := s.baseURLFor(ctx, homeserver, user)
	if err != nil {
		return Account{}, err
	}
	c, err := s.client(base, false)
	if err != nil {
		return Account{}, err
	}
	view, superseded, err := s.loginLocked(ctx, c, user, req)
	if superseded {
		// Sign the replaced device out and delete its item, now that the
		// locks are released; if that cannot be done now, the next run does it.
		_, _ = s.store.FinishPending(context.WithoutCancel(ctx), s.SignOutLeftover)
	}
	return view, err
}

// loginLocked is login under the user's sign-in lock. superseded reports that
// the account moved to a new device whose predecessor is left to sign out.
func (s *Service) loginLocked(ctx context.Context, c *matrix.Client, user string, req matrix.LoginRequest) (view Account, superseded bool, err error) {
	locks := &loginLocks{store: s.store}
	defer locks.release()
	if err := locks.take(ctx, loginLockName(user, c.BaseURL())); err != nil {
		return view, false, err
	}
	if err := s.store.Reload(); err != nil { // another process may have just added this account
		return view, false, err
	}
	user = s.heldUserID(user, c.BaseURL())
	if strings.HasPrefix(user, "@") {
		if err := locks.take(ctx, user); err != nil {
			return view, false, err
		}
	}
	prev, hadPrev := s.store.Account(user)
	if req.DeviceID == "" && hadPrev && req.Type == "m.login.password" {
		req.DeviceID = prev.DeviceID // sign in again on the same device, keeping its keys
	}
	if hadPrev && req.DeviceID == prev.DeviceID {
		// The server replaces the device's tokens when it answers: no refresh
		// of the old ones may run meanwhile, here or in another process.
		if err := locks.device(ctx, prev.Key()); err != nil {
			return view, false, err
		}
	}
	if err := s.store.CheckWritable(ctx); err != nil {
		return view, false, fmt.Errorf("the keyring cannot store tokens now, so the server was not asked to sign in: %w", err)
	}
	if req.InitialDeviceDisplayName == "" {
		req.InitialDeviceDisplayName = s.deviceName
	}
	resp, err := c.Login(ctx, req)
	if err != nil {
		return view, false, loginError(ctx, c, req.Type, err)
	}
	if err := s.checkLoginIdentity(user, c.BaseURL(), resp); err != nil {
		// Nothing of this reply is trusted; the device it may have created is dropped.
		s.discardLogin(c, resp.AccessToken)
		return view, false, err
	}
	if nc, ok, _ := c.FollowWellKnown(ctx, resp.WellKnown); ok {
		c = nc // the server named its own base URL; a broken one is ignored
	}
	if err := locks.take(ctx, resp.UserID); err != nil {
		s.discardLogin(c, resp.AccessToken)
		return view, false, err
	}
	if !hadPrev || prev.UserID != resp.UserID {
		if err := s.store.Reload(); err != nil {
			s.discardLogin(c, resp.AccessToken)
			return view, false, err
		}
		prev, hadPrev = s.store.Account(resp.UserID)
	}
	return s.record(ctx, c, resp, prev, hadPrev)
}

// record keeps a login's answer: a marker first when the device is new (so a
// crash before the account entry is written gets cleaned up), then the tokens,
// then the account entry.
func (s *Service) record(ctx context.Context, c *matrix.Client, resp *matrix.LoginResponse, prev keystore.Account, hadPrev bool) (Account, bool, error) {
	key := session.AccountKey{UserID: resp.UserID, DeviceID: resp.DeviceID}
	newDevice := !hadPrev || prev.DeviceID != resp.DeviceID
	if newDevice {
		if err := s.store.BeginLogin(resp.UserID, resp.DeviceID, c.BaseURL(), s.insecure && plainRemote(c.BaseURL()), nil); err != nil {
			s.discardLogin(c, resp.AccessToken)
			return Account{}, false, err
		}
	}
	if _, err := s.mgr.AddWithTokens(ctx, key, c, resp.Tokens()); err != nil {
		if newDevice {
			s.undoNewDevice(ctx, c, key, resp.AccessToken)
			return Account{}, false, fmt.Errorf("the keyring did not take the new tokens, so the new device %s was signed out again; nothing else changed: %w", resp.DeviceID, err)
		}
		return Account{}, false, s.tokensLost(ctx, prev, err)
	}
	s.checkpoint(StepLoginSaved)
	now := time.Now().UTC()
	acct := keystore.Account{UserID: resp.UserID, DeviceID: resp.DeviceID, Homeserver: c.BaseURL(), AddedAt: now, LastUsedAt: now,
		InsecureHTTP: s.insecure && plainRemote(c.BaseURL()), Kind: s.knownKind(c.BaseURL()).Name()}
	if hadPrev {
		acct.AddedAt, acct.DisplayName = prev.AddedAt, prev.DisplayName
	}
	if err := s.store.PutAccount(acct); err != nil {
		s.mgr.Remove(key)
		if newDevice {
			s.undoNewDevice(ctx, c, key, resp.AccessToken)
			return Account{}, false, err
		}
		return Account{}, false, fmt.Errorf("signed in and the new tokens are saved, but the account list could not be updated: %w", err)
	}
	if len(s.store.Accounts()) == 1 {
		// The first account becomes the default, so commands keep using it
		// when more are added.
		_ = s.store.SetDefault(acct.UserID)
	}
	superseded := hadPrev && newDevice
	if superseded {
		s.mgr.Remove(prev.Key()) // the account entry now marks it for sign-out
	}
	s.setMissing(resp.UserID, nil)
	return s.View(acct, s.DefaultUserID()), superseded, nil
}

// undoNewDevice takes back a device this login created but could not record:
// it is logged out, its item deleted and, once that worked, its marker dropped
// (otherwise the next run finishes the job).
func (s *Service) undoNewDevice(ctx context.Context, c *matrix.Client, key session.AccountKey, token matrix.Secret) {
	s.discardLogin(c, token)
	if s.store.DeleteTokens(context.WithoutCancel(ctx), key) == nil {
		_ = s.store.AbandonLogin(key)
	}
}

// tokensLost handles a sign-in again on the held device whose new tokens the
// keyring refused after the server answered. The server has ended the old
// tokens by then, so the account is marked as needing a sign-in: no command
// hands out the dead token, and no refresh deletes the item for it.
func (s *Service) tokensLost(ctx context.Context, prev keystore.Account, cause error) error {
	s.mgr.Remove(prev.Key())
	prev.NeedsSignIn = true
	recorded := ""
	if err := s.store.PutAccount(prev); err != nil {
		recorded = fmt.Sprintf(" (the account list could not record this either: %v)", err)
	}
	s.setMissing(prev.UserID, &session.Status{Account: prev.Key(), BaseURL: prev.Homeserver, State: session.StateNeedsSignIn, Problem: signInAgainProblem(prev)})
	return fmt.Errorf("the server signed %s in again on device %s and ended that device's previous tokens, but the keyring did not take the new ones: sign in again with mxauth login --user %s (the device is kept)%s: %w",
		prev.UserID, prev.DeviceID, prev.UserID, recorded, cause)
}

// signInAgainProblem is the state line of an account whose stored tokens the
// server no longer accepts.
func signInAgainProblem(a keystore.Account) string {
	return "sign in again: mxauth login --user " + a.UserID + " (device " + a.DeviceID + " is kept)"
}

// loginLockName is what a sign-in locks before it knows the user ID the
// server will answer with: the user ID, or a bare name with its homeserver.
func loginLockName(user, baseURL string) string {
	if strings.HasPrefix(user, "@") {
		return user
	}
	return user + " on " + baseURL
}

// heldUserID finds the held account a sign-in means: a full user ID in any
// case, or a bare name held on this homeserver. Otherwise it returns the input.
func (s *Service) heldUserID(user, baseURL string) string {
	user = strings.TrimSpace(user)
	if user == "" {
		return user
	}
	if _, ok := s.store.Account(user); ok {
		return user
	}
	for _, a := range s.store.Accounts() {
		switch {
		case strings.HasPrefix(user, "@") && strings.EqualFold(a.UserID, user):
			return a.UserID
		case !strings.HasPrefix(user, "@") && a.Homeserver == baseURL && sameUser(user, a.UserID):
			return a.UserID
		}
	}
	return user
}

// loginLocks are the locks one sign-in holds: its user's sign-in locks (the
// name typed and the user ID answered, when they differ) and the device lock
// of a device it signs in again.
type loginLocks struct {
	store   *keystore.Store
	names   []string
	unlocks []func()
}

func (l *loginLocks) take(ctx context.Context, name string) error {
	for _, n := range l.names {
		if strings.EqualFold(n, name) {
			return nil
		}
	}
	unlock, err := l.store.LockLogin(ctx, name)
	if err != nil {
		return err
	}
	l.names = append(l.names, name)
	l.unlocks = append(l.unlocks, unlock)
	return nil
}

func (l *loginLocks) device(ctx context.Context, key session.AccountKey) error {
	unlock, err := l.store.LockAccount(ctx, key)
	if err != nil {
		return err
	}
	l.unlocks = append(l.unlocks, unlock)
	return nil
}

func (l *loginLocks) release() {
	for i := len(l.unlocks) - 1; i >= 0; i-- {
		l.unlocks[i]()
	}
}

// SignOutLeftover ends the session of a device mxauth no longer lists (a
// replaced device, or one an interrupted sign-in created) with the tokens its
// item still holds. A server that no longer knows the tokens counts as done.
func (s *Service) SignOutLeftover(ctx context.Context, p keystore.PendingRemoval, t matrix.TokenSet) error {
	// The marker's homeserver passes the same rules as an account's.
	c, err := s.client(p.Homeserver, p.InsecureHTTP)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(matrix.WithHeldSecrets(ctx, t.AccessToken, t.RefreshToken), leftoverTimeout)
	defer cancel()
	if p.OAuth != nil {
		return revokeSession(ctx, c, *p.OAuth, t)
	}
	gone := func(err error) bool { return matrix.IsUnknownToken(err) || matrix.IsForbidden(err) }
	tok := t.AccessToken
	if session.RenewalOf(t) == session.RenewalByRefresh && !time.Now().Before(t.ExpiresAt) {
		// An expired access token cannot log out; the refresh token gets a fresh one.
		r, err := c.Refresh(ctx, t.RefreshToken)
		if err != nil {
			if gone(err) {
				return nil
			}
			return err
		}
		tok = r.AccessToken
	}
	if err := c.Logout(ctx, tok); err != nil && !gone(err) {
		return err
	}
	return nil
}

// leftoverTimeout bounds signing out one leftover device, which every command
// may do at start.
const leftoverTimeout = 5 * time.Second

// checkLoginIdentity refuses a login reply that names someone other than the
// user who signed in, or carries IDs unfit to store and print: a hostile or
// broken server must not take over another stored account or smuggle
// terminal escapes into the account list.
func (s *Service) checkLoginIdentity(requested, baseURL string, resp *matrix.LoginResponse) error {
	if _, err := matrix.ServerNameFromUserID(resp.UserID); err != nil || !printableID(resp.UserID) {
		return errors.New("the server answered the login with an invalid user ID")
	}
	if resp.DeviceID == "" || !printableID(resp.DeviceID) {
		return errors.New("the server answered the login with an invalid device ID")
	}
	if requested != "" && !sameUser(requested, resp.UserID) {
		return fmt.Errorf("the server signed in %s, not %s", resp.UserID, matrix.Sanitize(requested))
	}
	// A login token names its user itself; without a requested user, a reply
	// naming an account held for another homeserver must not take it over.
	if prev, ok := s.store.Account(resp.UserID); ok && requested == "" && prev.Homeserver != baseURL {
		return fmt.Errorf("%s is already signed in through %s; sign it out first to use %s", resp.UserID, shown(prev.Homeserver), baseURL)
	}
	return nil
}

// printableID reports whether an identifier is short, non-empty and free of
// spaces and control or formatting characters.
func printableID(id string) bool {
	if id == "" || len(id) > 255 || matrix.Sanitize(id) != id {
		return false
	}
	return !strings.ContainsAny(id, " \t\r\n")
}

// sameUser compares what the user typed (a full user ID or a bare localpart)
// with the user ID the server returned. Servers may fold the localpart's case.
func sameUser(requested, got string) bool {
	requested = strings.TrimSpace(requested)
	if strings.HasPrefix(requested, "@") {
		return strings.EqualFold(requested, got)
	}
	local, _, _ := strings.Cut(strings.TrimPrefix(got, "@"), ":")
	return strings.EqualFold(requested, local)
}

// discardLogin logs out a session that could not be recorded, so no device is
// left on the server that nobody holds tokens for.
func (s *Service) discardLogin(c *matrix.Client, token matrix.Secret) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Logout(ctx, token)
}

// loginError says in plain words why a login was refused.
func loginError(ctx context.Context, c *matrix.Client, loginType string, err error) error {
	switch {
	case matrix.IsUserDeactivated(err):
		return errors.New("this account is unavailable (deactivated)")
	case matrix.IsUserLocked(err):
		return errors.New("this account is locked by the server's administrators")
	case matrix.IsForbidden(err):
		return errors.New("wrong user ID, password or login token")
	case matrix.IsUnsupported(err), errors.Is(err, matrix.ErrMalformedResponse):
		// Answered like this, the URL may lead to no homeserver at all (a
		// wrong address or path): that is the user's to fix, not a missing feature.
		if herr := c.CheckHomeserver(ctx); herr != nil {
			return herr
		}
		if matrix.IsUnsupported(err) {
			return loginTypeMissing(loginType)
		}
	case isBadRequest(err):
		// A homeserver without this login type may refuse it as unknown
		// (400 M_UNKNOWN); its login flows tell.
		if flows, ferr := c.LoginFlows(ctx); ferr == nil && !flows.Supports(loginType) {
			return loginTypeMissing(loginType)
		}
	}
	return err
}

// loginTypeMissing is the error for a homeserver that does not offer a login type.
func loginTypeMissing(loginType string) error {
	kind := "password"
	if loginType == matrix.LoginTypeToken {
		kind = "login-token"
	}
	return unsupportedErrorf("this server does not offer %s login (it may only support sign-in through a browser)", kind)
}

func isBadRequest(err error) bool {
	var me *matrix.Error
	return errors.As(err, &me) && me.Status == http.StatusBadRequest
}

// do runs an authenticated call through the session (one refresh and replay
// on an expired token) and records in the index if the server ended the
// session meanwhile: a one-shot command runs no engine loop that would.
func (s *Service) do(ctx context.Context, sess *session.Session, call func(ctx context.Context, tok matrix.Secret) error) error {
	err := sess.Do(ctx, call)
	if err != nil {
		s.recordState(sess.Status())
	}
	return err
}

// Refresh refreshes the account's access token now.
func (s *Service) Refresh(ctx context.Context, userID string) error {
	sess, _, err := s.Session(ctx, userID)
	if err != nil {
		return err
	}
	err = sess.RefreshNow(ctx)
	s.recordState(sess.Status())
	return err
}

// AccessToken returns a token to hand out (print, or give to a command), valid
// for a useful while: refreshed first if needed, and never one that a pair
// another process stored meanwhile superseded, nor one of a session the server
// ended.
func (s *Service) AccessToken(ctx context.Context, userID string) (matrix.Secret, error) {
	sess, _, err := s.Session(ctx, userID)
	if err != nil {
		return "", err
	}
	tok, err := sess.HandOutToken(ctx)
	if err != nil {
		st := sess.Status()
		s.recordState(st)
		if st.State == session.StateNeedsSignIn || st.State == session.StateSignedOut {
			reason := "needs to sign in again"
			if st.Problem != "" {
				reason = matrix.Sanitize(st.Problem)
			}
			who := shown(st.Account.UserID)
			return "", needsSignInErrorf("%s: %s; run mxauth login --user %s", who, reason, who)
		}
	}
	return tok, err
}

// SignOut logs the session out on the server, then removes its secrets and
// index entry. A server that says the session is already gone still counts.
func (s *Service) SignOut(ctx context.Context, userID string) error {
	return s.signOut(ctx, userID, false)
}

// ForgetLocally removes an account's secrets and index entry without asking
// the server, for a homeserver that is gone for good. The device stays on the
// server until it is deleted from another session.
func (s *Service) ForgetLocally(ctx context.Context, userID string) error {
	return s.signOut(ctx, userID, true)
}

func (s *Service) signOut(ctx context.Context, userID string, localOnly bool) error {
	a, err := s.Account(userID)
	if err != nil {
		return err
	}
	key := session.AccountKey{UserID: a.UserID, DeviceID: a.DeviceID}
	var sess *session.Session
	var lerr error
	if !localOnly {
		sess, lerr = s.LoadSession(ctx, a)
	}
	switch {
	case localOnly:
	case lerr == nil && a.OAuth != nil:
		// An OAuth 2.0 session ends by revocation; /logout refuses its tokens.
		if err := s.signOutOAuth(ctx, a, sess); err != nil {
			return fmt.Errorf("could not sign out on the server, nothing was removed: %w", err)
		}
	case lerr == nil:
		c := sess.Client()
		err := sess.Do(ctx, func(ctx context.Context, tok matrix.Secret) error { return c.Logout(ctx, tok) })
		if err != nil && (matrix.IsTransient(err) || errors.Is(err, session.ErrServerUnreachable) ||
			IsStoreProblem(err) || errors.Is(err, session.ErrStoreUnavailable)) {
			return fmt.Errorf("could not sign out on the server, nothing was removed: %w", err)
		}
	case IsStoreProblem(lerr):
		return lerr
	}
	s.mgr.Remove(key)
	if err := s.store.RemoveAccount(ctx, a.UserID); err != nil {
		if !localOnly {
			// The server has ended the session: tokens left in the keyring
			// are dead, so they go even when the account entry cannot, and
			// the entry then reads as needing sign-in, never as active.
			_ = s.store.DeleteTokens(context.WithoutCancel(ctx), key)
		}
		return fmt.Errorf("signed out on the server, but the account could not be removed here: %w", err)
	}
	s.setMissing(a.UserID, nil)
	return nil
}

// ServerInfo reports what the account's server supports.
func (s *Service) ServerInfo(ctx context.Context, userID string) (ServerInfo, error) {
	sess, a, err := s.Session(ctx, userID)
	if err != nil {
		return ServerInfo{}, err
	}
	v, err := sess.Client().Versions(ctx)
	if err != nil {
		return ServerInfo{}, err
	}
	info := ServerInfo{
		Versions:      v.Versions,
		RefreshTokens: session.ServerRefreshes(v, sess.Tokens()) || a.OAuth != nil,
		Kind:          matrix.ParseServerAuthKind(a.Kind),
	}
	if info.Kind == 0 {
		// Signed in before kinds were recorded: ask the server.
		if sa, err := s.probe(ctx, sess.Client(), false); err == nil {
			info.Kind = sa.Kind
		}
	}
	chk, err := s.CheckLoginToken(ctx, userID)
	if err != nil {
		return info, err
	}
	info.GetLoginToken = chk.Supported
	if !chk.Supported {
		info.Note = chk.Reason
	}
	if session.RenewalOf(sess.Tokens()) == session.RenewalNotNeeded {
		info.Note = joinNotes(info.Note, NonExpiringNote)
	}
	return info, nil
}

// NonExpiringNote says why a token has no expiry and nothing refreshes it.
const NonExpiringNote = "this server issues tokens that do not expire"

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Devices lists the user's devices.
func (s *Service) Devices(ctx context.Context, userID string) ([]matrix.Device, error) {
	sess, _, err := s.Session(ctx, userID)
	if err != nil {
		return nil, err
	}
	var devs []matrix.Device
	err = s.do(ctx, sess, func(ctx context.Context, tok matrix.Secret) error {
		var err error
		devs, err = sess.Client().Devices(ctx, tok)
		return err
	})
	return devs, err
}

// DeleteDevice deletes one device (UIA: a *matrix.UIAChallenge asks for auth).
func (s *Service) DeleteDevice(ctx context.Context, userID, deviceID string, auth *matrix.AuthData) error {
	return s.DeleteDevices(ctx, userID, []string{deviceID}, auth)
}

// DeleteDevices deletes devices in one request, so one UIA covers them all.
// Deleting the account's own device signs it out here too.
func (s *Service) DeleteDevices(ctx context.Context, userID string, ids []string, auth *matrix.AuthData) error {
	if a, err := s.Account(userID); err == nil && oauthServer(a) {
		// Such a server deletes devices only on its account page.
		if len(ids) == 1 && ids[0] == a.DeviceID {
			return s.SignOut(ctx, a.UserID) // the account's own session: revoked (or logged out)
		}
		if a.OAuth == nil {
			// A session of the password compatibility layer: the page is in
			// the server's metadata.
			if a.OAuth, err = s.serverAccountPage(ctx, a); err != nil {
				return err
			}
		}
		if a.OAuth != nil {
			return deviceDeletion(a, ids)
		}
	}
	sess, a, err := s.Session(ctx, userID)
	if err != nil {
		return err
	}
	err = s.do(ctx, sess, func(ctx context.Context, tok matrix.Secret) error {
		if len(ids) == 1 {
			return sess.Client().DeleteDevice(ctx, tok, ids[0], auth)
		}
		return sess.Client().DeleteDevices(ctx, tok, ids, auth)
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == a.DeviceID {
			s.mgr.Remove(session.AccountKey{UserID: a.UserID, DeviceID: a.DeviceID})
			return s.store.RemoveAccount(ctx, a.UserID)
		}
	}
	return nil
}

// CheckLoginToken says whether this account may mint login tokens, and the
// path to try first. Only the capability is asked for: a server that allows
// minting is tried on the stable path, and MintLoginToken looks for an
// advertised unstable path only if that one is missing. The login flows are
// asked for only on a refusal, to say whether the server or the account is
// the reason.
func (s *Service) CheckLoginToken(ctx context.Context, userID string) (LoginTokenCheck, error) {
	sess, a, err := s.Session(ctx, userID)
	if err != nil {
		return LoginTokenCheck{}, err
	}
	if oauthServer(a) {
		// Such a server never offers get_token (Synapse refuses the setting).
		if a.OAuth == nil {
			// A password compatibility session: the page is in the metadata.
			a.OAuth, _ = s.serverAccountPage(ctx, a)
		}
		return oauthLoginTokenCheck(a), nil
	}
	c := sess.Client()
	var caps *matrix.CapabilitiesResponse
	err = s.do(ctx, sess, func(ctx context.Context, tok matrix.Secret) error {
		var err error
		caps, err = c.Capabilities(ctx, tok)
		return err
	})
	if err != nil && !matrix.IsUnsupported(err) {
		return LoginTokenCheck{}, err
	}
	if caps != nil && caps.GetLoginTokenEnabled() {
		return LoginTokenCheck{Supported: true, Path: matrix.GetLoginTokenEndpoint.Path}, nil
	}
	flows, err := loginFlows(ctx, c)
	if err != nil {
		return LoginTokenCheck{}, err
	}
	if flows.AdvertisesGetLoginToken() {
		return LoginTokenCheck{Reason: "your account is not allowed to mint login tokens"}, nil
	}
	return LoginTokenCheck{Reason: "this server does not offer login tokens"}, nil
}

// loginFlows asks for the login flows; a server without the endpoint has none.
func loginFlows(ctx context.Context, c *matrix.Client) (*matrix.LoginFlowsResponse, error) {
	flows, err := c.LoginFlows(ctx)
	if err != nil {
		if !matrix.IsUnsupported(err) {
			return nil, err
		}
		flows = &matrix.LoginFlowsResponse{}
	}
	return flows, nil
}

// advertisedLoginTokenPath is the get_token path the server's versions and
// login flows name, for a server without the stable one.
func advertisedLoginTokenPath(ctx context.Context, c *matrix.Client) (string, bool, error) {
	v, err := c.Versions(ctx)
	if err != nil {
		return "", false, err
	}
	flows, err := loginFlows(ctx, c)
	if err != nil {
		return "", false, err
	}
	path, ok := matrix.LoginTokenPath(v, flows)
	return path, ok, nil
}

// MintLoginToken asks for a single-use login token. auth == nil starts a UIA
// session and picks the endpoint path, which is then kept for the whole UIA
// session (servers refuse a path change mid-session).
func (s *Service) MintLoginToken(ctx context.Context, userID string, auth *matrix.AuthData) (*matrix.GetLoginTokenResponse, error) {
	sess, a, err := s.Session(ctx, userID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	path := s.uiaPaths[a.UserID]
	s.mu.Unlock()
	starting := auth == nil || path == ""
	if starting {
		chk, err := s.CheckLoginToken(ctx, a.UserID)
		if err != nil {
			return nil, err
		}
		if !chk.Supported {
			return nil, unsupportedErrorf("%s", chk.Reason)
		}
		path = chk.Path
	}
	resp, err := s.getLoginToken(ctx, sess, path, auth)
	if starting && matrix.IsUnsupported(err) && path == matrix.GetLoginTokenEndpoint.Path {
		// No stable endpoint: an older server may offer an unstable one.
		alt, ok, aerr := advertisedLoginTokenPath(ctx, sess.Client())
		if aerr != nil {
			return nil, aerr
		}
		if ok && alt != path {
			path = alt
			resp, err = s.getLoginToken(ctx, sess, path, auth)
		}
	}
	if starting {
		s.mu.Lock()
		s.uiaPaths[a.UserID] = path
		s.mu.Unlock()
	}
	var merr *matrix.Error
	switch {
	case err == nil:
	case matrix.IsUnsupported(err):
		return nil, unsupportedErrorf("this server does not offer login tokens")
	case auth == nil && errors.As(err, &merr) && merr.Status == 400:
		// Before any UIA, a 400 is the server refusing this user.
		return nil, unsupportedErrorf("your account is not allowed to mint login tokens")
	default:
		return nil, err
	}
	s.mu.Lock()
	delete(s.uiaPaths, a.UserID)
	s.mu.Unlock()
	return resp, nil
}

func (s *Service) getLoginToken(ctx context.Context, sess *session.Session, path string, auth *matrix.AuthData) (*matrix.GetLoginTokenResponse, error) {
	var resp *matrix.GetLoginTokenResponse
	err := s.do(ctx, sess, func(ctx context.Context, tok matrix.Secret) error {
		var err error
		resp, err = sess.Client().GetLoginToken(ctx, tok, path, matrix.GetLoginTokenRequest{Auth: auth})
		return err
	})
	return resp, err
}

// FallbackURL is the browser page for a UIA stage the terminal cannot do.
func (s *Service) FallbackURL(userID, stage, session string) string {
	a, err := s.Account(userID)
	if err != nil {
		return ""
	}
	c, err := s.AccountClient(a)
	if err != nil {
		return ""
	}
	return c.FallbackURL(stage, session)
}

// StoreName names where secrets are kept.
// Store is the keystore the service works on.
func (s *Service) Store() *keystore.Store { return s.store }

func (s *Service) StoreName() string { return s.store.BackendName() }

// Demo is the banner data in demo mode, nil otherwise.
func (s *Service) Demo() *DemoInfo { return s.demo }
