package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ss "github.com/zalando/go-keyring/secret_service"

	"mxauth/keystore"
	"mxauth/keystore/keyringtest"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// The end-to-end tests run the real binary against a private, real Secret
// Service and an in-process homeserver on loopback.
var (
	binPath    string   // the mxauth binary built once for all tests
	keyringEnv []string // private bus + HOME/XDG dirs; nil when no keyring
	keyringErr error    // why there is no keyring
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if !flagGiven("test.parallel") {
		// The tests mostly wait for the binary, the keyring and the servers,
		// so more of them than cores can run at once.
		_ = flag.Set("test.parallel", "4")
	}
	dir, err := os.MkdirTemp("", "mxauth-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "mxauth")
	// The binary is the module's root package, built as users build it.
	build := exec.Command("go", "build", "-o", binPath, "mxauth")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building mxauth:", err)
		return 1
	}

	env, stop, died, err := keyringtest.StartForMain()
	defer stop()
	if err != nil {
		if !errors.Is(err, keyringtest.ErrNotInstalled) || keyringtest.Required() {
			fmt.Fprintln(os.Stderr, "starting the private keyring:", err)
			return 1
		}
		keyringErr = err
	} else {
		keyringEnv = env
		// The test process talks to the same keyring to look for leftovers.
		defer keyringtest.Setenv(env)()
	}
	code := m.Run()
	defer reportSkipped()
	if d := died(); d != "" {
		// Every test that used the keyring after this failed for it.
		fmt.Fprintln(os.Stderr, "the shared private keyring's Secret Service ended during the run:", d)
	}
	if left := leftoverKeyringItems(); code == 0 && len(left) > 0 {
		fmt.Fprintf(os.Stderr, "the tests left %d item(s) in the shared keyring (a test whose server gets the same port would count them): %v\n", len(left), left)
		return 1
	}
	return code
}

// leftoverKeyringItems lists the mxauth items still in the shared keyring.
func leftoverKeyringItems() []string {
	if keyringEnv == nil {
		return nil
	}
	svc, err := ss.NewSecretService()
	if err != nil {
		return []string{err.Error()}
	}
	paths, err := svc.SearchItems(svc.GetLoginCollection(), map[string]string{"service": keystore.Service})
	if err != nil {
		return []string{err.Error()}
	}
	var names []string
	for _, p := range paths {
		if v, err := svc.Object("org.freedesktop.secrets", p).GetProperty("org.freedesktop.Secret.Item.Attributes"); err == nil {
			attrs, _ := v.Value().(map[string]string)
			names = append(names, attrs["username"])
		}
	}
	return names
}

// flagGiven says whether a flag was set on the command line.
func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// needKeyring skips (or, with MXAUTH_REAL_KEYRING=1, fails) without a keyring.
func needKeyring(t *testing.T) {
	t.Helper()
	if keyringEnv == nil {
		if keyringtest.Required() {
			t.Fatalf("real keyring required but unavailable: %v", keyringErr)
		}
		t.Skipf("no real keyring here: %v", keyringErr)
	}
}

// cli runs the binary with one config dir and the private keyring.
type cli struct {
	t     *testing.T
	dir   string   // MXAUTH_CONFIG_DIR
	extra []string // more environment, e.g. a bogus bus address
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	needKeyring(t)
	return &cli{t: t, dir: t.TempDir()}
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// run runs mxauth with stdin (nil: closed/empty) and returns its outputs.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	r, err := c.tryRun(stdin, args...)
	if err != nil {
		c.t.Fatalf("running mxauth %v: %v", args, err)
	}
	return r
}

// tryRun is run for goroutines other than the test's: an mxauth that could
// not be started is an error, not a Fatal. One killed after a minute exits -1.
func (c *cli) tryRun(stdin string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.command(ctx, stdin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return result{out.String(), errb.String(), ee.ExitCode()}, nil
	case err != nil:
		return result{out.String(), errb.String(), -1}, err
	}
	return result{out.String(), errb.String(), 0}, nil
}

// command is mxauth with this config dir, the private keyring and stdin.
func (c *cli) command(ctx context.Context, stdin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binPath, args...)
	env := keyringtest.Merge(os.Environ(), keyringEnv)
	env = append(env, "MXAUTH_CONFIG_DIR="+c.dir, "NO_COLOR=1", keyringWait)
	cmd.Env = keyringtest.Merge(env, c.extra)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd
}

// ok runs mxauth and fails the test unless it exits 0.
func (c *cli) ok(stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != 0 {
		c.t.Fatalf("mxauth %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// expect runs mxauth and checks its exit code.
func (c *cli) expect(code int, stdin string, args ...string) result {
	c.t.Helper()
	r := c.run(stdin, args...)
	if r.code != code {
		c.t.Fatalf("mxauth %s: want exit %d, got %s", strings.Join(args, " "), code, r)
	}
	return r
}

// startHomeserver starts a test homeserver with alice (and her password).
func startHomeserver(t *testing.T, opt homeserver.Options) (srv *homeserver.Server, alice, password string) {
	t.Helper()
	srv = homeserver.New(opt)
	t.Cleanup(srv.Close)
	forgetKeyringItems(t, srv.ServerName())
	password = "correct horse " + t.Name()
	alice = srv.AddUser("alice", password)
	return srv, alice, password
}

// login signs alice in through the CLI.
func (c *cli) login(srv *homeserver.Server, user, password string) {
	c.t.Helper()
	c.ok(password+"\n", "login", "--user", user, "--password-stdin")
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

// whoami asks the server who a token belongs to.
func whoami(t *testing.T, baseURL, token string) *matrix.WhoAmIResponse {
	t.Helper()
	c, err := matrix.NewClient(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	who, err := c.WhoAmI(ctx, matrix.Secret(token))
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	return who
}

// oneLineStderr checks that a failure said one human line.
func oneLineStderr(t *testing.T, r result) {
	t.Helper()
	msg := strings.TrimRight(r.stderr, "\n")
	if msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("want one line on stderr, got %q", r.stderr)
	}
}

// forgetKeyringItems deletes, when the test ends, the shared keyring's mxauth
// items of every user on server (host:port). Ports come round again within a
// run: a later test whose server gets the same port would otherwise find this
// test's items under its own user IDs and miscount. Call it after the server's
// own cleanup is registered, so it runs while the port is still taken.
func forgetKeyringItems(t *testing.T, server string) {
	t.Helper()
	if keyringEnv == nil {
		return
	}
	t.Cleanup(func() {
		svc, err := ss.NewSecretService()
		if err != nil {
			t.Errorf("cleaning the keyring: %v", err)
			return
		}
		paths, err := svc.SearchItems(svc.GetLoginCollection(), map[string]string{"service": keystore.Service})
		if err != nil {
			t.Errorf("cleaning the keyring: %v", err)
			return
		}
		for _, p := range paths {
			v, err := svc.Object("org.freedesktop.secrets", p).GetProperty("org.freedesktop.Secret.Item.Attributes")
			if err != nil {
				continue // deleted meanwhile
			}
			attrs, _ := v.Value().(map[string]string)
			user, _, _ := strings.Cut(attrs["username"], "|")
			if strings.HasSuffix(user, ":"+server) {
				if err := svc.Delete(p); err != nil {
					t.Errorf("deleting keyring item %s: %v", attrs["username"], err)
				}
			}
		}
	})
}

// faultFullEnv, set to 1 (as .ci/run does for its own run of the fault
// suite), makes the fault tests measure at full length: the default keyring
// deadline and a 15 s race. Plain `go test` takes shorter measurements of
// the same behaviour.
const faultFullEnv = "MXAUTH_FAULT_FULL"

// faultLength is full when the fault suite runs at full length, else short.
func faultLength[T any](full, short T) T {
	if os.Getenv(faultFullEnv) == "1" {
		return full
	}
	return short
}

// keyringWait is the keyring deadline the end-to-end tests give the binary
// unless a test sets its own: the default 5 s is meant for a hung keyring,
// and a busy machine can make the shared test keyring that slow.
const keyringWait = "MXAUTH_KEYRING_TIMEOUT=60s"
