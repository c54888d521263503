package cli

import (
	"bufio"
	"context"
	"errors"
	"time"

	"mxauth/matrix"
	"mxauth/ui/app"
)

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withUIA runs call, answering the server's user-interactive authentication
// through app's UIA flow: the password stage from the reader, other stages
// through the browser fallback page. call is always the same request; only
// auth changes.
func (a *program) withUIA(userID string, fallback func(stage, session string) string, pw *secretReader, call func(auth *matrix.AuthData) error) error {
	flow := app.NewUIAFlow(userID)
	err := call(nil)
	for {
		step := flow.Next(err)
		switch step.Kind {
		case app.UIADone:
			return step.Err
		case app.UIAWait:
			if !pw.interactive() {
				return step.Err // nobody at the terminal to sit the wait out
			}
			what := "Rate limited by the server"
			if flow.Session() != "" {
				what += " after your password was accepted"
			}
			a.infof("%s; trying again in %s (Ctrl+C to stop).", what, app.FormatDuration(step.Wait))
			if err := sleepCtx(a.ctx, step.Wait); err != nil {
				return errCancelled
			}
			err = call(flow.Resend())
		case app.UIAPassword:
			if step.WrongPassword {
				if !pw.interactive() {
					return app.ErrWrongPassword
				}
				a.infof("Wrong password, try again.")
			}
			p, rerr := pw.read("Password for " + userID + ": ")
			if rerr != nil {
				if errors.Is(rerr, errNoMoreInput) {
					return app.ErrWrongPassword
				}
				return rerr
			}
			err = call(flow.Password(p))
		case app.UIABrowser:
			if err := a.browserStage(step, flow.Session(), fallback); err != nil {
				return err
			}
			err = call(flow.Resend())
		}
	}
}

// browserStage asks the user to complete a stage the terminal cannot do.
func (a *program) browserStage(step app.UIAStep, session string, fallback func(stage, session string) string) error {
	if !a.isTerminal() {
		return errors.New("the server wants confirmation in a browser (" + matrix.Sanitize(step.Stage) + "); run this command in a terminal")
	}
	a.infof("Confirm in a browser, then press Enter here:\n  %s", fallback(step.Stage, session))
	_, err := a.readTerminal(func() ([]byte, error) { return bufio.NewReader(a.stdin).ReadBytes('\n') })
	if err != nil {
		return errCancelled
	}
	return nil
}
