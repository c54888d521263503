package cli

import (
	"context"
	"errors"
	"os"
	"sync"

	"golang.org/x/term"

	"mxauth/keystore"
	"mxauth/matrix/session"
	"mxauth/ui"
	"mxauth/ui/app"
)

// keyringCheck names an item that never exists: reading it answers "not
// found" from a working keyring and an error from an unusable one.
var keyringCheck = session.AccountKey{UserID: "@keyring-check:mxauth.invalid", DeviceID: "CHECK"}

// The shared backend is what the full-screen app runs on.
var _ ui.Backend = (*app.Service)(nil)

// runTUI opens the keyring-backed store and runs the full-screen program.
func runTUI(ctx context.Context, a *program) error {
	if err := a.needTerminal(); err != nil {
		return err
	}
	svc, err := a.openService(openOptions{DeferRepair: true})
	if err != nil {
		return err
	}
	// The checks run behind the first frame. Their notes go to the status
	// line (a keyring problem to the banner), and are printed after exit so
	// they stay in the scrollback (anything printed before the full screen
	// opens is hidden).
	var mu sync.Mutex
	var notes []string
	var keyringErr error
	err = a.runUI(ctx, svc, ui.RunOptions{Startup: func(ctx context.Context) ([]string, error) {
		n, kerr := startupChecks(ctx, svc)
		mu.Lock()
		notes, keyringErr = n, kerr
		mu.Unlock()
		return n, kerr
	}})
	mu.Lock()
	defer mu.Unlock()
	var kerr *keystore.Error
	if errors.As(keyringErr, &kerr) {
		notes = append(notes, kerr.Summary())
	}
	for _, n := range notes {
		a.infof("mxauth: %s", oneLine(n))
	}
	return err
}

// startupChecks finishes what an earlier run left half done and checks the
// keyring: notes for the status line, and a keyring problem for the banner.
func startupChecks(ctx context.Context, svc *app.Service) (notes []string, keyringErr error) {
	notes, err := svc.Store().RepairWith(ctx, svc.SignOutLeftover)
	if err != nil && app.IsStoreProblem(err) {
		// The TUI still opens and its banner says what to do. Repair's last
		// note names the same failure, so it goes.
		notes, keyringErr = notes[:max(0, len(notes)-1)], err
	}
	if err == nil && len(svc.Store().Accounts()) == 0 {
		// With no accounts nothing else would touch the keyring before the
		// first sign-in; say now, not after a password was typed, if it is unusable.
		var kerr *keystore.Error
		if _, perr := svc.Store().LoadTokens(ctx, keyringCheck); app.IsStoreProblem(perr) && errors.As(perr, &kerr) {
			keyringErr = kerr
		}
	}
	return notes, keyringErr
}

// needTerminal refuses to start the full-screen app without a terminal.
func (a *program) needTerminal() error {
	out, ok := a.stdout.(*os.File)
	if a.isTerminal() && ok && term.IsTerminal(int(out.Fd())) {
		return nil
	}
	return usageErrorf("the full-screen app needs a terminal; see mxauth --help for the commands scripts can use")
}

// runUI runs the engine in the background and the interface in front. The
// first frame is drawn at once: opt.Startup (may be nil) and loading the
// sessions from the keyring run behind it, with the accounts shown as loading
// meanwhile. opt brings the start-up notes; the rest of it is filled in here.
func (a *program) runUI(ctx context.Context, svc *app.Service, opt ui.RunOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	svc.MarkLoading()
	checks := opt.Startup
	startup := func(ctx context.Context) (notes []string, keyringErr error) {
		if checks != nil {
			notes, keyringErr = checks(ctx)
		}
		svc.LoadAll(ctx)
		return notes, keyringErr
	}
	go svc.Run(ctx)
	opt.Hostname, _ = os.Hostname()
	opt.NoColor = a.getenv("NO_COLOR") != ""
	opt.Startup = startup
	return ui.Run(ctx, svc, opt)
}
