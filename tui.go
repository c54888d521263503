package main

import (
	"context"
	"errors"
	"os"

	"golang.org/x/term"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/ui"
)

const tuiUsage = `Usage:
  mxauth

Opens the full-screen session manager: every account with a live countdown to
its token's expiry, refreshed in the background while it runs.`

// keyringCheck names an item that never exists: reading it answers "not
// found" from a working keyring and an error from an unusable one.
var keyringCheck = matrix.AccountKey{UserID: "@keyring-check:mxauth.invalid", DeviceID: "CHECK"}

// runTUI opens the keyring-backed store and runs the full-screen program.
func runTUI(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("mxauth", tuiUsage)
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q (see mxauth --help)", pos[0])
	}
	if err := a.needTerminal(); err != nil {
		return err
	}
	svc, err := a.openService(openOptions{})
	if err != nil {
		return err
	}
	notes, err := svc.store.Repair(ctx)
	if err != nil && storeProblem(err) {
		// The TUI still opens: accounts show the keyring problem themselves.
		notes = append(notes, errorMessage(err))
	}
	if err == nil && len(svc.store.Accounts()) == 0 {
		// With no accounts nothing else would touch the keyring before the
		// first sign-in; say now, not after a password was typed, if it is unusable.
		var kerr *keystore.Error
		if _, perr := svc.store.LoadTokens(ctx, keyringCheck); storeProblem(perr) && errors.As(perr, &kerr) {
			notes = append(notes, kerr.Summary())
		}
	}
	// Shown in the status line, and printed after exit so they stay in the
	// scrollback (anything printed before the full screen opens is hidden).
	err = a.runUI(ctx, svc, notes)
	for _, n := range notes {
		a.infof("mxauth: %s", oneLine(n))
	}
	return err
}

// needTerminal refuses to start the full-screen app without a terminal.
func (a *app) needTerminal() error {
	out, ok := a.stdout.(*os.File)
	if a.isTerminal() && ok && term.IsTerminal(int(out.Fd())) {
		return nil
	}
	return usageErrorf("the full-screen app needs a terminal; see mxauth --help for the commands scripts can use")
}

// runUI runs the engine in the background and the interface in front.
func (a *app) runUI(ctx context.Context, svc *Service, notes []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	svc.LoadAll(ctx)
	go svc.Run(ctx)
	host, _ := os.Hostname()
	return ui.Run(ctx, svc, ui.RunOptions{NoColor: a.getenv("NO_COLOR") != "", Hostname: host, Notes: notes})
}
