package cli

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/ui"
	"mxauth/ui/app"
)

// demoOptions are mxauth demo's flags.
type demoOptions struct {
	Accounts int    // extra users, all signed in
	Serve    string // only run the homeserver, on this loopback address
	OAuth    bool   // with Serve: run the homeserver that signs in through OAuth 2.0 instead
}

const demoLong = `Runs the full-screen app against a homeserver embedded in mxauth, on a loopback
port, with ready-made users alice and bob (their passwords are shown on screen).
alice is signed in when the app opens, and refreshed once right away; bob is
left for you to add with a. Access tokens last 30 seconds, so refreshes can be
watched. Nothing is saved: secrets stay in memory and vanish at exit.

A second embedded homeserver signs in through OAuth 2.0, as matrix.org does: its
user carol is left for you to add. mxauth shows a code; open the approval page
named on screen (plain HTML forms on loopback: any browser, or a text browser
such as w3m or lynx), sign in there as carol with the password shown, and allow
the device.

With --accounts N the homeserver also gets N users (user001, user002, ...),
sharing one password shown on screen, and all of them are signed in before the
app opens, to show a busy screen:
  mxauth demo --accounts 100

With --serve ADDR only the homeserver runs, on a loopback address only (e.g.
--serve 127.0.0.1:8008; 0.0.0.0 and other interfaces are refused); its URL,
users and passwords are printed, and it serves until Ctrl+C, so the command line
can be pointed at it:
  mxauth login --user @alice:127.0.0.1:8008 --password-stdin

With --serve ADDR --oauth the homeserver that signs in through OAuth 2.0 runs
instead, with its authorization server under /auth/ on the same address; its
approval page, users and passwords are printed:
  mxauth demo --serve 127.0.0.1:8009 --oauth
  mxauth login --user @carol:127.0.0.1:8009

` + exitCodesHelp

func newCmdDemo(a *program, runF func(*demoOptions) error) *cobra.Command {
	opts := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "the full-screen app against an embedded homeserver (nothing is saved)",
		Long:  demoLong,
		Example: `mxauth demo
mxauth demo --accounts 100
mxauth demo --serve 127.0.0.1:8008
mxauth demo --serve 127.0.0.1:8009 --oauth`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return a.finish(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return a.finish(runDemo(cmd.Context(), a, opts))
		},
	}
	cmd.Flags().StringVar(&opts.Serve, "serve", "", "only run the homeserver, listening on ADDR (host:port)")
	cmd.Flags().IntVar(&opts.Accounts, "accounts", 0, "also create N users and sign them all in before the app opens (with --serve: only create and list them)")
	cmd.Flags().BoolVar(&opts.OAuth, "oauth", false, "with --serve: run the homeserver that signs in through OAuth 2.0 (device grant, browser) instead")
	return cmd
}

// validate refuses a crowd too large and a --serve address beyond loopback.
func (opts *demoOptions) validate() error {
	if opts.Accounts < 0 || opts.Accounts > maxDemoAccounts {
		return usageErrorf("demo: --accounts must be between 0 and %d", maxDemoAccounts)
	}
	if opts.OAuth && opts.Serve == "" {
		return usageErrorf("demo: --oauth goes with --serve (the full-screen demo always has its OAuth homeserver)")
	}
	if opts.Serve != "" {
		return checkLoopbackAddr(opts.Serve)
	}
	return nil
}

// checkLoopbackAddr refuses a --serve address that is not a loopback one: the
// demo homeserver prints its passwords and has no protection, so it must not
// be reachable from other machines.
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("demo: --serve wants HOST:PORT, e.g. 127.0.0.1:8008")
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	return usageErrorf("demo: --serve %s would listen beyond this machine; the demo homeserver listens on loopback only (e.g. 127.0.0.1:8008), since its passwords are printed and it has no protection", shown(addr))
}

// listenLoopback listens on addr and makes sure the socket it got is a
// loopback one (a name such as localhost could resolve to anything).
func listenLoopback(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: cannot listen on %s: %w", shown(addr), err)
	}
	if ta, ok := l.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		l.Close()
		return nil, fmt.Errorf("demo: %s is not a loopback address; use e.g. 127.0.0.1:8008", shown(addr))
	}
	return l, nil
}

// demoTokenLifetime is short so the countdown and refreshes are visible.
const demoTokenLifetime = 30 * time.Second

// demoDeviceInterval is how often the demo's device grant may be polled:
// shorter than an authorization server's usual 5 s, so the approval shows at once.
const demoDeviceInterval = 2 * time.Second

func runDemo(ctx context.Context, a *program, opts *demoOptions) error {
	if opts.Serve != "" {
		return serveDemo(ctx, a, opts)
	}
	if err := a.needTerminal(); err != nil {
		return err
	}
	srv, info, crowd, err := startDemoHomeserver("127.0.0.1:0", opts.Accounts)
	if err != nil {
		return err
	}
	defer srv.Close()
	oauthSrv, oauthInfo, err := startDemoOAuthHomeserver("127.0.0.1:0", 0)
	if err != nil {
		return err
	}
	defer oauthSrv.Close()
	info.OAuth = oauthInfo

	// Memory backend without a Dir: the store makes a private temporary
	// directory and Close removes it, so the real account list is never touched.
	st, err := keystore.Open(keystore.Options{Backend: keystore.NewMemoryBackend()})
	if err != nil {
		return err
	}
	defer st.Close()
	svc := newService(st, app.Options{Demo: info})
	alice := info.Users[0]
	if err := signInAll(ctx, svc, srv.URL(), []app.DemoUser{alice}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("demo: %w", err)
	}
	// One refresh now, so the first screen shows a refresh as well as a
	// countdown instead of waiting most of a token's lifetime for one.
	if err := svc.Refresh(ctx, alice.UserID); err != nil {
		return fmt.Errorf("demo: refreshing %s: %w", alice.UserID, err)
	}
	if len(crowd) > 0 {
		start := time.Now()
		a.infof("mxauth: signing in %d demo accounts…", len(crowd))
		if err := signInAll(ctx, svc, srv.URL(), crowd); err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl+C while signing in
			}
			return fmt.Errorf("demo: %w", err)
		}
		a.infof("mxauth: signed in %d demo accounts in %s", len(crowd), time.Since(start).Round(time.Millisecond))
	}
	start := time.Now()
	err = a.runUI(ctx, svc, ui.RunOptions{})
	// What the engine did while the app ran, as the password homeserver saw it.
	a.infof("mxauth: demo ran %s: %d token refreshes, %d requests with an expired access token",
		time.Since(start).Round(time.Second), srv.RefreshCount(), srv.ExpiredTokenUses()+oauthSrv.ExpiredTokenUses())
	return err
}

// serveDemo runs only one demo homeserver (--serve), the password one or,
// with --oauth, the one that delegates sign-in, and prints how to use it.
func serveDemo(ctx context.Context, a *program, opts *demoOptions) error {
	if opts.OAuth {
		srv, info, err := startDemoOAuthHomeserver(opts.Serve, opts.Accounts)
		if err != nil {
			return err
		}
		defer srv.Close()
		fmt.Fprintf(a.stdout, "Demo OAuth homeserver: %s\n", info.Homeserver)
		fmt.Fprintf(a.stdout, "  approval page %s\n", info.ApprovalURL)
		printDemoUsers(a, info.Users)
	} else {
		srv, info, crowd, err := startDemoHomeserver(opts.Serve, opts.Accounts)
		if err != nil {
			return err
		}
		defer srv.Close()
		fmt.Fprintf(a.stdout, "Demo homeserver: %s\n", srv.URL())
		printDemoUsers(a, append(info.Users, crowd...))
	}
	a.infof("Serving until Ctrl+C. Nothing is saved.")
	<-ctx.Done()
	return nil
}

func printDemoUsers(a *program, users []app.DemoUser) {
	for _, u := range users {
		fmt.Fprintf(a.stdout, "  user %s  password %s\n", u.UserID, u.Password)
	}
}

// startDemoHomeserver runs the password homeserver on addr with alice, bob
// and n more users (the crowd, sharing one password).
func startDemoHomeserver(addr string, n int) (*homeserver.Server, *app.DemoInfo, []app.DemoUser, error) {
	l, err := listenLoopback(addr)
	if err != nil {
		return nil, nil, nil, err
	}
	// The request log is never read here; a short one keeps a long-running demo small.
	srv := homeserver.NewOnListener(l, homeserver.Options{AccessTokenLifetime: demoTokenLifetime, LogLimit: 1000})
	info := &app.DemoInfo{Homeserver: srv.URL()}
	for _, name := range []string{"alice", "bob"} {
		pw := demoPassword()
		info.Users = append(info.Users, app.DemoUser{UserID: srv.AddUser(name, pw), Password: pw, SignedIn: name == "alice"})
	}
	crowd := addDemoCrowd(srv, n, true)
	if len(crowd) > 0 {
		info.Crowd = &app.DemoCrowd{First: crowd[0].UserID, Last: crowd[len(crowd)-1].UserID, Count: len(crowd), Password: crowd[0].Password}
	}
	return srv, info, crowd, nil
}

// startDemoOAuthHomeserver runs the homeserver that delegates sign-in to its
// in-process OAuth 2.0 authorization server (served under /auth/ on the same
// loopback port), with carol and n more users. Nobody is signed in: adding
// carol shows the device grant end to end.
func startDemoOAuthHomeserver(addr string, n int) (*homeserver.Server, *app.DemoOAuth, error) {
	l, err := listenLoopback(addr)
	if err != nil {
		return nil, nil, err
	}
	srv := homeserver.NewOnListener(l, homeserver.Options{
		Delegated:           true,
		OAuthAccessLifetime: demoTokenLifetime,
		DeviceInterval:      demoDeviceInterval,
		// The code comes filled in when the page is opened from the QR code or the link.
		VerificationURIComplete: true,
		LogLimit:                1000,
	})
	pw := demoPassword()
	info := &app.DemoOAuth{
		Homeserver: srv.URL(),
		// The authorization server's device-link page, where a code is entered.
		ApprovalURL: srv.Issuer() + "link",
		Users:       []app.DemoUser{{UserID: srv.AddUser("carol", pw), Password: pw}},
	}
	info.Users = append(info.Users, addDemoCrowd(srv, n, false)...)
	return srv, info, nil
}

// addDemoCrowd adds n users (user001, user002, ...) sharing one password, so
// the banner can show it.
func addDemoCrowd(srv *homeserver.Server, n int, signedIn bool) []app.DemoUser {
	crowd := make([]app.DemoUser, n)
	width := len(strconv.Itoa(n))
	pw := demoPassword()
	for i := range crowd {
		name := fmt.Sprintf("user%0*d", max(3, width), i+1)
		crowd[i] = app.DemoUser{UserID: srv.AddUser(name, pw), Password: pw, SignedIn: signedIn}
	}
	return crowd
}

// maxDemoAccounts bounds --accounts: enough to load the screen and the
// engine, not so many that starting takes minutes (each sign-in rewrites
// the whole account list, so the start grows with the square of N).
const maxDemoAccounts = 2000

// demoLoginParallel is how many sign-ins run at once; the server is in
// process, so more would only contend for the same cores.
const demoLoginParallel = 8

// signInAll signs every user in through Service.Login, the path the add-account
// form takes, a few at a time. The first failure stops the rest.
func signInAll(ctx context.Context, svc *app.Service, homeserver string, users []app.DemoUser) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan app.DemoUser)
	var wg sync.WaitGroup
	for range min(demoLoginParallel, len(users)) {
		wg.Go(func() {
			for u := range next {
				_, err := svc.Login(ctx, app.LoginParams{Homeserver: homeserver, User: u.UserID, Password: matrix.Secret(u.Password)})
				if err != nil {
					cancel(fmt.Errorf("signing in %s: %w", u.UserID, err))
				}
			}
		})
	}
feed:
	for _, u := range users {
		select {
		case next <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// demoPassword is a fresh, easy-to-type password: the demo server listens on
// loopback only, but a fixed password would still be guessable by anyone there.
func demoPassword() string {
	const letters = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}
