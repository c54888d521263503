package dendritetest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// startOrSkip starts Dendrite, skipping when the toolchain cannot build it unless the
// environment requires a real homeserver.
func startOrSkip(t *testing.T, opt Options) *Server {
	t.Helper()
	if why := SkipReason(); why != "" {
		t.Skip(why)
	}
	s, err := Start(opt)
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("real homeserver required: %v", err)
		}
		t.Skipf("Dendrite unavailable (%v); set %s=1 to require it", firstLine(err), EnvRequire)
	}
	t.Cleanup(s.Stop)
	return s
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func TestStartRegisterLogin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real homeserver")
	}
	s := startOrSkip(t, Options{})
	dir, took, _ := Build()
	t.Logf("Dendrite %s %s from %s (build took %s; 0 when cached)", Module, Version, dir, took.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uid, err := s.Register(ctx, "carol", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if uid != "@carol:"+s.ServerName {
		t.Fatalf("user ID %q", uid)
	}
	body := `{"type":"m.login.password","identifier":{"type":"m.id.user","user":"` + uid + `"},"password":"correct horse"}`
	resp, err := http.Post(s.URL+"/_matrix/client/v3/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 || out["user_id"] != uid {
		t.Fatalf("login: %d %v", resp.StatusCode, out["errcode"])
	}
}

// BenchmarkStart measures a start with cached binaries: keys, config, and the
// wait until /versions answers. The stop is not timed.
func BenchmarkStart(b *testing.B) {
	if _, _, err := Build(); err != nil {
		b.Skipf("Dendrite unavailable: %s", firstLine(err))
	}
	for b.Loop() {
		s, err := Start(Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Stop()
		b.StartTimer()
	}
}

// copyModule copies the nested module's go.mod and go.sum into a fresh directory.
func copyModule(t *testing.T) string {
	t.Helper()
	src, err := moduleDir()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	for _, name := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// TestCacheKeyFollowsModule: the cache key changes with any byte of go.mod or go.sum, so an
// edited pin never reuses the binaries built for the old one.
func TestCacheKeyFollowsModule(t *testing.T) {
	dir := copyModule(t)
	key, err := cacheKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := cacheKey(dir); again != key {
		t.Fatalf("the same files give keys %s and %s", key, again)
	}
	real, _ := moduleDir()
	if k, _ := cacheKey(real); k != key {
		t.Fatalf("a copy of the module gives key %s, the module %s", key, k)
	}
	appendTo(t, filepath.Join(dir, "go.sum"), "example.com/x v1.0.0 h1:AAAA=\n")
	sumKey, err := cacheKey(dir)
	if err != nil || sumKey == key {
		t.Fatalf("go.sum changed, key %s (was %s), %v", sumKey, key, err)
	}
	appendTo(t, filepath.Join(dir, "go.mod"), "\nreplace example.com/x => example.com/y v1.0.0\n")
	modKey, err := cacheKey(dir)
	if err != nil || modKey == sumKey || modKey == key {
		t.Fatalf("go.mod changed, key %s (was %s), %v", modKey, sumKey, err)
	}
	if buildDir("/c", key) == buildDir("/c", modKey) {
		t.Fatal("two keys share a build directory")
	}
}

// TestCacheKeyChecksPin: a go.mod that requires another Dendrite than Module at Version (the
// AGPL fork, or another release) is refused rather than built under this package's name.
func TestCacheKeyChecksPin(t *testing.T) {
	dir := copyModule(t)
	mod := filepath.Join(dir, "go.mod")
	b, _ := os.ReadFile(mod)
	if !requires(b, Module, Version) {
		t.Fatalf("the nested go.mod does not require %s %s:\n%s", Module, Version, b)
	}
	if strings.Contains(string(b), "element-hq/dendrite") {
		t.Fatal("the nested go.mod names element-hq/dendrite (AGPL)")
	}
	for _, other := range []string{
		strings.Replace(string(b), Module+" "+Version, "github.com/element-hq/dendrite v0.15.2", 1),
		strings.Replace(string(b), Module+" "+Version, Module+" v0.13.7", 1),
	} {
		if err := os.WriteFile(mod, []byte(other), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := cacheKey(dir); err == nil || !strings.Contains(err.Error(), "does not require "+Module+" "+Version) {
			t.Errorf("go.mod pinning something else: want a refusal, got %v", err)
		}
	}
}

// TestStaleBuildNotCurrent: only a directory whose stamp holds this key and that has every
// binary counts as built; an older layout, a build for another key, or an interrupted one
// does not.
func TestStaleBuildNotCurrent(t *testing.T) {
	base := t.TempDir()
	key, err := cacheKey(copyModule(t))
	if err != nil {
		t.Fatal(err)
	}
	fill := func(dir, stamp string, bins []string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range bins {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if stamp != "" {
			if err := os.WriteFile(filepath.Join(dir, stampName), []byte(stamp+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The layout before cache keys: binaries named only by version.
	fill(filepath.Join(base, "dendrite-"+Version), "", binaries)
	dir := buildDir(base, key)
	if current(dir, key) {
		t.Fatal("an empty cache counts as built")
	}
	fill(dir, "", binaries) // interrupted: no stamp
	if current(dir, key) {
		t.Fatal("a build without its stamp counts as current")
	}
	fill(dir, "0123456789abcdef", binaries) // stamped for other module files
	if current(dir, key) {
		t.Fatal("a build stamped for another key counts as current")
	}
	os.Remove(filepath.Join(dir, "generate-keys"))
	fill(dir, key, nil)
	if current(dir, key) {
		t.Fatal("a build missing a binary counts as current")
	}
	fill(dir, key, binaries)
	if !current(dir, key) {
		t.Fatal("a complete build stamped with its key does not count as current")
	}
}

// TestProductDoesNotLinkDendrite: no package of the mxauth module, tests included, depends on
// Dendrite; only the nested module does, and it is built as separate programs.
func TestProductDoesNotLinkDendrite(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	src, err := moduleDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "-test", "./...")
	cmd.Dir = filepath.Join(src, "..", "..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 20 || !slices.Contains(pkgs, "mxauth") {
		t.Fatalf("go list found only %d packages (no mxauth): run from the wrong directory?", len(pkgs))
	}
	for _, p := range pkgs {
		if strings.Contains(p, "/dendrite/") || strings.HasSuffix(p, "/dendrite") {
			t.Errorf("mxauth depends on %s", p)
		}
	}
}

// TestConfigureNamesMissingKey: a generated config without a setting the harness changes (a
// Dendrite whose config reads differently) is an error naming it, not a server on defaults.
func TestConfigureNamesMissingKey(t *testing.T) {
	gen := "global:\n  private_key: matrix_key.pem\n  well_known_client_name: \"\"\n  disable_federation: false\n" +
		"client_api:\n  registration_disabled: false\n  registration_shared_secret: complement\n" +
		"  rate_limiting:\n    enabled: false\n    threshold: 5\n    cooloff_ms: 500\n"
	conf, err := configure(gen, "/k.pem", "http://127.0.0.1:1", Options{RateLimitThreshold: 7, RateLimitCooloff: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"private_key: /k.pem", `well_known_client_name: "http://127.0.0.1:1"`, "disable_federation: true",
		"registration_disabled: true", "registration_shared_secret: " + sharedToken, "enabled: true\n    threshold: 7\n    cooloff_ms: 2000"} {
		if !strings.Contains(conf, want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	old := strings.Replace(gen, "  rate_limiting:\n    enabled: false", "  ratelimit:\n    enabled: false", 1)
	if _, err := configure(old, "/k.pem", "http://127.0.0.1:1", Options{RateLimitThreshold: 7}); err == nil || !strings.Contains(err.Error(), "rate_limiting") {
		t.Errorf("a config without rate_limiting: want an error naming it, got %v", err)
	}
}
