package keystore

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mxauth/keystore/keyringtest"
)

// childEnv selects what a re-executed test binary does (see TestChildProcess).
const childEnv = "MXAUTH_KEYSTORE_CHILD"

var (
	// realKeyring is the private Secret Service shared by the real-keyring tests;
	// nil when it could not start (realSkip says why).
	realKeyring *keyringtest.Keyring
	realSkip    string
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// A child process: its parent chose the environment.
		os.Exit(m.Run())
	}
	k, err := keyringtest.Launch(keyringtest.Options{})
	restore := func() {}
	if err != nil {
		if keyringtest.Required() {
			fmt.Fprintf(os.Stderr, "%s=1 but the real keyring cannot start: %v\n", keyringtest.RequiredEnv, err)
			os.Exit(1)
		}
		realSkip = err.Error()
	} else {
		realKeyring = k
		// go-keyring and godbus read DBUS_SESSION_BUS_ADDRESS from the process
		// environment; HOME and XDG_* keep every test away from real files.
		restore = keyringtest.Setenv(k.Env)
	}
	code := m.Run()
	restore()
	if k != nil {
		k.Stop()
	}
	os.Exit(code)
}

// needReal skips (or, when required, fails) a test needing the shared keyring.
func needReal(t *testing.T) *keyringtest.Keyring {
	t.Helper()
	if realKeyring == nil {
		if keyringtest.Required() {
			t.Fatalf("real keyring required but not running: %s", realSkip)
		}
		t.Skipf("no real keyring: %s", realSkip)
	}
	return realKeyring
}

// childResult is what a child process reports on a "RESULT " line.
type childResult struct {
	Kind             string `json:"kind"`
	Message          string `json:"message"`
	StoreUnavailable bool   `json:"store_unavailable"`
	NoStoredTokens   bool   `json:"no_stored_tokens"`
	ElapsedMS        int64  `json:"elapsed_ms"`
	Value            string `json:"value,omitempty"`
}

// runChild re-executes the test binary in mode with env added, and returns the
// RESULT lines it printed.
func runChild(t *testing.T, mode string, env []string) []childResult {
	t.Helper()
	cmd := startChild(t, mode, env)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", mode, err, out)
	}
	return parseResults(t, string(out))
}

func startChild(t *testing.T, mode string, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = keyringtest.Merge(os.Environ(), append([]string{childEnv + "=" + mode}, env...))
	cmd.Stderr = os.Stderr
	return cmd
}

func parseResults(t *testing.T, out string) []childResult {
	t.Helper()
	var rs []childResult
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			var r childResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("bad child line %q: %v", line, err)
			}
			rs = append(rs, r)
		}
	}
	return rs
}

func report(r childResult) {
	b, _ := json.Marshal(r)
	fmt.Printf("RESULT %s\n", b)
}

func envDuration(key string, def time.Duration) time.Duration {
	if ms := os.Getenv(key); ms != "" {
		var n int64
		fmt.Sscan(ms, &n)
		return time.Duration(n) * time.Millisecond
	}
	return def
}
