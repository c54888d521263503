package keystore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mxauth/matrix"
	"mxauth/matrix/session"
)

// signedOut records the sessions a Logout was asked to end.
type signedOut struct {
	got  []PendingRemoval
	fail error
}

func (s *signedOut) logout(_ context.Context, p PendingRemoval, t matrix.TokenSet) error {
	if t.AccessToken.IsZero() {
		return errors.New("no access token given")
	}
	s.got = append(s.got, p)
	return s.fail
}

// A sign-in that saved its tokens but never listed its account: repair signs
// the session out, deletes the item and drops the marker.
func TestFinishPendingInterruptedLogin(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	ctx := context.Background()
	a := acctFor("@a:example.org", "NEW")
	if err := s.BeginLogin(a.UserID, a.DeviceID, a.Homeserver, false, nil); err != nil {
		t.Fatal(err)
	}
	s.SaveTokens(ctx, a.Key(), sampleTokens("new"))

	out := &signedOut{fail: errors.New("homeserver unreachable")}
	notes, err := s.FinishPending(ctx, out.logout)
	if err != nil || len(notes) != 1 || notes[0].Done || len(s.PendingRemovals()) != 1 {
		t.Fatalf("server unreachable: notes %+v, err %v, pending %+v", notes, err, s.PendingRemovals())
	}
	if _, err := s.LoadTokens(ctx, a.Key()); err != nil {
		t.Fatalf("the item went before its session was signed out: %v", err)
	}

	out.fail = nil
	notes, err = s.FinishPending(ctx, out.logout)
	if err != nil || len(notes) != 1 || !notes[0].Done || !strings.Contains(notes[0].Text, "interrupted sign-in") {
		t.Fatalf("notes %+v, err %v", notes, err)
	}
	if len(out.got) != 2 || out.got[1].Homeserver != a.Homeserver || out.got[1].DeviceID != "NEW" {
		t.Fatalf("sign-outs: %+v", out.got)
	}
	if _, err := s.LoadTokens(ctx, a.Key()); !errors.Is(err, session.ErrNoStoredTokens) {
		t.Fatalf("item kept: %v", err)
	}
	if p := s.PendingRemovals(); len(p) != 0 {
		t.Fatalf("markers left: %+v", p)
	}
}

// The account entry drops the sign-in's marker; a marker for a device the
// index lists only goes, its item stays.
func TestFinishPendingLoginThatFinished(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	ctx := context.Background()
	a := acctFor("@a:example.org", "DEV")
	s.BeginLogin(a.UserID, a.DeviceID, a.Homeserver, false, nil)
	s.SaveTokens(ctx, a.Key(), sampleTokens("a"))
	if err := s.PutAccount(a); err != nil {
		t.Fatal(err)
	}
	if p := s.PendingRemovals(); len(p) != 0 {
		t.Fatalf("the account entry kept the marker: %+v", p)
	}
	s.BeginLogin(a.UserID, a.DeviceID, a.Homeserver, false, nil)
	out := &signedOut{}
	if notes, err := s.FinishPending(ctx, out.logout); err != nil || len(notes) != 0 || len(out.got) != 0 {
		t.Fatalf("notes %+v, err %v, sign-outs %+v", notes, err, out.got)
	}
	if _, err := s.LoadTokens(ctx, a.Key()); err != nil || len(s.PendingRemovals()) != 0 {
		t.Fatalf("item %v, markers %+v", err, s.PendingRemovals())
	}
}

// A sign-in still running (it holds the user's sign-in lock) is left alone,
// even by another store of the same directory.
func TestFinishPendingSkipsRunningLogin(t *testing.T) {
	dir, secrets := t.TempDir(), NewMemoryBackend()
	s, other := openIndex(t, dir, secrets), openIndex(t, dir, secrets)
	ctx := context.Background()
	a := acctFor("@A:example.org", "NEW")
	unlock, err := s.LockLogin(ctx, "@a:example.org") // any case: one lock per user
	if err != nil {
		t.Fatal(err)
	}
	s.BeginLogin(a.UserID, a.DeviceID, a.Homeserver, false, nil)
	s.SaveTokens(ctx, a.Key(), sampleTokens("a"))
	out := &signedOut{}
	if notes, err := other.FinishPending(ctx, out.logout); err != nil || len(notes) != 0 || len(out.got) != 0 {
		t.Fatalf("a running sign-in was repaired: notes %+v, err %v", notes, err)
	}
	unlock()
	if notes, err := other.FinishPending(ctx, out.logout); err != nil || len(notes) != 1 || len(out.got) != 1 {
		t.Fatalf("after the sign-in stopped: notes %+v, err %v", notes, err)
	}
}

// A sign-in that stopped before its save leaves no item: the note says the
// device may be left on the server, and the marker goes.
func TestFinishPendingLoginWithoutItem(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	a := acctFor("@a:example.org", "NEW")
	s.BeginLogin(a.UserID, a.DeviceID, a.Homeserver, false, nil)
	out := &signedOut{}
	notes, err := s.FinishPending(context.Background(), out.logout)
	if err != nil || len(notes) != 1 || notes[0].Done || !strings.Contains(notes[0].Text, "devices delete NEW") {
		t.Fatalf("notes %+v, err %v", notes, err)
	}
	if len(s.PendingRemovals()) != 0 {
		t.Fatalf("markers: %+v", s.PendingRemovals())
	}
}

// A replaced device's session is signed out before its item goes.
func TestFinishPendingSignsOutReplacedDevice(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	ctx := context.Background()
	old, neu := acctFor("@a:example.org", "OLD"), acctFor("@a:example.org", "NEW")
	s.SaveTokens(ctx, old.Key(), sampleTokens("old"))
	s.PutAccount(old)
	s.SaveTokens(ctx, neu.Key(), sampleTokens("new"))
	s.PutAccount(neu)
	out := &signedOut{}
	notes, err := s.FinishPending(ctx, out.logout)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0].Text, "signed out the old device OLD") {
		t.Fatalf("notes %+v, err %v", notes, err)
	}
	if len(out.got) != 1 || out.got[0].DeviceID != "OLD" || out.got[0].Homeserver != old.Homeserver {
		t.Fatalf("sign-outs: %+v", out.got)
	}
}

// CheckWritable finds a keyring that takes writes but does not keep them,
// and one that refuses them, and leaves no probe item behind.
func TestCheckWritable(t *testing.T) {
	f := newFake()
	s := openWith(t, f, 0)
	ctx := context.Background()
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("memory keyring: %v", err)
	}
	f.set = func(service, key, value string) error { return errors.New("the collection is locked") }
	if err := s.CheckWritable(ctx); err == nil {
		t.Fatal("a keyring refusing writes passed")
	}
	f.set = func(service, key, value string) error { return f.Backend.Set(service, key, "something else") }
	if err := s.CheckWritable(ctx); err == nil || strings.Contains(err.Error(), probeAccount) {
		t.Fatalf("a keyring returning something else: %v", err)
	}
	f.set = nil
	var probes []string
	f.get = func(service, key string) (string, error) {
		probes = append(probes, key)
		return f.Backend.Get(service, key)
	}
	s.CheckWritable(ctx)
	f.get = nil
	for _, k := range probes {
		if _, err := f.Backend.Get(Service, k); err == nil {
			t.Fatalf("probe item %s left behind", k)
		}
	}
}
