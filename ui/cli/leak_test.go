package cli

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	ss "github.com/zalando/go-keyring/secret_service"

	"mxauth/keystore"
	"mxauth/keystore/keyringtest"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

// keyringItems lists the usernames of mxauth's Secret Service items for user.
func keyringItems(t *testing.T, user string) []string {
	t.Helper()
	svc, err := ss.NewSecretService()
	if err != nil {
		t.Fatalf("secret service: %v", err)
	}
	paths, err := svc.SearchItems(svc.GetLoginCollection(), map[string]string{"service": keystore.Service})
	if err != nil {
		t.Fatalf("search items: %v", err)
	}
	var out []string
	for _, p := range paths {
		v, err := svc.Object("org.freedesktop.secrets", p).GetProperty("org.freedesktop.Secret.Item.Attributes")
		if err != nil && !stillThere(svc, p) {
			continue // another test's item, deleted meanwhile
		}
		if err != nil {
			t.Fatalf("item attributes: %v", err)
		}
		attrs, _ := v.Value().(map[string]string)
		if name := attrs["username"]; strings.HasPrefix(name, user+"|") {
			out = append(out, name)
		}
	}
	return out
}

// stillThere says whether the keyring still lists the item at path p.
func stillThere(svc *ss.SecretService, p dbus.ObjectPath) bool {
	paths, err := svc.SearchItems(svc.GetLoginCollection(), map[string]string{"service": keystore.Service})
	return err != nil || slices.Contains(paths, p)
}

// TestNoSecretsInFiles logs in, refreshes and mints a login token, then reads
// every file under the config dir and the home/XDG dirs: no token or password
// may appear in any of them. gnome-keyring's own keyring files are read too:
// it encrypts them, so the plain values must not show there either.
func TestNoSecretsInFiles(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Minute})
	c := newCLI(t)
	c.login(srv, alice, pw)

	secrets := map[string]string{"password": pw}
	secrets["first access token"] = strings.TrimSpace(c.ok("", "token").stdout)
	c.ok("", "refresh")
	secrets["refreshed access token"] = strings.TrimSpace(c.ok("", "token").stdout)
	lt := decodeJSON[loginTokenJSON](t, c.ok(pw+"\n", "login-token", "--password-stdin", "--json").stdout)
	secrets["login token"] = lt.LoginToken

	// The refresh token only lives in the keyring; read it from there.
	st, err := keystore.Open(keystore.Options{Dir: c.dir})
	if err != nil {
		t.Fatal(err)
	}
	acct, ok := st.Account(alice)
	if !ok {
		t.Fatal("account missing from the index")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts, err := st.LoadTokens(ctx, session.AccountKey{UserID: acct.UserID, DeviceID: acct.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	secrets["refresh token"] = ts.RefreshToken.Reveal()
	if ts.AccessToken.Reveal() != secrets["refreshed access token"] {
		t.Fatal("the keyring holds another access token than mxauth token printed")
	}
	for name, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("%s is too short to search for: %q", name, v)
		}
	}

	roots := []string{c.dir}
	for _, k := range []string{"HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"} {
		if v := keyringtest.Lookup(keyringEnv, k); v != "" {
			roots = append(roots, v)
		}
	}
	files, keyringFiles := 0, 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil // sockets, vanished temp files
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			files++
			if strings.Contains(path, string(filepath.Separator)+"keyrings"+string(filepath.Separator)) {
				keyringFiles++
			}
			for name, v := range secrets {
				if bytes.Contains(data, []byte(v)) {
					t.Errorf("%s found in %s", name, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if files == 0 {
		t.Fatal("no files were read: the test checks nothing")
	}
	t.Logf("read %d files (%d of them gnome-keyring's encrypted keyrings)", files, keyringFiles)
}
