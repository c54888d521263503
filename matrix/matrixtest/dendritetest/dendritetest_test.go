package dendritetest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
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
