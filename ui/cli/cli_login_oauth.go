package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"mxauth/matrix"
	"mxauth/ui/app"
)

// loginJSON is login --json's report of an OAuth 2.0 sign-in: the account
// when signed in, else what ended it.
type loginJSON struct {
	Status string `json:"status"` // signed-in, denied, expired, cancelled, error
	*accountJSON
	Error string `json:"error,omitempty"`
}

// Outcomes of a sign-in as login --json names them.
const (
	loginSignedIn  = "signed-in"
	loginDenied    = "denied"
	loginExpired   = "expired"
	loginCancelled = "cancelled"
	loginError     = "error"
)

// loginOutcome names how a sign-in ended.
func loginOutcome(err error) string {
	switch {
	case err == nil:
		return loginSignedIn
	case errors.Is(err, app.ErrSignInDenied):
		return loginDenied
	case errors.Is(err, app.ErrSignInExpired):
		return loginExpired
	case errors.Is(err, context.Canceled):
		return loginCancelled
	}
	return loginError
}

// loginFailed reports, with --json, how a sign-in the server's kind let
// mxauth choose ended (the message goes to stderr as for every error).
func (a *program) loginFailed(opts *loginOptions, err error) error {
	if opts.JSON {
		_ = writeJSON(a.stdout, loginJSON{Status: loginOutcome(err), Error: shownLine(errorMessage(err))})
	}
	return err
}

// runOAuthLogin signs in through the server's OAuth 2.0 API: the device
// authorisation grant by default, the authorization code flow in a browser
// on this machine with --browser. Nothing is stored unless it succeeds.
func runOAuthLogin(ctx context.Context, a *program, svc *app.Service, probe app.AuthProbe, opts *loginOptions) error {
	view, err := oauthLogin(ctx, a, svc, probe, opts)
	if err != nil {
		return a.loginFailed(opts, err)
	}
	if opts.JSON {
		return writeJSON(a.stdout, loginJSON{Status: loginSignedIn, accountJSON: ptr(accountJSONFrom(view, time.Now()))})
	}
	a.infof("Signed in as %s (device %s) on %s through OAuth 2.0.", shown(view.UserID), shown(view.DeviceID), shown(view.Homeserver))
	return nil
}

func oauthLogin(ctx context.Context, a *program, svc *app.Service, probe app.AuthProbe, opts *loginOptions) (app.Account, error) {
	if !opts.Browser && !probe.DeviceGrant {
		return app.Account{}, unsupportedErrorf("login: %s does not offer the device authorisation grant; sign in with --browser on a machine with a web browser", shown(probe.BaseURL))
	}
	l, err := svc.StartOAuthLogin(ctx, app.OAuthLoginParams{
		Homeserver: probe.BaseURL, User: opts.User, DeviceName: opts.DeviceName, Browser: opts.Browser,
	})
	if err != nil {
		return app.Account{}, err
	}
	defer l.Close()
	if l.Browser {
		if err := a.showBrowserStep(l, opts.User); err != nil {
			return app.Account{}, err
		}
		return l.Wait(ctx, nil)
	}
	if err := a.showDeviceStep(l, opts); err != nil {
		return app.Account{}, err
	}
	return a.waitWithStatus(ctx, l)
}

// showBrowserStep opens the authorization page, or prints it when there is
// no browser to open here. The page is printed whole either way.
func (a *program) showBrowserStep(l *app.OAuthLogin, user string) error {
	link, err := asSent(l.AuthURL)
	if err != nil {
		return err
	}
	if err := a.openBrowser(link); err == nil {
		a.infof("Opened your browser to sign in%s. If it did not open, open this page in a browser on this machine:", asUser(user))
	} else {
		a.infof("Open this page in a browser on this machine to sign in%s:", asUser(user))
	}
	fmt.Fprintf(a.stderr, "  %s\n", link)
	a.infof("Waiting for the browser to come back to mxauth (Ctrl+C cancels)…")
	return nil
}

// showDeviceStep prints where to go and the code to enter (and with --qr a
// QR code of the page), on stderr.
func (a *program) showDeviceStep(l *app.OAuthLogin, opts *loginOptions) error {
	page, err := asSent(l.VerificationURI)
	if err != nil {
		return err
	}
	code, err := asSent(l.UserCode)
	if err != nil {
		return err
	}
	a.infof("To sign in%s, open this page on any device (a phone will do):", asUser(opts.User))
	fmt.Fprintf(a.stderr, "  %s\nand enter the code:\n  %s\n", page, code)
	target := page
	if l.VerificationURIComplete != "" {
		if target, err = asSent(l.VerificationURIComplete); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "(or open %s, which has the code filled in)\n", target)
	}
	if opts.QR {
		if err := a.printQR(a.stderr, target); err != nil {
			return err
		}
	}
	return nil
}

// asUser names the user a sign-in is for, when the command line named one:
// " as @user" for a sentence, already made safe to show: its own
// type, so infof keeps its leading space instead of trimming it as it does
// for every string it is given.
func asUser(user string) sentencePart {
	if user == "" {
		return ""
	}
	return sentencePart(" as " + shown(user))
}

// sentencePart is text already made safe to show, printed by infof as it is.
type sentencePart string

// maxLinkRunes bounds a page address or code printed whole.
const maxLinkRunes = 4000

// asSent is server text the user must type or open exactly: printed as
// sent, or refused when showing it safely would change it.
func asSent(s string) (string, error) {
	if s == "" || matrix.SanitizeLimit(s, maxLinkRunes) != s || strings.ContainsAny(s, " \t\n") {
		return "", errors.New("the authorization server sent a page address or code that cannot be shown as sent")
	}
	return s, nil
}

// stderrIsTerminal says whether a live status line can be drawn on stderr.
func (a *program) stderrIsTerminal() bool {
	f, ok := a.stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// waitWithStatus waits for the device grant to end. On a terminal one
// status line shows the countdown to the code's expiry and each answer of
// the server, redrawn in place; elsewhere one line says it waits.
func (a *program) waitWithStatus(ctx context.Context, l *app.OAuthLogin) (app.Account, error) {
	if !a.stderrIsTerminal() {
		a.infof("Waiting for approval; the code expires in %s (Ctrl+C cancels).", app.FormatDuration(time.Until(l.ExpiresAt)))
		return l.Wait(ctx, nil)
	}
	st := &pollStatus{}
	type result struct {
		view app.Account
		err  error
	}
	done := make(chan result, 1)
	go func() {
		v, err := l.Wait(ctx, st.record)
		done <- result{v, err}
	}()
	tick := time.NewTicker(time.Second / 4)
	defer tick.Stop()
	for frame := 0; ; frame++ {
		fmt.Fprint(a.stderr, "\r\x1b[2K"+st.line(frame, l.ExpiresAt))
		select {
		case r := <-done:
			fmt.Fprint(a.stderr, "\r\x1b[2K")
			return r.view, r.err
		case <-tick.C:
		}
	}
}

// pollStatus is what the polling has seen so far, for the status line.
type pollStatus struct {
	mu   sync.Mutex
	last matrix.DevicePoll
}

func (p *pollStatus) record(d matrix.DevicePoll) {
	p.mu.Lock()
	p.last = d
	p.mu.Unlock()
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *pollStatus) line(frame int, expires time.Time) string {
	p.mu.Lock()
	last := p.last
	p.mu.Unlock()
	left := max(0, time.Until(expires))
	parts := []string{spinner[frame%len(spinner)] + " Waiting for approval", "code expires in " + app.FormatDuration(left.Round(time.Second))}
	switch {
	case last.SlowDown:
		parts = append(parts, fmt.Sprintf("the server asked to slow down: asking every %s", app.FormatDuration(last.Interval)))
	case last.Attempt > 0:
		parts = append(parts, fmt.Sprintf("asked %d×, not approved yet", last.Attempt))
	}
	return strings.Join(parts, " · ") + " (Ctrl+C cancels)"
}
