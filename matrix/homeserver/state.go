package homeserver

import (
	"sort"
	"strings"
	"time"
)

// supersededKept is how many replaced refresh tokens per device still answer
// 403 M_FORBIDDEN; older ones are forgotten (401), which keeps memory bounded
// like Synapse, which only keeps the previous token.
const supersededKept = 4

type user struct {
	id          string
	password    string
	locked      bool
	deactivated bool
	stages      []string // UIA stages; nil = m.login.password
	devices     map[string]*device
	lastMint    time.Time // last successful get_token, for the rate limit
}

type device struct {
	id          string
	user        *user
	displayName string
	lastSeenIP  string
	lastSeenTS  int64
	soft        bool // soft-logged-out: tokens refused with soft_logout:true
	access      map[string]*accessTok
	refresh     map[string]*refreshTok
	superseded  []string
}

type accessTok struct {
	token     string
	dev       *device
	expiresAt time.Time   // zero: never
	refresh   *refreshTok // issued together; nil when the client did not opt in
	oauth     bool        // an OAuth access token, validated by introspection
}

// refreshTok is one link of a rotation chain. prev is the token it replaced,
// still valid until this token or its access token is first used; next is an
// issued but not yet used successor. prevAccess is the access token issued
// with prev: like Synapse, it keeps working (until it expires) until this
// token is redeemed.
type refreshTok struct {
	token      string
	dev        *device
	access     *accessTok
	prev       *refreshTok
	next       *refreshTok
	prevAccess *accessTok
}

type loginTok struct {
	user      *user
	expiresAt time.Time
}

// AddUser creates (or resets the password of) a user and returns the full user ID.
func (s *Server) AddUser(localpart, password string) (userID string) {
	userID = "@" + localpart + ":" + s.serverName
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(userID)
	if u, ok := s.users[key]; ok {
		u.password = password
		return u.id
	}
	s.users[key] = &user{id: userID, password: password, devices: map[string]*device{}}
	return userID
}

func (s *Server) lookupUser(userID string) *user {
	return s.users[strings.ToLower(userID)]
}

// SetUserLocked locks or unlocks a user: a locked user's tokens get 401
// M_USER_LOCKED (soft_logout:true) everywhere except logout.
func (s *Server) SetUserLocked(userID string, locked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.lookupUser(userID); u != nil {
		u.locked = locked
	}
}

// SetUserDeactivated deactivates a user (all devices and tokens are deleted,
// login gets 403 M_USER_DEACTIVATED) or reactivates it.
func (s *Server) SetUserDeactivated(userID string, deactivated bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.lookupUser(userID)
	if u == nil {
		return
	}
	u.deactivated = deactivated
	if deactivated {
		for _, d := range u.devices {
			s.deleteDevice(d)
		}
	}
}

// SoftLogoutDevice invalidates a device's tokens but keeps the device: its
// access and refresh tokens get 401 M_UNKNOWN_TOKEN with soft_logout:true until
// the user logs in again with the same device_id.
func (s *Server) SoftLogoutDevice(userID, deviceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.lookupUser(userID); u != nil {
		if d := u.devices[deviceID]; d != nil {
			d.soft = true
		}
	}
}

// HardLogoutDevice deletes a device; its tokens become unknown (soft_logout:false).
func (s *Server) HardLogoutDevice(userID, deviceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.lookupUser(userID); u != nil {
		if d := u.devices[deviceID]; d != nil {
			s.deleteDevice(d)
		}
	}
}

// ExpireTokens makes the device's current access tokens expired now, as if
// the client had slept past their deadline.
func (s *Server) ExpireTokens(userID, deviceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.lookupUser(userID); u != nil {
		if d := u.devices[deviceID]; d != nil {
			past := s.now().Add(-time.Millisecond)
			for _, a := range d.access {
				a.expiresAt = past
			}
		}
	}
}

// SetUIAStages sets the single UIA flow a user is offered (default
// m.login.password). A stage other than m.login.password can only be done
// through the fallback page (or CompleteFallback).
func (s *Server) SetUIAStages(userID string, stages ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.lookupUser(userID); u != nil {
		u.stages = append([]string(nil), stages...)
	}
}

// Devices lists a user's device IDs, sorted.
func (s *Server) Devices(userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.lookupUser(userID)
	if u == nil {
		return nil
	}
	out := make([]string, 0, len(u.devices))
	for id := range u.devices {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// deleteDevice removes a device and every token it holds. Caller holds s.mu.
func (s *Server) deleteDevice(d *device) {
	s.clearDeviceTokens(d)
	delete(d.user.devices, d.id)
}

// clearDeviceTokens forgets every token of a device. Caller holds s.mu.
func (s *Server) clearDeviceTokens(d *device) {
	for t := range d.access {
		delete(s.access, t)
	}
	for t := range d.refresh {
		delete(s.refresh, t)
	}
	for _, t := range d.superseded {
		delete(s.superseded, t)
	}
	d.access = map[string]*accessTok{}
	d.refresh = map[string]*refreshTok{}
	d.superseded = nil
}

func (s *Server) revokeAccess(a *accessTok) {
	if a == nil {
		return
	}
	delete(s.access, a.token)
	delete(a.dev.access, a.token)
}

func (s *Server) revokeRefresh(r *refreshTok) {
	if r == nil {
		return
	}
	delete(s.refresh, r.token)
	delete(r.dev.refresh, r.token)
	s.revokeAccess(r.access)
	r.access = nil
	if r.next != nil {
		s.revokeRefresh(r.next)
		r.next = nil
	}
}

// supersede retires a refresh token whose successor has been used: reusing it
// answers 403 M_FORBIDDEN, as Synapse does.
func (s *Server) supersede(r *refreshTok) {
	delete(s.refresh, r.token)
	delete(r.dev.refresh, r.token)
	r.access, r.next, r.prev = nil, nil, nil
	d := r.dev
	s.superseded[r.token] = d
	d.superseded = append(d.superseded, r.token)
	if len(d.superseded) > supersededKept {
		delete(s.superseded, d.superseded[0])
		d.superseded = append(d.superseded[:0], d.superseded[1:]...)
	}
}

// markUsed records the first use of r (or of its access token): the token it
// replaced stops being valid.
func (s *Server) markUsed(r *refreshTok) {
	if r != nil && r.prev != nil {
		p := r.prev
		r.prev = nil
		s.supersede(p)
	}
}

// issue creates an access token (and a refresh token when withRefresh) on d.
// Caller holds s.mu.
func (s *Server) issue(d *device, withRefresh bool) (*accessTok, *refreshTok) {
	a := &accessTok{token: newAccessToken(d.user.id), dev: d}
	now := s.now()
	var r *refreshTok
	if withRefresh {
		r = &refreshTok{token: newRefreshToken(d.user.id), dev: d, access: a}
		a.refresh = r
		a.expiresAt = now.Add(s.opt.AccessTokenLifetime)
		s.refresh[r.token] = r
		d.refresh[r.token] = r
	} else if s.opt.NonRefreshableLifetime > 0 {
		a.expiresAt = now.Add(s.opt.NonRefreshableLifetime)
	}
	s.access[a.token] = a
	d.access[a.token] = a
	return a, r
}

// refreshEnabled says whether clients opting in get refresh tokens.
func (s *Server) refreshEnabled() bool {
	return !s.opt.NoRefresh && s.opt.AccessTokenLifetime > 0
}

// pruneWindow drops events older than a minute (sliding-window rate limit).
func pruneWindow(events []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(events) && now.Sub(events[i]) >= time.Minute {
		i++
	}
	return events[i:]
}

// failureWait is how long a key must wait before another password attempt
// under FailedLoginLimit; 0 when it may try. Caller holds s.mu.
func (s *Server) failureWait(key string) time.Duration {
	if s.opt.FailedLoginLimit <= 0 {
		return 0
	}
	now := s.now()
	f := pruneWindow(s.failures[key], now)
	if len(f) == 0 {
		delete(s.failures, key)
		return 0
	}
	s.failures[key] = f
	if len(f) >= s.opt.FailedLoginLimit {
		return f[0].Add(time.Minute).Sub(now)
	}
	return 0
}

// recordFailure counts a failed password attempt. Caller holds s.mu.
func (s *Server) recordFailure(key string) {
	if s.opt.FailedLoginLimit > 0 {
		s.failures[key] = append(s.failures[key], s.now())
	}
}
