package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

const (
	indexName     = "accounts.json"
	indexLockName = "index.lock"
	// indexVersion is the newest format this mxauth reads. A file is written
	// as version 1, the format older releases read, unless it records an OAuth
	// 2.0 session: then as version 2, which those releases refuse. They would
	// otherwise refresh the session at /refresh, read the refusal as the
	// device signed out and delete its tokens, and drop its OAuth record from
	// the file on their next write.
	indexVersion      = indexVersionOAuth
	indexVersionBasic = 1
	indexVersionOAuth = 2
)

// Account is one signed-in session as the index records it. Nothing here is secret.
type Account struct {
	UserID     string `json:"user_id"`
	DeviceID   string `json:"device_id"`
	Homeserver string `json:"homeserver"` // client-server API base URL
	// InsecureHTTP: the user allowed plain http:// to this non-loopback
	// homeserver when signing in (login --insecure-http).
	InsecureHTTP bool      `json:"insecure_http,omitempty"`
	DisplayName  string    `json:"display_name,omitempty"`
	AddedAt      time.Time `json:"added_at"`
	LastUsedAt   time.Time `json:"last_used_at,omitempty"`
	SignedOut    bool      `json:"signed_out,omitempty"`    // state the session engine reported
	NeedsSignIn  bool      `json:"needs_sign_in,omitempty"` // state the session engine reported
	// Kind is how the homeserver had users sign in when this account signed
	// in (matrix.ServerAuthKind.Name(): "legacy", "oauth", "oauth-compat");
	// "" in entries written before it was recorded.
	Kind string `json:"kind,omitempty"`
	// OAuth is the client an OAuth 2.0 session refreshes and revokes as, and
	// its endpoints (nothing secret); nil for a session of the legacy API,
	// including one signed in through a password compatibility layer.
	OAuth *matrix.OAuthClient `json:"oauth,omitempty"`
}

// Key is the account's keyring identity.
func (a Account) Key() session.AccountKey {
	return session.AccountKey{UserID: a.UserID, DeviceID: a.DeviceID}
}

// PendingRemoval marks a keyring item being deleted. It is written before the
// item is deleted and cleared after, so a run that stopped in between is
// finished by Repair: keyring items cannot be listed, only looked up by key.
type PendingRemoval struct {
	UserID   string    `json:"user_id"`
	DeviceID string    `json:"device_id"`
	Since    time.Time `json:"since"`
	// Replaced: the account signed in again on another device and only the old
	// device's item goes; otherwise the whole account is being removed.
	Replaced bool `json:"replaced,omitempty"`
	// Login: a sign-in is about to save this device's tokens. The account
	// entry that follows drops the marker; a marker whose device no account
	// lists is a sign-in that stopped half way, and its item holds a live
	// session nobody tracks.
	Login bool `json:"login,omitempty"`
	// Homeserver is where the device lives, so a live session found in its
	// item can be signed out there before the item goes.
	Homeserver string `json:"homeserver,omitempty"`
	// InsecureHTTP: plain http:// to Homeserver was allowed at sign-in.
	InsecureHTTP bool `json:"insecure_http,omitempty"`
	// OAuth: the item holds an OAuth 2.0 session, ended by revocation as this
	// client (never /logout, which such a session cannot use).
	OAuth *matrix.OAuthClient `json:"oauth,omitempty"`
}

func (p PendingRemoval) key() session.AccountKey {
	return session.AccountKey{UserID: p.UserID, DeviceID: p.DeviceID}
}

// same reports whether q is the marker p, as read from the file again.
func (p PendingRemoval) same(q PendingRemoval) bool {
	return p.key() == q.key() && p.Since.Equal(q.Since) && p.Login == q.Login && p.Replaced == q.Replaced
}

// indexFile is accounts.json.
type indexFile struct {
	Version         int              `json:"version"`
	Default         string           `json:"default,omitempty"`
	Accounts        []Account        `json:"accounts"`
	PendingRemovals []PendingRemoval `json:"pending_removals,omitempty"`
}

func (x *indexFile) find(userID string) int {
	return slices.IndexFunc(x.Accounts, func(a Account) bool { return a.UserID == userID })
}

func (x *indexFile) addPending(p PendingRemoval) {
	for _, q := range x.PendingRemovals {
		if q.key() == p.key() {
			return
		}
	}
	x.PendingRemovals = append(x.PendingRemovals, p)
}

func (x *indexFile) dropPending(k session.AccountKey) {
	x.PendingRemovals = slices.DeleteFunc(x.PendingRemovals, func(p PendingRemoval) bool { return p.key() == k })
}

// formatVersion is the oldest format that holds everything in x (see indexVersion).
func (x *indexFile) formatVersion() int {
	oauth := slices.ContainsFunc(x.Accounts, func(a Account) bool { return a.OAuth != nil }) ||
		slices.ContainsFunc(x.PendingRemovals, func(p PendingRemoval) bool { return p.OAuth != nil })
	if oauth {
		return indexVersionOAuth
	}
	return indexVersionBasic
}

// ErrUnknownAccount is wrapped by errors about a user ID the index does not list.
var ErrUnknownAccount = errors.New("no such account")

// errNoChange lets an update skip the write.
var errNoChange = errors.New("no change")

// readIndex reads accounts.json; a missing file is an empty index.
func (s *Store) readIndex() (indexFile, error) {
	path := s.IndexPath()
	if err := checkIndexSafety(s.dir, path); err != nil {
		return indexFile{}, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return indexFile{Version: indexVersion}, nil
	}
	if err != nil {
		return indexFile{}, fmt.Errorf("keystore: read the account index %s: %w", path, err)
	}
	var x indexFile
	corrupt := func(why string) error {
		return &Error{Kind: KindCorrupt, Op: "read the account index", Path: path, Err: errors.New(why)}
	}
	if err := json.Unmarshal(data, &x); err != nil {
		// The decoder's text is about a non-secret file, so it may be shown.
		return indexFile{}, corrupt(err.Error())
	}
	switch {
	case x.Version == 0:
		return indexFile{}, corrupt("no format version")
	case x.Version > indexVersion:
		return indexFile{}, corrupt(fmt.Sprintf("format version %d is newer than this mxauth understands (%d)", x.Version, indexVersion))
	}
	for _, a := range x.Accounts {
		if a.UserID == "" || a.DeviceID == "" {
			return indexFile{}, corrupt("an account without user or device ID")
		}
	}
	return x, nil
}

// update re-reads the index under the index lock (other processes may have
// changed it), applies fn and writes the result atomically.
func (s *Store) update(fn func(*indexFile) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Before ensureDir tightens a directory: one others could write to is
	// refused, not quietly made private.
	if err := checkIndexSafety(s.dir, s.IndexPath()); err != nil {
		return err
	}
	if err := s.ensureDir(); err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.lockTimeout)
	defer cancel()
	lockPath := filepath.Join(s.dir, indexLockName)
	l, err := lockFile(ctx, lockPath)
	if err != nil {
		if errors.Is(err, errLockBusy) {
			return &LockBusyError{Path: lockPath, Waited: time.Since(start)}
		}
		return fmt.Errorf("keystore: lock the account index: %w", err)
	}
	defer l.unlock()

	x, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(&x); err != nil {
		if errors.Is(err, errNoChange) {
			s.setSnapshot(x)
			return nil
		}
		return err
	}
	if err := s.writeIndex(x); err != nil {
		return err
	}
	s.setSnapshot(x)
	return nil
}

// setSnapshot replaces the in-memory index that Accounts and friends read.
func (s *Store) setSnapshot(x indexFile) {
	s.snapMu.Lock()
	s.idx = x
	s.snapMu.Unlock()
}

// ensureDir creates Dir private to the user, and tightens it if it was not.
func (s *Store) ensureDir() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("keystore: create %s: %w", s.dir, err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(s.dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(s.dir, 0o700); err != nil {
				return fmt.Errorf("keystore: make %s private: %w", s.dir, err)
			}
		}
	}
	return nil
}

// writeIndex replaces accounts.json atomically: a temporary file in the same
// directory, flushed, renamed over the old one, then the directory flushed so
// the rename itself survives a crash.
func (s *Store) writeIndex(x indexFile) (err error) {
	x.Version = x.formatVersion()
	if x.Accounts == nil {
		x.Accounts = []Account{}
	}
	data, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return fmt.Errorf("keystore: encode the account index: %w", err)
	}
	data = append(data, '\n')
	path := s.IndexPath()
	tmp, err := os.CreateTemp(s.dir, ".accounts-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("keystore: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("keystore: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("keystore: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("keystore: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keystore: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("keystore: write %s: %w", path, err)
	}
	syncDir(s.dir)
	return nil
}

func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return // directories cannot be opened for flushing there
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Reload re-reads the index, picking up other processes' changes.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.readIndex()
	if err != nil {
		return err
	}
	s.setSnapshot(x)
	return nil
}

// Accounts lists the accounts as last read or written (see Reload). Like the
// other readers of the snapshot it never waits for an update in progress.
func (s *Store) Accounts() []Account {
	s.snapMu.RLock()
	defer s.snapMu.RUnlock()
	return slices.Clone(s.idx.Accounts)
}

// Account finds an account by user ID.
func (s *Store) Account(userID string) (Account, bool) {
	s.snapMu.RLock()
	defer s.snapMu.RUnlock()
	if i := s.idx.find(userID); i >= 0 {
		return s.idx.Accounts[i], true
	}
	return Account{}, false
}

// Default is the account marked default, or the only account.
func (s *Store) Default() (Account, bool) {
	s.snapMu.RLock()
	defer s.snapMu.RUnlock()
	if s.idx.Default != "" {
		if i := s.idx.find(s.idx.Default); i >= 0 {
			return s.idx.Accounts[i], true
		}
	}
	if len(s.idx.Accounts) == 1 {
		return s.idx.Accounts[0], true
	}
	return Account{}, false
}

// SetDefault marks the account used when a command names none.
func (s *Store) SetDefault(userID string) error {
	return s.update(func(x *indexFile) error {
		if x.find(userID) < 0 {
			return fmt.Errorf("keystore: set default: %s: %w", userID, ErrUnknownAccount)
		}
		x.Default = userID
		return nil
	})
}

// PutAccount adds the account or updates the one with the same user ID. When
// the device changes, the old device's keyring item is marked for removal and
// Repair deletes it. Save the tokens before adding a new account, so the index
// never lists an account whose secrets were never written.
func (s *Store) PutAccount(a Account) error {
	if a.UserID == "" || a.DeviceID == "" {
		return errors.New("keystore: an account needs a user ID and a device ID")
	}
	now := time.Now().UTC()
	return s.update(func(x *indexFile) error {
		i := x.find(a.UserID)
		if i < 0 {
			if a.AddedAt.IsZero() {
				a.AddedAt = now
			}
			x.Accounts = append(x.Accounts, a)
			x.dropPending(a.Key())
			return nil
		}
		old := x.Accounts[i]
		if a.AddedAt.IsZero() {
			a.AddedAt = old.AddedAt
		}
		if old.DeviceID != a.DeviceID {
			x.addPending(PendingRemoval{UserID: old.UserID, DeviceID: old.DeviceID, Since: now, Replaced: true, Homeserver: old.Homeserver, InsecureHTTP: old.InsecureHTTP, OAuth: old.OAuth})
		}
		x.dropPending(a.Key())
		x.Accounts[i] = a
		return nil
	})
}

// PendingRemovals lists keyring items whose removal has not finished.
func (s *Store) PendingRemovals() []PendingRemoval {
	s.snapMu.RLock()
	defer s.snapMu.RUnlock()
	return slices.Clone(s.idx.PendingRemovals)
}

// RemoveAccount deletes the account's keyring item, then its index entry. A
// marker written first lets Repair finish the job if this run stops between
// the two, or if the keyring cannot be reached now (the account then stays
// listed and the error says why).
func (s *Store) RemoveAccount(ctx context.Context, userID string) error {
	var acct Account
	err := s.update(func(x *indexFile) error {
		i := x.find(userID)
		if i < 0 {
			return fmt.Errorf("keystore: remove %s: %w", userID, ErrUnknownAccount)
		}
		acct = x.Accounts[i]
		x.addPending(PendingRemoval{UserID: acct.UserID, DeviceID: acct.DeviceID, Since: time.Now().UTC()})
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.deleteItem(ctx, "remove account", acct.Key()); err != nil {
		if k, _ := KindOf(err); k != KindNotFound {
			return err
		}
	}
	return s.update(func(x *indexFile) error {
		x.removeAccount(acct.Key())
		x.dropPending(acct.Key())
		return nil
	})
}

// removeAccount drops the entry for k (only if it still has that device) and
// a default pointing at it.
func (x *indexFile) removeAccount(k session.AccountKey) {
	x.Accounts = slices.DeleteFunc(x.Accounts, func(a Account) bool { return a.Key() == k })
	if x.Default == k.UserID && x.find(k.UserID) < 0 {
		x.Default = ""
	}
}

// BeginLogin records, before a sign-in saves the tokens of a device no
// account lists yet, that it is about to: if the run stops before the account
// entry is written (which drops the marker), Repair finds the item and signs
// its session out. Call it holding LockLogin for the user; insecureHTTP says
// that plain http:// to a non-loopback homeserver was allowed for this sign-in;
// oauth, for an OAuth 2.0 sign-in, is the client whose revocation ends it.
func (s *Store) BeginLogin(userID, deviceID, homeserver string, insecureHTTP bool, oauth *matrix.OAuthClient) error {
	p := PendingRemoval{UserID: userID, DeviceID: deviceID, Since: time.Now().UTC(), Login: true, Homeserver: homeserver, InsecureHTTP: insecureHTTP, OAuth: oauth}
	return s.update(func(x *indexFile) error {
		x.dropPending(p.key())
		x.addPending(p)
		return nil
	})
}

// AbandonLogin drops a sign-in's marker after the sign-in undid itself (its
// item deleted, its device signed out).
func (s *Store) AbandonLogin(acct session.AccountKey) error {
	return s.update(func(x *indexFile) error {
		for _, p := range x.PendingRemovals {
			if p.key() == acct && p.Login {
				x.dropPending(acct)
				return nil
			}
		}
		return errNoChange
	})
}

// Logout ends, on its homeserver, the session whose tokens a marked item
// holds. It returns nil when the session is over (also when the server says
// it already was) and an error when it could not tell, to try again later.
type Logout func(ctx context.Context, p PendingRemoval, t matrix.TokenSet) error

// Note is one finding of Repair: Done says whether it is dealt with or still
// needs the user (or a later run).
type Note struct {
	Text string
	Done bool
}

// Repair finishes removals an earlier run left half done and reports accounts
// whose keyring item is missing or damaged. Every finding becomes a note for
// the user; the error is for an index or keyring that cannot be used at all.
func (s *Store) Repair(ctx context.Context) (notes []string, err error) {
	return s.RepairWith(ctx, nil)
}

// RepairWith is Repair with a logout that signs out the sessions of a
// replaced device or of a sign-in that stopped half way before their items go.
func (s *Store) RepairWith(ctx context.Context, logout Logout) (notes []string, err error) {
	found, err := s.FinishPending(ctx, logout)
	for _, n := range found {
		notes = append(notes, n.Text)
	}
	if err != nil {
		return notes, err
	}
	for _, a := range s.Accounts() {
		if a.SignedOut {
			continue
		}
		_, lerr := s.LoadTokens(ctx, a.Key())
		switch k, _ := KindOf(lerr); {
		case lerr == nil:
		case k == KindNotFound:
			notes = append(notes, fmt.Sprintf("%s (device %s): its tokens are missing from %s; sign in again", a.UserID, a.DeviceID, s.BackendName()))
		case k == KindCorrupt:
			notes = append(notes, fmt.Sprintf("%s (device %s): its keyring item is damaged; sign in again", a.UserID, a.DeviceID))
		default:
			notes = append(notes, fmt.Sprintf("%s (device %s): could not check its tokens: %v", a.UserID, a.DeviceID, lerr))
			if isStoreProblem(lerr) {
				return notes, lerr
			}
		}
	}
	return notes, nil
}

// FinishPending works through the markers in the index: removals an earlier
// run left half done, old devices' items, and sign-ins that stopped between
// saving their tokens and listing their account. It is cheap when there are
// none, so every command runs it.
func (s *Store) FinishPending(ctx context.Context, logout Logout) (notes []Note, err error) {
	if err := s.Reload(); err != nil {
		return nil, err
	}
	for _, p := range s.PendingRemovals() {
		var n *Note
		if p.Login {
			n, err = s.finishLogin(ctx, p, logout)
		} else {
			n, err = s.finishRemoval(ctx, p, logout)
		}
		if n != nil {
			notes = append(notes, *n)
		}
		if err != nil {
			return notes, err
		}
	}
	return notes, nil
}

// finishRemoval deletes a marked item (signing out a replaced device's session
// first) and, for a whole account, its index entry.
func (s *Store) finishRemoval(ctx context.Context, p PendingRemoval, logout Logout) (*Note, error) {
	signedOut := false
	if p.Replaced {
		unlock, err := s.tryLock(ctx, p.key())
		if err != nil {
			return nil, nil // in use right now; a later run finishes it
		}
		defer unlock()
		var n *Note
		if signedOut, n, err = s.endSession(ctx, p, logout); n != nil || err != nil {
			return n, err
		}
	}
	derr := s.deleteItem(ctx, "finish removing", p.key())
	if k, _ := KindOf(derr); derr != nil && k != KindNotFound {
		n := &Note{Text: fmt.Sprintf("%s (device %s): could not finish removing the account: %v", p.UserID, p.DeviceID, derr)}
		if p.Replaced {
			n.Text = fmt.Sprintf("%s: could not delete the keyring item of the old device %s yet: %v", p.UserID, p.DeviceID, derr)
		}
		if isStoreProblem(derr) {
			return n, derr
		}
		return n, nil
	}
	if err := s.update(func(x *indexFile) error {
		if !p.Replaced {
			x.removeAccount(p.key())
		}
		x.dropPending(p.key())
		return nil
	}); err != nil {
		return nil, err
	}
	switch {
	case p.Replaced && signedOut:
		return &Note{Text: fmt.Sprintf("%s: signed out the old device %s and deleted its keyring item", p.UserID, p.DeviceID), Done: true}, nil
	case p.Replaced:
		return &Note{Text: fmt.Sprintf("%s: deleted the keyring item of the old device %s", p.UserID, p.DeviceID), Done: true}, nil
	}
	return &Note{Text: fmt.Sprintf("%s (device %s): finished removing the account, which an earlier run had started", p.UserID, p.DeviceID), Done: true}, nil
}

// finishLogin settles a sign-in's marker. If the account lists the device, the
// sign-in got far enough and only the marker goes. Otherwise its item (if the
// save happened) holds a live session no account tracks: it is signed out on
// the server, then deleted. A sign-in still running holds the user's login
// lock, and is left alone.
func (s *Store) finishLogin(ctx context.Context, p PendingRemoval, logout Logout) (*Note, error) {
	unlock, err := s.tryLockLogin(ctx, p.UserID)
	if err != nil {
		return nil, nil
	}
	defer unlock()
	if err := s.Reload(); err != nil {
		return nil, err
	}
	s.snapMu.RLock()
	still := slices.ContainsFunc(s.idx.PendingRemovals, p.same)
	listed := slices.ContainsFunc(s.idx.Accounts, func(a Account) bool { return a.Key() == p.key() })
	s.snapMu.RUnlock()
	if !still {
		return nil, nil
	}
	if listed {
		return nil, s.AbandonLogin(p.key())
	}
	signedOut, n, err := s.endSession(ctx, p, logout)
	if n != nil || err != nil {
		return n, err
	}
	if err := s.DeleteTokens(ctx, p.key()); err != nil {
		n := &Note{Text: fmt.Sprintf("%s: could not delete the keyring item of device %s, left by an interrupted sign-in: %v", p.UserID, p.DeviceID, err)}
		if isStoreProblem(err) {
			return n, err
		}
		return n, nil
	}
	if err := s.AbandonLogin(p.key()); err != nil {
		return nil, err
	}
	if !signedOut {
		return &Note{Text: fmt.Sprintf("%s: deleted the keyring item of device %s, left behind by an interrupted sign-in; the device may remain on the server", p.UserID, p.DeviceID)}, nil
	}
	return &Note{Text: fmt.Sprintf("%s: signed out device %s, left behind by an interrupted sign-in, and deleted its keyring item", p.UserID, p.DeviceID), Done: true}, nil
}

// endSession signs out the session a marked item holds, if there is one and
// a logout was given, and says whether it did. A note (and the marker kept)
// when that cannot be done now.
func (s *Store) endSession(ctx context.Context, p PendingRemoval, logout Logout) (signedOut bool, n *Note, err error) {
	if logout == nil || p.Homeserver == "" {
		return false, nil, nil
	}
	t, err := s.LoadTokens(ctx, p.key())
	switch k, _ := KindOf(err); {
	case err == nil:
	case k == KindNotFound:
		if p.Login {
			return false, &Note{Text: leftWithoutTokens(p)}, s.AbandonLogin(p.key())
		}
		return false, nil, nil
	case k == KindCorrupt:
		return false, nil, nil // nothing usable to sign out with; the item just goes
	default:
		n := &Note{Text: fmt.Sprintf("%s: could not read the keyring item of device %s to sign it out: %v", p.UserID, p.DeviceID, err)}
		if isStoreProblem(err) {
			return false, n, err
		}
		return false, n, nil
	}
	if err := logout(ctx, p, t); err != nil {
		return false, &Note{Text: fmt.Sprintf("%s: could not sign out device %s on %s yet, trying again next time: %v", p.UserID, p.DeviceID, p.Homeserver, err)}, nil
	}
	return true, nil, nil
}

// leftWithoutTokens is the note for a sign-in that stopped before its tokens
// were saved: its device may be on the server, and only the user can end it.
func leftWithoutTokens(p PendingRemoval) string {
	if p.OAuth != nil {
		where := "on the server's account page"
		if u, ok := p.OAuth.AccountManagementURL(matrix.AccountActionDevicesList, ""); ok && matrix.Sanitize(u) == u {
			where = "on the account page " + u
		}
		return fmt.Sprintf("%s: an interrupted sign-in may have left device %s on the server without its tokens; check it %s", p.UserID, p.DeviceID, where)
	}
	return fmt.Sprintf("%s: an interrupted sign-in left device %s on the server without its tokens; delete it from another session (mxauth devices delete %s)", p.UserID, p.DeviceID, p.DeviceID)
}

func isStoreProblem(err error) bool {
	var p session.StoreProblem
	return errors.As(err, &p) && p.StoreUnavailable()
}
