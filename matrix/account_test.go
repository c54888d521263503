package matrix

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestWhoAmI(t *testing.T) {
	w := newWire(t)
	w.reply("GET", "/_matrix/client/v3/account/whoami", 200, `{"user_id":"@joe:example.org","device_id":"ABC1234","is_guest":true}`)
	r, err := w.client(t).WhoAmI(testCtx(t), "tok")
	if err != nil || r.UserID != "@joe:example.org" || r.DeviceID != "ABC1234" || !r.IsGuest {
		t.Fatalf("whoami = %+v, %v", r, err)
	}
	w.reply("GET", "/_matrix/client/v3/account/whoami", 401, `{"errcode":"M_UNKNOWN_TOKEN","error":"Unrecognised access token.","soft_logout":false}`)
	if _, err := w.client(t).WhoAmI(testCtx(t), "tok"); !IsUnknownToken(err) || IsSoftLogout(err) {
		t.Fatalf("401: %v", err)
	}
	w.reply("GET", "/_matrix/client/v3/account/whoami", 200, `{"device_id":"X"}`)
	if _, err := w.client(t).WhoAmI(testCtx(t), "tok"); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("no user_id: %v", err)
	}
}

func TestLogoutAndLogoutAll(t *testing.T) {
	w := newWire(t)
	w.reply("POST", "/_matrix/client/v3/logout", 200, `{}`)
	w.reply("POST", "/_matrix/client/v3/logout/all", 200, ``) // body ignored
	c := w.client(t)
	if err := c.Logout(testCtx(t), "t1"); err != nil {
		t.Fatal(err)
	}
	if err := c.LogoutAll(testCtx(t), "t2"); err != nil {
		t.Fatal(err)
	}
	r := w.last(t)
	if r.Path != "/_matrix/client/v3/logout/all" || r.Header.Get("Authorization") != "Bearer t2" || string(r.Body) != "{}" {
		t.Fatalf("logout/all request: %+v", r)
	}
	// Already gone: the caller clears state anyway, so the error is recognisable.
	w.reply("POST", "/_matrix/client/v3/logout", 401, `{"errcode":"M_UNKNOWN_TOKEN","soft_logout":false}`)
	if err := c.Logout(testCtx(t), "t1"); !IsUnknownToken(err) {
		t.Fatalf("logout 401: %v", err)
	}
}

func TestCapabilities(t *testing.T) {
	w := newWire(t)
	w.reply("GET", "/_matrix/client/v3/capabilities", 200, `{"capabilities":{"m.get_login_token":{"enabled":true},"m.change_password":{"enabled":false}}}`)
	c := w.client(t)
	r, err := c.Capabilities(testCtx(t), "tok")
	if err != nil || !r.GetLoginTokenEnabled() || r.ChangePasswordEnabled() {
		t.Fatalf("caps = %+v, %v", r, err)
	}
	cases := map[string]bool{
		`{"capabilities":{}}`: false,
		`{"capabilities":{"m.get_login_token":{"enabled":false}}}`:                                                       false,
		`{"capabilities":{"m.get_login_token":{}}}`:                                                                      false,
		`{"capabilities":{"m.get_login_token":"yes"}}`:                                                                   false,
		`{"capabilities":{"org.matrix.msc3882.get_login_token":{"enabled":true}}}`:                                       true,
		`{"capabilities":{"m.get_login_token":{"enabled":false},"org.matrix.msc3882.get_login_token":{"enabled":true}}}`: false,
	}
	for body, want := range cases {
		w.reply("GET", "/_matrix/client/v3/capabilities", 200, body)
		r, err := c.Capabilities(testCtx(t), "tok")
		if err != nil || r.GetLoginTokenEnabled() != want {
			t.Errorf("%s: enabled = %v, err %v; want %v", body, r.GetLoginTokenEnabled(), err, want)
		}
	}
	if !(&CapabilitiesResponse{Capabilities: map[string]json.RawMessage{}}).ChangePasswordEnabled() {
		t.Error("absent m.change_password must mean enabled")
	}
	var nilCaps *CapabilitiesResponse
	if nilCaps.GetLoginTokenEnabled() {
		t.Error("nil caps enabled")
	}
	w.reply("GET", "/_matrix/client/v3/capabilities", 200, `{}`)
	if _, err := c.Capabilities(testCtx(t), "tok"); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("no capabilities: %v", err)
	}
	w.reply("GET", "/_matrix/client/v3/capabilities", 429, `{"errcode":"M_LIMIT_EXCEEDED"}`)
	if _, err := c.Capabilities(testCtx(t), "tok"); !IsLimitExceeded(err) {
		t.Fatalf("429: %v", err)
	}
}

func TestDevices(t *testing.T) {
	w := newWire(t)
	w.reply("GET", "/_matrix/client/v3/devices", 200, `{"devices":[{"device_id":"QBUAZIFURK","display_name":"android\u001b[31m red\u202e","last_seen_ip":"1.2.3.4","last_seen_ts":1474491775024},{"device_id":"B"}]}`)
	c := w.client(t)
	devs, err := c.Devices(testCtx(t), "tok")
	if err != nil || len(devs) != 2 {
		t.Fatalf("devices = %+v, %v", devs, err)
	}
	if devs[0].DisplayName != "android red" || devs[0].LastSeenTS == nil || *devs[0].LastSeenTS != 1474491775024 || devs[1].LastSeenTS != nil {
		t.Fatalf("device 0 = %+v", devs[0])
	}
	w.reply("GET", "/_matrix/client/v3/devices", 200, `{}`)
	if devs, err := c.Devices(testCtx(t), "tok"); err != nil || devs == nil || len(devs) != 0 {
		t.Fatalf("no devices: %v %v", devs, err)
	}
	w.reply("GET", "/_matrix/client/v3/devices", 200, `{"devices":[{"display_name":"x"}]}`)
	if _, err := c.Devices(testCtx(t), "tok"); !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("device without id: %v", err)
	}
}

func TestDeleteDeviceUIA(t *testing.T) {
	w := newWire(t)
	path := "/_matrix/client/v3/devices/DEV/1"
	w.sequence("DELETE", path,
		jsonReply(401, `{"flows":[{"stages":["m.login.password"]}],"session":"del-1"}`),
		jsonReply(200, `{}`),
	)
	c := w.client(t)
	err := c.DeleteDevice(testCtx(t), "tok", "DEV/1", nil)
	ch, ok := AsUIA(err)
	if !ok || ch.Session != "del-1" {
		t.Fatalf("challenge: %v", err)
	}
	r := w.last(t)
	if r.Method != "DELETE" || string(r.Body) != "{}" || r.RawPath != "/_matrix/client/v3/devices/DEV%2F1" {
		t.Fatalf("first delete: %s %s %q", r.Method, r.RawPath, r.Body)
	}
	if err := c.DeleteDevice(testCtx(t), "tok", "DEV/1", PasswordAuth("del-1", "@me:hs", "pw")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(w.last(t).Body), `"session":"del-1"`) {
		t.Fatalf("auth not sent: %s", w.last(t).Body)
	}
	if err := c.DeleteDevice(testCtx(t), "tok", "", nil); err == nil {
		t.Fatal("empty device ID accepted")
	}
}

func TestDeleteDevices(t *testing.T) {
	w := newWire(t)
	w.sequence("POST", "/_matrix/client/v3/delete_devices",
		jsonReply(401, `{"flows":[{"stages":["m.login.password"]}],"session":"bulk"}`),
		jsonReply(200, `{}`),
	)
	c := w.client(t)
	if _, ok := AsUIA(c.DeleteDevices(testCtx(t), "tok", nil, nil)); !ok {
		t.Fatal("no challenge")
	}
	if string(w.last(t).Body) != `{"devices":[]}` {
		t.Fatalf("body = %s", w.last(t).Body)
	}
	if err := c.DeleteDevices(testCtx(t), "tok", []string{"A", "B"}, PasswordAuth("bulk", "@me:hs", "pw")); err != nil {
		t.Fatal(err)
	}
	b := w.last(t).bodyMap(t)
	if mustJSON(t, b["devices"]) != `["A","B"]` || b["auth"] == nil {
		t.Fatalf("body = %v", b)
	}
}

func TestEndpointMetadata(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range AllEndpoints() {
		if e.Method == "" || !strings.HasPrefix(e.Path, "/") || seen[e.String()] {
			t.Errorf("bad or duplicate endpoint %+v", e)
		}
		seen[e.String()] = true
		if !e.HasPath(e.Path) {
			t.Errorf("%s: HasPath(Path) false", e)
		}
		for _, h := range e.History {
			if !e.HasPath(h) || h == e.Path {
				t.Errorf("%s: history %q", e, h)
			}
		}
		if e.HasPath("/nope") {
			t.Errorf("%s: HasPath(/nope)", e)
		}
	}
	if RefreshEndpoint.Auth || !GetLoginTokenEndpoint.Auth || !GetLoginTokenEndpoint.RateLimited || LoginEndpoint.Auth || !WhoAmIEndpoint.Auth {
		t.Error("auth/rate-limit metadata wrong")
	}
	if GetLoginTokenEndpoint.Path != "/_matrix/client/v1/login/get_token" {
		t.Error("get_token must use the v1 prefix")
	}

	// Every endpoint the package declares is listed (the conformance tests
	// check only the listed ones against the spec), and every listed path is
	// a Matrix path the spec could define.
	declared := declaredEndpoints(t)
	if len(declared) == 0 {
		t.Fatal("found no Endpoint declarations in the package's files")
	}
	listed := map[string]bool{}
	for _, e := range AllEndpoints() {
		listed[e.String()] = true
		for _, p := range append([]string{e.Path}, e.History...) {
			if !matrixPath.MatchString(p) {
				t.Errorf("%s: %q is not a Matrix client path", e, p)
			}
		}
	}
	for name, e := range declared {
		if !listed[e] {
			t.Errorf("%s (%s) is declared but missing from AllEndpoints", name, e)
		}
	}
	if len(declared) != len(AllEndpoints()) {
		t.Errorf("%d endpoints declared, %d listed", len(declared), len(AllEndpoints()))
	}
}

var matrixPath = regexp.MustCompile(`^/(\.well-known/matrix/client|_matrix/client/(v\d+|r0|unstable(/[a-z0-9._]+)?|versions)(/[A-Za-z0-9_{}./]+)?)$`)

// declaredEndpoints finds the package-level `var XEndpoint = Endpoint{...}`
// in the package's own files and returns their "METHOD /path" by name.
func declaredEndpoints(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, v := range vs.Values {
					lit, ok := v.(*ast.CompositeLit)
					if !ok {
						continue
					}
					if id, ok := lit.Type.(*ast.Ident); !ok || id.Name != "Endpoint" {
						continue
					}
					out[vs.Names[i].Name] = literalField(lit, "Method") + " " + literalField(lit, "Path")
				}
			}
		}
	}
	return out
}

// literalField is the string literal given for field in lit ("" if none).
func literalField(lit *ast.CompositeLit, field string) string {
	for _, el := range lit.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		if k, ok := kv.Key.(*ast.Ident); ok && k.Name == field {
			if b, ok := kv.Value.(*ast.BasicLit); ok && b.Kind == token.STRING {
				return strings.Trim(b.Value, "`\"")
			}
		}
	}
	return ""
}
