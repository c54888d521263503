package keystore

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"mxauth/matrix"
)

func testOAuthClient() *matrix.OAuthClient {
	return &matrix.OAuthClient{
		Issuer: "https://auth.example.org/", ClientID: "01CLIENT",
		TokenEndpoint:            "https://auth.example.org/oauth2/token",
		RevocationEndpoint:       "https://auth.example.org/oauth2/revoke",
		AccountManagementURI:     "https://auth.example.org/account",
		AccountManagementActions: []string{matrix.AccountActionDeviceDelete},
	}
}

func fileVersion(t *testing.T, s *Store) int {
	t.Helper()
	data, err := os.ReadFile(s.IndexPath())
	if err != nil {
		t.Fatal(err)
	}
	var x struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(data, &x); err != nil {
		t.Fatal(err)
	}
	return x.Version
}

// An OAuth account keeps its kind and client record; the file then takes the
// format older releases refuse, and goes back to the old one once no OAuth
// session is left in it.
func TestIndexOAuthAccount(t *testing.T) {
	dir := t.TempDir()
	s := openIndex(t, dir, nil)
	legacy := acctFor("@l:example.org", "LEG")
	legacy.Kind = matrix.AuthLegacy.Name()
	if err := s.PutAccount(legacy); err != nil {
		t.Fatal(err)
	}
	if v := fileVersion(t, s); v != 1 {
		t.Fatalf("an index without OAuth sessions has version %d, want 1 (older releases read it)", v)
	}
	a := acctFor("@a:example.org", "OAUTHDEV")
	a.Kind, a.OAuth = matrix.AuthOAuthOnly.Name(), testOAuthClient()
	if err := s.PutAccount(a); err != nil {
		t.Fatal(err)
	}
	if v := fileVersion(t, s); v != 2 {
		t.Fatalf("an index with an OAuth session has version %d, want 2", v)
	}
	data, _ := os.ReadFile(s.IndexPath())
	for _, want := range []string{`"kind": "oauth"`, `"client_id": "01CLIENT"`, `"token_endpoint"`, `"revocation_endpoint"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the file lacks %s:\n%s", want, data)
		}
	}
	other := openIndex(t, dir, nil)
	got, ok := other.Account(a.UserID)
	if !ok || got.Kind != "oauth" || got.OAuth == nil || got.OAuth.ClientID != "01CLIENT" || got.OAuth.TokenEndpoint != a.OAuth.TokenEndpoint ||
		len(got.OAuth.AccountManagementActions) != 1 || matrix.ParseServerAuthKind(got.Kind) != matrix.AuthOAuthOnly {
		t.Fatalf("read back: %+v %+v", got, got.OAuth)
	}
	if l, _ := other.Account(legacy.UserID); l.OAuth != nil || l.Kind != "legacy" {
		t.Fatalf("legacy entry read back as %+v", l)
	}
	if err := other.RemoveAccount(context.Background(), a.UserID); err != nil {
		t.Fatal(err)
	}
	if v := fileVersion(t, other); v != 1 {
		t.Fatalf("version after the OAuth account went: %d, want 1", v)
	}
}

// Files written before the kind was recorded read as they did.
func TestIndexReadsFilesWithoutKind(t *testing.T) {
	dir := t.TempDir()
	s := openIndex(t, dir, nil)
	old := `{"version": 1, "accounts": [{"user_id": "@a:example.org", "device_id": "D", "homeserver": "https://example.org", "added_at": "2026-01-02T03:04:05Z"}]}`
	if err := os.WriteFile(s.IndexPath(), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatalf("an index without kinds: %v", err)
	}
	a, ok := s.Account("@a:example.org")
	if !ok || a.Kind != "" || a.OAuth != nil || matrix.ParseServerAuthKind(a.Kind) != 0 {
		t.Fatalf("read %+v", a)
	}
	if err := os.WriteFile(s.IndexPath(), []byte(`{"version": 3, "accounts": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "newer than this mxauth understands (2)") {
		t.Fatalf("a newer format: %v", err)
	}
}

// The marker of an OAuth sign-in, and of a replaced OAuth device, carries the
// client, so repair revokes the session instead of calling /logout.
func TestFinishPendingOAuthMarkers(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	ctx := context.Background()
	a := acctFor("@a:example.org", "NEW")
	if err := s.BeginLogin(a.UserID, a.DeviceID, a.Homeserver, false, testOAuthClient()); err != nil {
		t.Fatal(err)
	}
	if v := fileVersion(t, s); v != 2 {
		t.Fatalf("an OAuth sign-in's marker left the file at version %d", v)
	}
	s.SaveTokens(ctx, a.Key(), sampleTokens("new"))
	out := &signedOut{}
	notes, err := s.FinishPending(ctx, out.logout)
	if err != nil || len(notes) != 1 || !notes[0].Done {
		t.Fatalf("notes %+v, err %v", notes, err)
	}
	if len(out.got) != 1 || out.got[0].OAuth == nil || out.got[0].OAuth.ClientID != "01CLIENT" {
		t.Fatalf("sign-outs: %+v", out.got)
	}
	if len(s.PendingRemovals()) != 0 {
		t.Fatalf("markers left: %+v", s.PendingRemovals())
	}

	old := acctFor("@b:example.org", "OLD")
	old.OAuth = testOAuthClient()
	s.SaveTokens(ctx, old.Key(), sampleTokens("old"))
	s.PutAccount(old)
	neu := acctFor("@b:example.org", "NEWB")
	s.SaveTokens(ctx, neu.Key(), sampleTokens("newb"))
	s.PutAccount(neu)
	out = &signedOut{}
	if notes, err := s.FinishPending(ctx, out.logout); err != nil || len(notes) != 1 || !notes[0].Done {
		t.Fatalf("replaced device: notes %+v, err %v", notes, err)
	}
	if len(out.got) != 1 || out.got[0].DeviceID != "OLD" || out.got[0].OAuth == nil {
		t.Fatalf("the replaced OAuth device was not ended as one: %+v", out.got)
	}
}

// An OAuth sign-in that stopped before its save points to the account page,
// where such a device is signed out, not to devices delete.
func TestFinishPendingOAuthLoginWithoutItem(t *testing.T) {
	s := openIndex(t, t.TempDir(), nil)
	a := acctFor("@a:example.org", "NEW")
	s.BeginLogin(a.UserID, a.DeviceID, a.Homeserver, false, testOAuthClient())
	notes, err := s.FinishPending(context.Background(), (&signedOut{}).logout)
	if err != nil || len(notes) != 1 || strings.Contains(notes[0].Text, "devices delete") ||
		!strings.Contains(notes[0].Text, "https://auth.example.org/account?action=org.matrix.devices_list") {
		t.Fatalf("notes %+v, err %v", notes, err)
	}
	if len(s.PendingRemovals()) != 0 {
		t.Fatalf("markers: %+v", s.PendingRemovals())
	}
}
