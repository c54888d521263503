package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

const doctorLong = `Checks that the keyring is reachable and unlocked (by writing, reading and
deleting a probe item), that the config directory is private, and for every
account: that its server answers, which spec versions it speaks, whether it
supports refresh and login tokens, and the state of the account's tokens.
Exits non-zero when something needs attention, saying what.

` + exitCodesHelp

// doctorOptions are mxauth doctor's flags: none yet.
type doctorOptions struct{}

func newCmdDoctor(a *program, runF func(*doctorOptions) error) *cobra.Command {
	opts := &doctorOptions{}
	return &cobra.Command{
		Use:   "doctor",
		Short: "check the keyring, the config directory and every account",
		Long:  doctorLong,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runDoctor(cmd.Context(), a))
		},
	}
}

// doctor collects check results; the worst problem decides the exit code.
type doctor struct {
	a        *program
	problems int
	code     int
	deadline time.Duration // for the keyring (MXAUTH_KEYRING_TIMEOUT)
}

func (d *doctor) ok(format string, args ...any) {
	fmt.Fprintln(d.a.stdout, "ok    "+shownLine(fmt.Sprintf(format, args...)))
}

func (d *doctor) fail(code int, format string, args ...any) {
	fmt.Fprintln(d.a.stdout, "FAIL  "+shownLine(fmt.Sprintf(format, args...)))
	d.problems++
	if d.code == 0 || d.code == exitError {
		d.code = code
	}
}

func runDoctor(ctx context.Context, a *program) error {
	deadline, err := a.waitBound(keyringTimeoutEnv)
	if err != nil {
		return err
	}
	httpTimeout, err := a.waitBound(httpTimeoutEnv)
	if err != nil {
		return err
	}
	d := &doctor{a: a, deadline: cmp.Or(deadline, keystore.DefaultDeadline)}
	backend := keystore.NewKeyringBackend()
	keyringOK := d.checkKeyring(backend)

	st, err := keystore.Open(keystore.Options{Backend: backend, Dir: a.configDir(), Deadline: d.deadline})
	var unsafe *keystore.UnsafeIndexError
	switch {
	case errors.As(err, &unsafe):
		for _, f := range unsafe.Findings {
			d.fail(exitError, "%s: other users could have changed where your tokens are sent, so mxauth will not use it; check the homeservers in it, then: %s", f, f.Fix)
		}
		return d.result()
	case err != nil:
		d.fail(exitError, "account list: %s", errorMessage(err))
		return d.result()
	}
	d.checkDir(st)
	if !keyringOK {
		return d.result()
	}
	svc := newService(st, app.Options{HTTPTimeout: httpTimeout})
	d.finishPending(ctx, svc)
	for _, acct := range st.Accounts() {
		d.checkAccount(ctx, svc, acct)
	}
	if len(st.Accounts()) == 0 {
		d.ok("no accounts yet")
	}
	return d.result()
}

func (d *doctor) result() error {
	if d.problems == 0 {
		return nil
	}
	return &codedError{d.code, fmt.Errorf("doctor found %d problem(s), see above", d.problems)}
}

// checkKeyring writes, reads back and deletes a probe item, under a deadline
// because a locked keyring may wait forever for an unlock prompt.
func (d *doctor) checkKeyring(b keystore.Backend) bool {
	name := b.Name()
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	key, value := "doctor-probe-"+hex.EncodeToString(raw), hex.EncodeToString(raw)
	done := make(chan error, 1)
	go func() {
		if err := b.Set(keystore.Service, key, value); err != nil {
			done <- fmt.Errorf("cannot write: %w", err)
			return
		}
		got, err := b.Get(keystore.Service, key)
		_ = b.Delete(keystore.Service, key)
		switch {
		case err != nil:
			done <- fmt.Errorf("cannot read back: %w", err)
		case got != value:
			done <- errors.New("read back something else than was written")
		default:
			done <- nil
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			d.fail(exitKeyring, "keyring (%s): unavailable or locked: %s; unlock it or start a Secret Service (e.g. gnome-keyring)", name, matrix.Sanitize(err.Error()))
			return false
		}
	case <-time.After(d.deadline):
		d.fail(exitKeyring, "keyring (%s): no answer within %s; it is probably locked and waiting for an unlock prompt", name, d.deadline)
		return false
	}
	d.ok("keyring: %s, reachable and unlocked (probe item written, read and deleted)", name)
	return true
}

// finishPending completes removals and sign-ins an earlier run left half
// done, reporting each: what was repaired as ok, what still needs doing as a
// problem.
func (d *doctor) finishPending(ctx context.Context, svc *app.Service) {
	notes, err := svc.Store().FinishPending(ctx, svc.SignOutLeftover)
	for _, n := range notes {
		if n.Done {
			d.ok("repaired: %s", matrix.Sanitize(n.Text))
		} else {
			d.fail(exitError, "%s", matrix.Sanitize(n.Text))
		}
	}
	if err != nil {
		d.fail(exitCode(err), "finishing earlier removals and sign-ins: %s", errorMessage(err))
	}
}

// checkDir wants the config dir and index readable by the user only.
func (d *doctor) checkDir(st *keystore.Store) {
	fi, err := os.Stat(st.Dir())
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.ok("config dir %s: not created yet", st.Dir())
		return
	case err != nil:
		d.fail(exitError, "config dir %s: %v", st.Dir(), err)
		return
	case fi.Mode().Perm()&0o077 != 0:
		d.fail(exitError, "config dir %s is readable by others (%04o): chmod 700 %s", st.Dir(), fi.Mode().Perm(), st.Dir())
	default:
		d.ok("config dir %s (%04o)", st.Dir(), fi.Mode().Perm())
	}
	if fi, err := os.Stat(st.IndexPath()); err == nil && fi.Mode().Perm()&0o077 != 0 {
		d.fail(exitError, "account list %s is readable by others (%04o): chmod 600 %s", st.IndexPath(), fi.Mode().Perm(), st.IndexPath())
	}
}

func (d *doctor) checkAccount(ctx context.Context, svc *app.Service, acct keystore.Account) {
	who := shown(acct.UserID)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := svc.AccountClient(acct)
	if err != nil {
		d.fail(exitError, "%s: %s", who, errorMessage(err))
		return
	}
	v, err := c.Versions(ctx)
	if err != nil {
		d.fail(exitError, "%s: homeserver %s does not answer: %s", who, shown(acct.Homeserver), errorMessage(err))
		return
	}
	d.ok("%s: homeserver %s answers, spec versions %s", who, shown(acct.Homeserver), versionRange(v.Versions))
	d.checkKind(ctx, c, acct)

	sess, err := svc.LoadSession(ctx, acct)
	if err != nil {
		d.fail(exitCode(err), "%s: %s", who, errorMessage(err))
		return
	}
	if session.ServerRefreshes(v, sess.Tokens()) {
		d.ok("%s: server supports refresh tokens", who)
	} else {
		d.ok("%s: server predates refresh tokens (spec v1.3)", who)
	}
	if chk, err := svc.CheckLoginToken(ctx, acct.UserID); err != nil {
		d.fail(exitCode(err), "%s: checking login tokens: %s", who, errorMessage(err))
	} else if chk.Supported {
		d.ok("%s: login tokens can be minted", who)
	} else {
		d.ok("%s: no login tokens: %s", who, chk.Reason)
	}

	if _, err := sess.AccessToken(ctx); err != nil {
		d.fail(exitCode(err), "%s: token: %s", who, errorMessage(err))
		return
	}
	st, t := sess.Status(), sess.Tokens()
	switch session.RenewalOf(t) {
	case session.RenewalNotNeeded:
		d.ok("%s: token valid; %s", who, app.NonExpiringNote)
	case session.RenewalBySignIn:
		d.ok("%s: token valid, expires %s with no refresh token: sign in again then", who, expiryText(st, time.Now()))
	default:
		d.ok("%s: token valid, expires %s, refreshed automatically", who, expiryText(st, time.Now()))
	}
}

// checkKind says how the account's server signs users in now, how the
// account signed in, and whether the server changed since.
func (d *doctor) checkKind(ctx context.Context, c *matrix.Client, acct keystore.Account) {
	who := shown(acct.UserID)
	sa, err := c.ProbeServerAuth(ctx)
	if err != nil {
		d.fail(exitCode(err), "%s: cannot tell how %s signs users in: %s", who, shown(acct.Homeserver), errorMessage(err))
		return
	}
	issuer := ""
	if sa.Metadata != nil {
		issuer = sa.Metadata.Issuer
	}
	how := "with a password or a login token"
	if acct.OAuth != nil {
		how = "through OAuth 2.0"
	}
	line := fmt.Sprintf("%s: %s; this account signed in %s", who, kindLine(acct.Homeserver, sa.Kind, issuer), how)
	if was := matrix.ParseServerAuthKind(acct.Kind); was != 0 && was != sa.Kind {
		line += fmt.Sprintf(" (at sign-in the server used %s)", was)
	}
	d.ok("%s", line)
}

// versionRange shortens a versions list to "r0.6.1, v1.1 ... v1.12".
func versionRange(vs []string) string {
	if len(vs) <= 3 {
		return strings.Join(vs, ", ")
	}
	return vs[0] + " ... " + vs[len(vs)-1]
}
