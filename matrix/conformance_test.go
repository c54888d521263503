package matrix

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The official OpenAPI definitions sit beside the repository (../../shared from here).
var specRoot = filepath.Join("..", "..", "shared", "spec", "openapi")

// openSpec loads the OpenAPI files, skipping when they are absent unless
// MXAUTH_REQUIRE_SPEC asks for them.
func openSpec(t *testing.T) *apiSpec {
	t.Helper()
	if st, err := os.Stat(specRoot); err != nil || !st.IsDir() {
		if v := os.Getenv("MXAUTH_REQUIRE_SPEC"); v != "" && v != "0" && v != "false" {
			t.Fatalf("MXAUTH_REQUIRE_SPEC=%s but %s is missing", v, specRoot)
		}
		t.Skipf("OpenAPI definitions not found at %s", specRoot)
	}
	return &apiSpec{t: t, docs: map[string]any{}}
}

type apiSpec struct {
	t    *testing.T
	mu   sync.Mutex
	docs map[string]any
}

// node is a YAML value together with the file its relative $refs resolve against.
type node struct {
	v    any
	file string
}

func (s *apiSpec) load(rel string) any {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.docs[rel]; ok {
		return d
	}
	data, err := os.ReadFile(filepath.Join(specRoot, rel))
	if err != nil {
		s.t.Fatalf("reading %s: %v", rel, err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		s.t.Fatalf("parsing %s: %v", rel, err)
	}
	doc = normaliseYAML(doc)
	s.docs[rel] = doc
	return doc
}

// normaliseYAML makes every mapping a map[string]any so it marshals as JSON.
func normaliseYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normaliseYAML(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normaliseYAML(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = normaliseYAML(e)
		}
		return x
	}
	return v
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// at walks a path of keys from a node.
func (n node) at(keys ...string) node {
	cur := n.v
	for _, k := range keys {
		cur = asMap(cur)[k]
	}
	return node{cur, n.file}
}

func (n node) m() map[string]any { return asMap(n.v) }

// deref follows $ref chains (file-relative, with optional #/fragment).
func (s *apiSpec) deref(n node) node {
	s.t.Helper()
	for i := 0; i < 20; i++ {
		ref, ok := n.m()["$ref"].(string)
		if !ok {
			return n
		}
		filePart, frag, _ := strings.Cut(ref, "#")
		file := n.file
		if filePart != "" {
			file = filepath.ToSlash(filepath.Join(filepath.Dir(n.file), filePart))
		}
		cur := s.load(file)
		for _, k := range strings.Split(strings.Trim(frag, "/"), "/") {
			if k != "" {
				cur = asMap(cur)[k]
			}
		}
		if cur == nil {
			s.t.Fatalf("unresolvable $ref %q in %s", ref, n.file)
		}
		n = node{cur, file}
	}
	s.t.Fatal("$ref loop")
	return n
}

// props collects an object schema's properties through $ref and allOf.
func (s *apiSpec) props(n node) map[string]node {
	n = s.deref(n)
	out := map[string]node{}
	for _, part := range asSlice(n.m()["allOf"]) {
		for k, v := range s.props(node{part, n.file}) {
			out[k] = v
		}
	}
	for k, v := range asMap(n.m()["properties"]) {
		out[k] = node{v, n.file}
	}
	return out
}

func (s *apiSpec) required(n node) []string {
	n = s.deref(n)
	var out []string
	for _, part := range asSlice(n.m()["allOf"]) {
		out = append(out, s.required(node{part, n.file})...)
	}
	for _, r := range asSlice(n.m()["required"]) {
		out = append(out, r.(string))
	}
	return out
}

func (s *apiSpec) typ(n node) string {
	n = s.deref(n)
	if t, ok := n.m()["type"].(string); ok {
		return t
	}
	for _, part := range asSlice(n.m()["allOf"]) {
		if t := s.typ(node{part, n.file}); t != "" {
			return t
		}
	}
	return ""
}

func (s *apiSpec) allowsExtra(n node) bool {
	n = s.deref(n)
	if _, ok := n.m()["additionalProperties"]; ok {
		return true
	}
	for _, part := range asSlice(n.m()["allOf"]) {
		if s.allowsExtra(node{part, n.file}) {
			return true
		}
	}
	return false
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// synth builds an example value from a schema: its own example if it has one,
// else one built from its properties' examples.
func (s *apiSpec) synth(n node) any {
	n = s.deref(n)
	if ex, ok := n.m()["example"]; ok {
		return ex
	}
	switch s.typ(n) {
	case "object":
		obj := map[string]any{}
		for k, p := range s.props(n) {
			obj[k] = s.synth(p)
		}
		return obj
	case "array":
		return []any{s.synth(node{n.m()["items"], n.file})}
	case "integer":
		return 1
	case "boolean":
		return true
	}
	return "example"
}

// operation returns a path item's operation node.
func (s *apiSpec) operation(file, path, method string) node {
	s.t.Helper()
	op := node{s.load(file), file}.at("paths", path, method)
	if op.m() == nil {
		s.t.Fatalf("%s: no %s %s", file, method, path)
	}
	return op
}

// responseExamples returns every example for one response, synthesising one from the
// schema when the definitions give none.
func (s *apiSpec) responseExamples(op node, status string) (schema node, examples []any) {
	media := op.at("responses", status, "content", "application/json")
	if media.m() == nil {
		s.t.Fatalf("%s: no JSON content for %s", op.file, status)
	}
	schema = node{media.m()["schema"], op.file}
	for _, ex := range media.at("examples").m() {
		examples = append(examples, asMap(ex)["value"])
	}
	if ex, ok := media.m()["example"]; ok {
		examples = append(examples, ex)
	}
	if ex, ok := s.deref(schema).m()["example"]; ok {
		examples = append(examples, ex)
	}
	if len(examples) == 0 {
		examples = append(examples, s.synth(schema))
	}
	return schema, examples
}

// jsonFields maps a struct's JSON names to their Go types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]reflect.Type{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// kindMatches says whether a Go type can carry a JSON schema type.
func kindMatches(schemaType string, gt reflect.Type) bool {
	for gt.Kind() == reflect.Pointer {
		gt = gt.Elem()
	}
	switch schemaType {
	case "string":
		return gt.Kind() == reflect.String
	case "integer":
		switch gt.Kind() {
		case reflect.Int, reflect.Int32, reflect.Int64:
			return true
		}
	case "boolean":
		return gt.Kind() == reflect.Bool
	case "array":
		return gt.Kind() == reflect.Slice
	case "object":
		return gt.Kind() == reflect.Struct || gt.Kind() == reflect.Map
	case "":
		return true // untyped (e.g. allOf without type)
	}
	return false
}

// checkTypeAgainstSchema demands that goType models every property of the schema with
// a compatible type, recursing into nested objects and array items.
func (s *apiSpec) checkTypeAgainstSchema(t *testing.T, where string, sch node, goType reflect.Type) {
	t.Helper()
	for goType.Kind() == reflect.Pointer {
		goType = goType.Elem()
	}
	if goType.Kind() == reflect.Map {
		return // free-form maps (capabilities, params) take any property
	}
	fields := jsonFields(goType)
	for name, p := range s.props(sch) {
		gt, ok := fields[name]
		if !ok {
			if dep, _ := s.deref(p).m()["deprecated"].(bool); dep {
				continue
			}
			t.Errorf("%s: property %q is not modelled by %v", where, name, goType)
			continue
		}
		st := s.typ(p)
		if !kindMatches(st, gt) {
			t.Errorf("%s: property %q is %s in the spec but %v in %v", where, name, st, gt, goType)
			continue
		}
		switch st {
		case "object", "":
			if len(s.props(p)) > 0 {
				s.checkTypeAgainstSchema(t, where+"."+name, p, gt)
			}
		case "array":
			items := node{s.deref(p).m()["items"], s.deref(p).file}
			if s.typ(items) == "object" {
				s.checkTypeAgainstSchema(t, where+"."+name+"[]", items, gt.Elem())
			} else if !kindMatches(s.typ(items), gt.Elem()) {
				t.Errorf("%s: items of %q are %s but %v", where, name, s.typ(items), gt.Elem())
			}
		}
	}
	for _, r := range s.required(sch) {
		if _, ok := fields[r]; !ok {
			t.Errorf("%s: required property %q missing from %v", where, r, goType)
		}
	}
}

// decodeExample decodes an example with encoding/json (type mismatches fail) and
// checks every example key our type models survives a round trip unchanged.
func decodeExample(t *testing.T, where string, example any, into any) {
	t.Helper()
	raw, err := json.Marshal(example)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if err := decodeJSON(raw, into); err != nil {
		t.Errorf("%s: example %s does not decode: %v", where, raw, err)
		return
	}
	if v, ok := into.(validator); ok {
		if err := v.validate(); err != nil {
			t.Errorf("%s: example %s fails validation: %v", where, raw, err)
		}
	}
	back, _ := json.Marshal(into)
	var got, want map[string]any
	json.Unmarshal(back, &got)
	json.Unmarshal(raw, &want)
	fields := jsonFields(reflect.TypeOf(into))
	for k, wv := range want {
		if _, modelled := fields[k]; !modelled {
			continue
		}
		if a, b := mustCanon(wv), mustCanon(got[k]); a != b {
			t.Errorf("%s: field %q decoded as %s, example has %s", where, k, b, a)
		}
	}
}

func mustCanon(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestConformanceEndpointMetadata(t *testing.T) {
	s := openSpec(t)
	cases := []struct {
		file, path, method string
		ep                 Endpoint
	}{
		{"login.yaml", "/login", "get", LoginFlowsEndpoint},
		{"login.yaml", "/login", "post", LoginEndpoint},
		{"refresh.yaml", "/refresh", "post", RefreshEndpoint},
		{"login_token.yaml", "/login/get_token", "post", GetLoginTokenEndpoint},
		{"versions.yaml", "/versions", "get", VersionsEndpoint},
		{"wellknown.yaml", "/matrix/client", "get", WellKnownEndpoint},
		{"whoami.yaml", "/account/whoami", "get", WhoAmIEndpoint},
		{"logout.yaml", "/logout", "post", LogoutEndpoint},
		{"logout.yaml", "/logout/all", "post", LogoutAllEndpoint},
		{"capabilities.yaml", "/capabilities", "get", CapabilitiesEndpoint},
		{"device_management.yaml", "/devices", "get", DevicesEndpoint},
		{"device_management.yaml", "/devices/{deviceId}", "delete", DeleteDeviceEndpoint},
		{"device_management.yaml", "/delete_devices", "post", DeleteDevicesEndpoint},
		{"oauth_server_metadata.yaml", "/auth_metadata", "get", AuthMetadataEndpoint},
	}
	for _, c := range cases {
		doc := node{s.load(c.file), c.file}
		base, _ := doc.at("servers").v.([]any)
		if len(base) == 0 {
			t.Fatalf("%s: no servers", c.file)
		}
		basePath, _ := node{base[0], c.file}.at("variables", "basePath", "default").v.(string)
		if got := basePath + c.path; got != c.ep.Path {
			t.Errorf("%s %s: spec path %s, ours %s", c.method, c.path, got, c.ep.Path)
		}
		if !strings.EqualFold(c.method, c.ep.Method) {
			t.Errorf("%s: method %s, ours %s", c.path, c.method, c.ep.Method)
		}
		op := s.operation(c.file, c.path, c.method)
		needsToken, optional := false, false
		for _, req := range asSlice(op.m()["security"]) {
			if len(asMap(req)) == 0 {
				optional = true
			}
			if _, ok := asMap(req)["accessTokenBearer"]; ok {
				needsToken = true
			}
		}
		if c.ep.Auth != (needsToken && !optional) {
			t.Errorf("%s: Auth=%v, spec security needs token=%v optional=%v", c.ep, c.ep.Auth, needsToken, optional)
		}
		_, has429 := op.at("responses").m()["429"]
		if c.ep.RateLimited != has429 {
			t.Errorf("%s: RateLimited=%v, spec documents 429=%v", c.ep, c.ep.RateLimited, has429)
		}
	}
}

func TestConformanceResponses(t *testing.T) {
	s := openSpec(t)
	type okCase struct {
		file, path, method, status string
		newT                       func() any
	}
	oks := []okCase{
		{"login.yaml", "/login", "get", "200", func() any { return &LoginFlowsResponse{} }},
		{"login.yaml", "/login", "post", "200", func() any { return &LoginResponse{} }},
		{"refresh.yaml", "/refresh", "post", "200", func() any { return &RefreshResponse{} }},
		{"login_token.yaml", "/login/get_token", "post", "200", func() any { return &GetLoginTokenResponse{} }},
		{"versions.yaml", "/versions", "get", "200", func() any { return &VersionsResponse{} }},
		{"whoami.yaml", "/account/whoami", "get", "200", func() any { return &WhoAmIResponse{} }},
		{"capabilities.yaml", "/capabilities", "get", "200", func() any { return &CapabilitiesResponse{} }},
		{"device_management.yaml", "/devices", "get", "200", func() any { return &DevicesResponse{} }},
		{"device_management.yaml", "/devices/{deviceId}", "get", "200", func() any { return &Device{} }},
		{"wellknown.yaml", "/matrix/client", "get", "200", func() any { return &WellKnown{} }},
		{"oauth_server_metadata.yaml", "/auth_metadata", "get", "200", func() any { return &AuthMetadata{} }},
	}
	for _, c := range oks {
		where := fmt.Sprintf("%s %s %s %s", c.file, strings.ToUpper(c.method), c.path, c.status)
		schema, examples := s.responseExamples(s.operation(c.file, c.path, c.method), c.status)
		s.checkTypeAgainstSchema(t, where, schema, reflect.TypeOf(c.newT()))
		for _, ex := range examples {
			decodeExample(t, where, ex, c.newT())
		}
	}

	// Specific meaning the examples carry.
	_, ex := s.responseExamples(s.operation("capabilities.yaml", "/capabilities", "get"), "200")
	var caps CapabilitiesResponse
	decodeExample(t, "capabilities", ex[0], &caps)
	if caps.GetLoginTokenEnabled() || caps.ChangePasswordEnabled() {
		t.Error("capabilities example: m.get_login_token absent must read false, m.change_password is false")
	}
	_, ex = s.responseExamples(s.operation("login.yaml", "/login", "get"), "200")
	var flows LoginFlowsResponse
	decodeExample(t, "login flows", ex[0], &flows)
	if !flows.AdvertisesGetLoginToken() || !flows.Supports(LoginTypePassword) {
		t.Error("login flows example: get_login_token not seen")
	}
	_, ex = s.responseExamples(s.operation("login.yaml", "/login", "post"), "200")
	var lr LoginResponse
	decodeExample(t, "login", ex[0], &lr)
	if lr.WellKnown == nil || lr.WellKnown.IdentityServer == nil || lr.ExpiresInMS == nil || lr.RefreshToken.IsZero() {
		t.Errorf("login example lost fields: %+v", lr)
	}
	if wk, err := ParseWellKnown([]byte(mustCanon(s.synth(refTo("definitions/wellknown/full.yaml"))))); err != nil || wk.IdentityServer == nil {
		t.Errorf("wellknown example through ParseWellKnown: %v", err)
	}
	_, ex = s.responseExamples(s.operation("oauth_server_metadata.yaml", "/auth_metadata", "get"), "200")
	var meta AuthMetadata
	decodeExample(t, "auth_metadata", ex[0], &meta)
	if err := meta.Validate(false); err != nil || !meta.SupportsDeviceGrant() || meta.AccountManagementURI == "" {
		t.Errorf("auth_metadata example: %v %+v", err, meta)
	}
	_, ex = s.responseExamples(s.operation("versions.yaml", "/versions", "get"), "200")
	var v VersionsResponse
	decodeExample(t, "versions", ex[0], &v)
	if !v.AtLeast("v1.1") || !v.Unstable("org.example.my_feature") {
		t.Errorf("versions example: %+v", v)
	}
}

// refTo is a schema node that only refers to a definitions file.
func refTo(file string) node { return node{map[string]any{"$ref": file}, "root.yaml"} }

func TestConformanceErrorResponses(t *testing.T) {
	s := openSpec(t)
	cases := []struct {
		file, path, method, status string
	}{
		{"login.yaml", "/login", "get", "404"},
		{"login.yaml", "/login", "get", "429"},
		{"login.yaml", "/login", "post", "400"},
		{"login.yaml", "/login", "post", "403"},
		{"login.yaml", "/login", "post", "429"},
		{"refresh.yaml", "/refresh", "post", "401"},
		{"refresh.yaml", "/refresh", "post", "429"},
		{"login_token.yaml", "/login/get_token", "post", "400"},
		{"login_token.yaml", "/login/get_token", "post", "401"},
		{"login_token.yaml", "/login/get_token", "post", "429"},
		{"whoami.yaml", "/account/whoami", "get", "401"},
		{"whoami.yaml", "/account/whoami", "get", "403"},
		{"capabilities.yaml", "/capabilities", "get", "429"},
		{"device_management.yaml", "/devices/{deviceId}", "delete", "401"},
		{"device_management.yaml", "/delete_devices", "post", "401"},
		{"oauth_server_metadata.yaml", "/auth_metadata", "get", "404"},
	}
	uiaSeen, softSeen, retrySeen := false, false, false
	for _, c := range cases {
		where := fmt.Sprintf("%s %s %s %s", c.file, strings.ToUpper(c.method), c.path, c.status)
		schema, examples := s.responseExamples(s.operation(c.file, c.path, c.method), c.status)
		for _, ex := range examples {
			raw, _ := json.Marshal(ex)
			status := 0
			fmt.Sscan(c.status, &status)
			err := ParseError(status, http.Header{}, raw, where, time.Now())
			var exm map[string]any
			json.Unmarshal(raw, &exm)
			if _, isUIA := exm["flows"]; isUIA {
				ch, ok := AsUIA(err)
				if !ok {
					t.Errorf("%s: UIA example not parsed as a challenge: %v", where, err)
					continue
				}
				uiaSeen = true
				decodeExample(t, where, ex, &UIAChallenge{})
				s.checkTypeAgainstSchema(t, where, schema, reflect.TypeOf(UIAChallenge{}))
				if ch.Session != exm["session"] || len(ch.Flows) != len(asSlice(exm["flows"])) || IsUnknownToken(err) {
					t.Errorf("%s: challenge %+v from %s", where, ch, raw)
				}
				continue
			}
			var e *Error
			if !asErrorTo(err, &e) {
				t.Errorf("%s: %T", where, err)
				continue
			}
			if code, _ := exm["errcode"].(string); e.ErrCode != code || e.Status != status {
				t.Errorf("%s: errcode %q status %d from %s", where, e.ErrCode, e.Status, raw)
			}
			if msg, _ := exm["error"].(string); e.Message != Sanitize(msg) {
				t.Errorf("%s: message %q from %s", where, e.Message, raw)
			}
			if sl, _ := exm["soft_logout"].(bool); sl != e.SoftLogout {
				t.Errorf("%s: soft_logout lost", where)
			}
			softSeen = softSeen || e.SoftLogout
			if ms, ok := exm["retry_after_ms"].(float64); ok {
				retrySeen = true
				if e.RetryAfter != time.Duration(ms)*time.Millisecond {
					t.Errorf("%s: retry_after_ms %v read as %v", where, ms, e.RetryAfter)
				}
			}
			if status == 429 && !IsLimitExceeded(err) {
				t.Errorf("%s: 429 not rate limited", where)
			}
		}
	}
	if !uiaSeen || !softSeen || !retrySeen {
		t.Errorf("coverage of the definitions: uia=%v soft_logout=%v retry_after_ms=%v", uiaSeen, softSeen, retrySeen)
	}
}

func asErrorTo(err error, e **Error) bool {
	got, ok := asError(err)
	*e = got
	return ok
}

// TestConformanceRequestBodies sends our real requests to a recording server and
// checks each body against its request schema: required fields present, types right,
// and no field the schema does not know (unless it allows extra ones).
func TestConformanceRequestBodies(t *testing.T) {
	s := openSpec(t)
	w := newWire(t)
	for _, p := range []string{"/_matrix/client/v3/login", "/_matrix/client/v3/refresh", "/_matrix/client/v1/login/get_token", "/_matrix/client/v3/delete_devices"} {
		w.reply("POST", p, 500, `{}`)
	}
	w.reply("DELETE", "/_matrix/client/v3/devices/D1", 500, `{}`)
	c := w.client(t, WithTimeout(5*time.Second))
	ctx := testCtx(t)
	auth := PasswordAuth("sess", "@me:hs", "pw")
	withDevice := PasswordLogin("@me:hs", "pw")
	withDevice.DeviceID, withDevice.InitialDeviceDisplayName = "DEV", "laptop"

	type sent struct {
		file, path, method string
		do                 func()
	}
	sends := []sent{
		{"login.yaml", "/login", "post", func() { c.Login(ctx, PasswordLogin("@me:hs", "pw")) }},
		{"login.yaml", "/login", "post", func() { c.Login(ctx, withDevice) }},
		{"login.yaml", "/login", "post", func() { c.Login(ctx, TokenLogin("tok")) }},
		{"refresh.yaml", "/refresh", "post", func() { c.Refresh(ctx, "rt") }},
		{"login_token.yaml", "/login/get_token", "post", func() { c.GetLoginToken(ctx, "at", "", GetLoginTokenRequest{}) }},
		{"login_token.yaml", "/login/get_token", "post", func() { c.GetLoginToken(ctx, "at", "", GetLoginTokenRequest{Auth: auth}) }},
		{"login_token.yaml", "/login/get_token", "post", func() { c.GetLoginToken(ctx, "at", "", GetLoginTokenRequest{Auth: SessionAuth("sess")}) }},
		{"device_management.yaml", "/devices/{deviceId}", "delete", func() { c.DeleteDevice(ctx, "at", "D1", nil) }},
		{"device_management.yaml", "/devices/{deviceId}", "delete", func() { c.DeleteDevice(ctx, "at", "D1", auth) }},
		{"device_management.yaml", "/delete_devices", "post", func() { c.DeleteDevices(ctx, "at", nil, nil) }},
		{"device_management.yaml", "/delete_devices", "post", func() { c.DeleteDevices(ctx, "at", []string{"A"}, auth) }},
	}
	for i, snd := range sends {
		before := len(w.requests())
		snd.do()
		rs := w.requests()
		if len(rs) != before+1 {
			t.Fatalf("send %d made %d requests", i, len(rs)-before)
		}
		body := rs[len(rs)-1].bodyMap(t)
		op := s.operation(snd.file, snd.path, snd.method)
		rb := op.at("requestBody")
		if req, _ := rb.m()["required"].(bool); req && len(rs[len(rs)-1].Body) == 0 {
			t.Errorf("send %d: required body missing", i)
		}
		schema := rb.at("content", "application/json", "schema")
		s.checkValue(t, fmt.Sprintf("send %d %s %s", i, strings.ToUpper(snd.method), snd.path), schema, body)
	}

	// The spec's own request examples must decode into our request types.
	lex := s.operation("login.yaml", "/login", "post").at("requestBody", "content", "application/json", "schema", "example").v
	var lr LoginRequest
	decodeExample(t, "login request example", lex, &lr)
	if lr.Identifier == nil || lr.Identifier.User != "cheeky_monkey" || lr.Password.Reveal() != "ilovebananas" {
		t.Errorf("login request example: %+v", lr)
	}
	rex := s.operation("refresh.yaml", "/refresh", "post").at("requestBody", "content", "application/json", "schema", "example").v
	var rr RefreshRequest
	decodeExample(t, "refresh request example", rex, &rr)
	if rr.RefreshToken.Reveal() != "some_token" {
		t.Error("refresh request example")
	}
	s.checkTypeAgainstSchema(t, "auth_data", refTo("definitions/auth_data.yaml"), reflect.TypeOf(AuthData{}))
	s.checkTypeAgainstSchema(t, "user_identifier", refTo("definitions/user_identifier.yaml"), reflect.TypeOf(UserIdentifier{}))
}

// checkValue validates a decoded JSON value against a schema.
func (s *apiSpec) checkValue(t *testing.T, where string, sch node, v any) {
	t.Helper()
	st := s.typ(sch)
	ok := true
	switch st {
	case "object":
		_, ok = v.(map[string]any)
	case "string":
		_, ok = v.(string)
	case "boolean":
		_, ok = v.(bool)
	case "integer":
		f, isNum := v.(float64)
		ok = isNum && f == float64(int64(f))
	case "array":
		_, ok = v.([]any)
	}
	if !ok {
		t.Errorf("%s: %s is %T, spec says %s", where, mustCanon(v), v, st)
		return
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		if arr, isArr := v.([]any); isArr {
			items := node{s.deref(sch).m()["items"], s.deref(sch).file}
			for i, e := range arr {
				s.checkValue(t, fmt.Sprintf("%s[%d]", where, i), items, e)
			}
		}
		return
	}
	props := s.props(sch)
	for _, r := range s.required(sch) {
		if _, present := obj[r]; !present {
			t.Errorf("%s: required field %q missing from %s", where, r, mustCanon(obj))
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, known := props[k]
		if !known {
			if !s.allowsExtra(sch) {
				t.Errorf("%s: field %q is not in the schema", where, k)
			}
			continue
		}
		s.checkValue(t, where+"."+k, p, obj[k])
	}
}

func TestConformanceSpecIsReadable(t *testing.T) {
	s := openSpec(t)
	entries, err := os.ReadDir(specRoot)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			doc := s.load(e.Name())
			if asMap(doc)["paths"] == nil {
				t.Errorf("%s has no paths", e.Name())
			}
			n++
		}
	}
	if n < 9 {
		t.Fatalf("only %d OpenAPI files", n)
	}
}
