package cli

import (
	"bufio"
	"context"
	"errors"
	"time"

	"mxauth/matrix"
	"mxauth/ui/app"
)

// maxPasswordTries bounds re-prompts on a terminal; the server rate-limits
// failed attempts anyway.
const maxPasswordTries = 3

// maxUIAWait is the longest rate-limit wait sat out at the terminal after a
// password was accepted; longer ones end the command with exit code 6.
const maxUIAWait = 2 * time.Minute

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

// withUIA runs call, answering the server's user-interactive authentication:
// the password stage from the reader, other stages through the browser
// fallback page. call is always the same request; only auth changes.
func (a *program) withUIA(userID string, fallback func(stage, session string) string, pw *secretReader, call func(auth *matrix.AuthData) error) error {
	err := call(nil)
	tries := 0
	session := "" // the UIA session a password or browser stage went into
	for {
		if session != "" && matrix.IsLimitExceeded(err) && pw.interactive() {
			// The server took the password, then rate-limited the call itself
			// (Synapse's get_token limit comes after UIA). Someone is at the
			// terminal: wait it out and resend on the same session rather than
			// make them type the password again.
			wait, ok := matrix.RetryAfter(err)
			if !ok || wait > maxUIAWait {
				return err
			}
			a.infof("Rate limited by the server after your password was accepted; trying again in %s (Ctrl+C to stop).", app.FormatDuration(wait))
			if err := sleepCtx(a.ctx, wait); err != nil {
				return errCancelled
			}
			err = call(matrix.SessionAuth(session))
			continue
		}
		ch, ok := matrix.AsUIA(err)
		if !ok {
			return err
		}
		if ch.Session != "" {
			session = ch.Session
		}
		if tries > 0 {
			// The server answered a password with another challenge. Only a
			// failed stage means the password was wrong; a bare repeat means
			// the server would not take it, and asking again would not help.
			if !ch.StageFailed() {
				return errors.New("the server asked again without accepting or rejecting the password; try again later")
			}
			if !pw.interactive() || tries >= maxPasswordTries {
				return errors.New("wrong password")
			}
			a.infof("Wrong password, try again.")
		}
		if ch.CanUsePassword() {
			tries++
			p, rerr := pw.read("Password for " + userID + ": ")
			if rerr != nil {
				if errors.Is(rerr, errNoMoreInput) {
					return errors.New("wrong password")
				}
				return rerr
			}
			err = call(matrix.PasswordAuth(ch.Session, userID, p))
			continue
		}
		if err := a.browserStage(ch, fallback); err != nil {
			return err
		}
		err = call(matrix.SessionAuth(ch.Session))
	}
}

// browserStage asks the user to complete a stage the terminal cannot do.
func (a *program) browserStage(ch *matrix.UIAChallenge, fallback func(stage, session string) string) error {
	stages := ch.NextStages()
	if len(stages) == 0 {
		return errors.New("the server asked for confirmation but offered no way to give it")
	}
	if !a.isTerminal() {
		return errors.New("the server wants confirmation in a browser (" + matrix.Sanitize(stages[0]) + "); run this command in a terminal")
	}
	a.infof("Confirm in a browser, then press Enter here:\n  %s", fallback(stages[0], ch.Session))
	_, err := a.readTerminal(func() ([]byte, error) { return bufio.NewReader(a.stdin).ReadBytes('\n') })
	if err != nil {
		return errCancelled
	}
	return nil
}
