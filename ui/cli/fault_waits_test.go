//go:build unix

package cli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mxauth/keystore"
	"mxauth/keystore/keyringtest"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

// holdLockEnv makes the test binary a lock holder: it takes an exclusive flock
// on the named file, says "held" and waits to be killed.
const holdLockEnv = "MXAUTH_TEST_HOLD_LOCK"

func init() {
	if path := os.Getenv(holdLockEnv); path != "" {
		holdLockForever(path)
	}
}

func holdLockForever(path string) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("held")
	select {}
}

// stoppedLockHolder starts a process that holds the lock file at path and
// stops it with SIGSTOP, like an mxauth process suspended mid-refresh. kill
// ends it (the kernel then drops the lock); cleanup does so too.
func stoppedLockHolder(t *testing.T, path string) (kill func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var once bool
	kill = func() {
		if once {
			return
		}
		once = true
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		close(done)
	}
	t.Cleanup(kill)
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "held" {
		t.Fatalf("the lock holder did not take %s: %q", path, line)
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	return kill
}

// pauseKeyring stops the private keyring's daemon until resume (or cleanup).
func pauseKeyring(t *testing.T, k *keyringtest.Keyring) (resume func()) {
	t.Helper()
	resume, err := k.Pause()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(resume)
	return resume
}

// loginUsers adds n users to srv and signs each in through the CLI.
func loginUsers(t *testing.T, c *cli, srv *homeserver.Server, n int) []string {
	t.Helper()
	var users []string
	for i := range n {
		pw := fmt.Sprintf("password %d of %s", i, t.Name())
		u := srv.AddUser(fmt.Sprintf("user%02d", i), pw)
		c.login(srv, u, pw)
		users = append(users, u)
	}
	return users
}

// TestFaultHungKeyringList: with the keyring daemon stopped, list waits one
// keyring deadline in all, not one per account, and lists every account as a
// keyring problem with exit code 3.
func TestFaultHungKeyringList(t *testing.T) {
	t.Parallel()
	needKeyring(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{})
	srv := homeserver.New(homeserver.Options{AccessTokenLifetime: time.Hour})
	t.Cleanup(srv.Close)
	c := &cli{t: t, dir: t.TempDir(), extra: k.Env}
	users := loginUsers(t, c, srv, 12)

	// At full length with the default deadline, else with a shorter one.
	deadline := faultLength(keystore.DefaultDeadline, time.Second)
	c.extra = keyringtest.Merge(k.Env, []string{"MXAUTH_KEYRING_TIMEOUT=" + deadline.String()})
	resume := pauseKeyring(t, k)
	start := time.Now()
	r := c.run("", "list", "--json")
	took := time.Since(start)
	t.Logf("figure: list with %d accounts and a hung keyring took %.1f s (keyring deadline %s)", len(users), took.Seconds(), deadline)
	if r.code != exitKeyring {
		t.Fatalf("list with a hung keyring: want exit %d: %s", exitKeyring, r)
	}
	got := decodeJSON[[]accountJSON](t, r.stdout)
	if len(got) != len(users) {
		t.Fatalf("listed %d accounts, want %d: %s", len(got), len(users), r)
	}
	for _, a := range got {
		if a.State != stateName(session.Status{State: session.StateStoreProblem}) {
			t.Errorf("%s: state %q, want a keyring problem", a.UserID, a.State)
		}
	}
	if took > 2*deadline+5*time.Second {
		t.Fatalf("list waited %s for a hung keyring; the promise is one deadline (%s) per command", took, deadline)
	}

	// The same bound, shortened, holds for doctor's keyring check.
	c.extra = keyringtest.Merge(k.Env, []string{"MXAUTH_KEYRING_TIMEOUT=1s"})
	start = time.Now()
	r = c.expect(exitKeyring, "", "doctor")
	t.Logf("figure: doctor with a hung keyring and MXAUTH_KEYRING_TIMEOUT=1s took %.1f s", time.Since(start).Seconds())
	if !strings.Contains(r.stdout+r.stderr, "no answer within 1s") {
		t.Fatalf("doctor should say the keyring did not answer within 1s: %s", r)
	}
	c.extra = k.Env
	resume()
	c.ok("", "list")
}

// TestFaultHungKeyringTUIFirstFrame: with the keyring daemon stopped, the
// full-screen app shows its accounts at once, as loading, and fills in their
// sessions once the keyring answers again.
func TestFaultHungKeyringTUIFirstFrame(t *testing.T) {
	t.Parallel()
	needTmux(t)
	needKeyring(t)
	k := keyringtest.StartKeyring(t, keyringtest.Options{})
	srv := homeserver.New(homeserver.Options{AccessTokenLifetime: time.Hour})
	t.Cleanup(srv.Close)
	c := &cli{t: t, dir: t.TempDir(), extra: k.Env}
	users := loginUsers(t, c, srv, 3)

	resume := pauseKeyring(t, k)
	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-hung-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	// A long keyring deadline keeps the loads waiting until the daemon resumes.
	start := time.Now()
	m.must("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "30", tuiLaunch(c, "MXAUTH_KEYRING_TIMEOUT=120s"))
	m.wait("the first frame", regexp.MustCompile(`mxauth · Accounts`))
	first := time.Since(start)
	loading := regexp.MustCompile(`(?s)` + strings.Join(quoteAll(users), `.*loading.*`) + `.*loading`)
	screen, _ := m.wait("every account shown as loading", loading)
	t.Logf("figure: first frame of the full-screen app with a hung keyring after %.2f s (%d accounts listed as loading after %.2f s)",
		first.Seconds(), len(users), time.Since(start).Seconds())
	// The loads wait up to 120 s here: a first frame that waited for them
	// would come far later than this generous bound.
	if first > 20*time.Second {
		t.Fatalf("the first frame took %s with a hung keyring:\n%s", first, screen)
	}

	resume()
	m.wait("the sessions loaded", regexp.MustCompile(`(?s)`+strings.Join(quoteAll(users), `.*expires in.*`)+`.*expires in`))
	m.keys("q")
}

// TestFaultLockHeldByStoppedProcess: a stopped process holding an account's
// lock costs token and exec little while the stored access token is still
// valid, and otherwise ends in exit code 7 with its own message.
func TestFaultLockHeldByStoppedProcess(t *testing.T) {
	t.Parallel()
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	c.login(srv, alice, pw)
	st, err := keystore.Open(keystore.Options{Dir: c.dir})
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := st.Account(alice)
	ctx := context.Background()
	setDeadlines := func(issued, expires time.Time) matrix.TokenSet {
		t.Helper()
		ts, err := st.LoadTokens(ctx, acct.Key())
		if err != nil {
			t.Fatal(err)
		}
		ts.IssuedAt, ts.ExpiresAt = issued, expires
		if err := st.SaveTokens(ctx, acct.Key(), ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	kill := stoppedLockHolder(t, st.LockPath(acct.Key()))

	// Due for a refresh, but valid for ten more minutes.
	now := time.Now()
	stored := setDeadlines(now.Add(-50*time.Minute), now.Add(10*time.Minute))
	start := time.Now()
	r := c.ok("", "token")
	took := time.Since(start)
	t.Logf("figure: token with a valid stored token and the account lock held by a stopped process took %.1f s", took.Seconds())
	if strings.TrimSpace(r.stdout) != stored.AccessToken.Reveal() {
		t.Fatalf("token should print the stored, still valid token: %s", r)
	}
	if took > 10*time.Second {
		t.Fatalf("token waited %s on the lock although its stored token was valid", took)
	}
	start = time.Now()
	c.ok("", "exec", "--", "sh", "-c", `test "$MATRIX_ACCESS_TOKEN" = "`+stored.AccessToken.Reveal()+`"`)
	t.Logf("figure: exec in the same state took %.1f s", time.Since(start).Seconds())

	// Expired: only a refresh helps, and the lock holder never lets go.
	setDeadlines(now.Add(-2*time.Hour), now.Add(-time.Hour))
	c.extra = []string{"MXAUTH_LOCK_TIMEOUT=2s"}
	start = time.Now()
	r = c.expect(exitLockBusy, "", "token")
	t.Logf("figure: token with an expired token and the lock held by a stopped process gave up after %.1f s (MXAUTH_LOCK_TIMEOUT=2s)", time.Since(start).Seconds())
	oneLineStderr(t, r)
	if !strings.Contains(r.stderr, "another mxauth process holds") || !strings.Contains(r.stderr, "waited 2s") || strings.Contains(r.stderr, "keyring error") {
		t.Fatalf("the message should say another process holds the lock and how long it waited: %s", r)
	}
	if r.stdout != "" {
		t.Fatalf("nothing may be printed on stdout: %s", r)
	}

	// Once the holder is gone, the same command refreshes.
	kill()
	c.extra = nil
	if tok := strings.TrimSpace(c.ok("", "token").stdout); tok == "" || tok == stored.AccessToken.Reveal() {
		t.Fatalf("token after the holder ended should be a fresh one, got %q", tok)
	}
}

// TestFaultIndexLockKeepsTUIResponsive: while a sign-out waits for the account
// index, locked by a stopped process, the full-screen app keeps drawing (its
// spinner turns); the sign-out finishes once the lock is free.
//
// Not parallel: it fails when the screen stands still for 2 s, which other
// tests' load must not cause.
func TestFaultIndexLockKeepsTUIResponsive(t *testing.T) {
	needTmux(t)
	srv, alice, pw := startHomeserver(t, homeserver.Options{AccessTokenLifetime: time.Hour})
	c := newCLI(t)
	c.login(srv, alice, pw)

	m := &tmuxTerm{t: t, socket: fmt.Sprintf("mxauth-indexlock-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = m.cmd("kill-server") })
	m.must("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "30", tuiLaunch(c, "MXAUTH_LOCK_TIMEOUT=120s"))
	m.wait("alice with a countdown", regexp.MustCompile(`expires in \d+m`))

	kill := stoppedLockHolder(t, filepath.Join(c.dir, "index.lock"))
	m.keys("x")
	m.wait("the sign-out question", regexp.MustCompile(`Sign out`))
	m.keys("y")
	spinner := regexp.MustCompile(`(\S) working…`)
	_, sub := m.wait("the sign-out under way", spinner)
	// The spinner must keep turning while the sign-out waits for the lock, over
	// several of the app's 1 s ticks: a blocked Update would freeze the screen
	// (2.5 s is enough to see a 2 s freeze; 4 s at full length).
	seen, lastChange := sub[1], time.Now()
	for end := time.Now().Add(faultLength(4*time.Second, 2500*time.Millisecond)); time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
		screen := m.capture()
		s := spinner.FindStringSubmatch(screen)
		if s == nil {
			t.Fatalf("the sign-out ended while the index was locked:\n%s", screen)
		}
		if s[1] != seen {
			seen, lastChange = s[1], time.Now()
		}
		if time.Since(lastChange) > 2*time.Second {
			t.Fatalf("the screen froze while a sign-out waited for the index lock:\n%s", screen)
		}
	}
	kill()
	m.wait("the sign-out done", regexp.MustCompile(`signed out `+regexp.QuoteMeta(alice)))
	m.keys("q")
}

// tuiLaunch is the shell command that runs the full-screen app with c's
// config dir and keyring, plus extra environment.
func tuiLaunch(c *cli, extra ...string) string {
	base := keyringtest.Merge(keyringEnv, c.extra)
	base = keyringtest.Merge([]string{keyringWait}, base)
	base = keyringtest.Merge(base, []string{"MXAUTH_CONFIG_DIR=" + c.dir, "NO_COLOR=1", "TERM=xterm-256color", "PATH=" + os.Getenv("PATH")})
	var env []string
	for _, kv := range keyringtest.Merge(base, extra) {
		env = append(env, fmt.Sprintf("%q", kv))
	}
	return fmt.Sprintf("env -i %s %q", strings.Join(env, " "), binPath)
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = regexp.QuoteMeta(s)
	}
	return out
}
