// Package ui is mxauth's full-screen terminal interface, built with Bubble Tea.
package ui

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"mxauth/matrix"
	"mxauth/matrix/session"
	"mxauth/ui/app"
)

// Backend is everything the interface needs from the rest of mxauth. All
// methods taking a context may do I/O and are only called from commands.
type Backend interface {
	Accounts() []app.Account // in-memory snapshot, no I/O
	Events() <-chan session.Event
	Resolve(ctx context.Context, input string) (baseURL string, err error) // URL or MXID
	Login(ctx context.Context, p app.LoginParams) (app.Account, error)
	Refresh(ctx context.Context, userID string) error
	SignOut(ctx context.Context, userID string) error
	ServerInfo(ctx context.Context, userID string) (app.ServerInfo, error)
	AccessToken(ctx context.Context, userID string) (matrix.Secret, error)
	Devices(ctx context.Context, userID string) ([]matrix.Device, error)
	DeleteDevice(ctx context.Context, userID, deviceID string, auth *matrix.AuthData) error // *matrix.UIAChallenge when auth needed
	CheckLoginToken(ctx context.Context, userID string) (app.LoginTokenCheck, error)
	MintLoginToken(ctx context.Context, userID string, auth *matrix.AuthData) (*matrix.GetLoginTokenResponse, error) // UIA
	FallbackURL(userID, stage, session string) string
	StoreName() string
	Demo() *app.DemoInfo // nil outside demo
}

// RunOptions configures the program.
type RunOptions struct {
	NoColor  bool   // NO_COLOR: no colour at all, only text attributes
	Hostname string // for the default device name "mxauth on <hostname>"
	// Now is the clock; nil means time.Now. Tests pin it so views are reproducible.
	Now func() time.Time
	// Notes are shown in the status line at start (keyring repairs and the
	// like), since anything printed before the full screen opens is hidden.
	Notes []string
	// Keyring is the keyring problem found at start when there are no
	// accounts to show it (nil if none); the banner says it.
	Keyring error
	// Startup, if set, runs once in the background as the program starts
	// (checks and loading sessions from a keyring that may be slow or hung),
	// so the first frame never waits for it. Its notes then go to the status
	// line, its keyring problem (if any) to the banner as Keyring's would, and
	// the accounts are read again.
	Startup func(ctx context.Context) (notes []string, keyring error)
	// OpenURL opens an address in the browser; nil means the platform's
	// opener, when the computer has a browser to open.
	OpenURL func(addr string) error
}

// New returns the root model. Run wraps it; tests drive it directly.
func New(b Backend, opt RunOptions) tea.Model {
	return newModel(context.Background(), b, opt)
}

// Run shows the interface until the user quits or ctx ends. The terminal is
// restored on every path, including a panic inside the interface.
func Run(ctx context.Context, b Backend, opt RunOptions) error {
	return run(ctx, b, opt)
}

// run is Run with extra program options, so tests can supply input and output.
func run(ctx context.Context, b Backend, opt RunOptions, extra ...tea.ProgramOption) (err error) {
	if b == nil {
		return errors.New("ui: no backend")
	}
	m := newModel(ctx, b, opt)
	// The screen changes once a second or on a key press: 30 frames a second
	// is plenty and halves the idle wake-ups of the default 60.
	opts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithFPS(30)}
	if opt.NoColor {
		// The library only honours boolean-looking NO_COLOR values; any value counts.
		opts = append(opts, tea.WithColorProfile(colorprofile.Ascii))
	}
	opts = append(opts, extra...)
	p := tea.NewProgram(guarded{m}, opts...)
	defer func() {
		// Last resort: Bubble Tea restores the terminal for panics in Update,
		// View and commands; this covers anything around them.
		if r := recover(); r != nil {
			p.Kill()
			err = fmt.Errorf("ui: internal error: %v", r)
		}
	}()
	final, err := p.Run()
	if g, ok := final.(guarded); ok && g.m.fatal != nil {
		return g.m.fatal
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, tea.ErrProgramKilled) {
			return nil // the caller ended the program on purpose
		}
		return fmt.Errorf("ui: %w", err)
	}
	return nil
}

// guarded turns a panic in Update or View into a clean exit with an error, so
// the user sees one line instead of a stack trace and the terminal is restored
// by the normal shutdown path.
type guarded struct{ m *model }

func (g guarded) Init() tea.Cmd { return g.m.Init() }

func (g guarded) Update(msg tea.Msg) (_ tea.Model, cmd tea.Cmd) {
	defer func() {
		if r := recover(); r != nil {
			g.m.fatal = fmt.Errorf("ui: internal error: %v", r)
			cmd = tea.Quit
		}
	}()
	_, cmd = g.m.Update(msg)
	return g, cmd
}

func (g guarded) View() (v tea.View) {
	defer func() {
		if r := recover(); r != nil {
			g.m.fatal = fmt.Errorf("ui: internal error: %v", r)
			v = tea.NewView("mxauth: internal error, press ctrl+c to quit")
			v.AltScreen = true
		}
	}()
	return g.m.View()
}
