package cli

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/matrixtest/browsertest"
)

// TestDemoServeLoopbackOnly: the demo homeserver prints its passwords, so
// --serve refuses every address another machine could reach, and the banner
// of an accepted one names the address it really listens on.
func TestDemoServeLoopbackOnly(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:8008", "example.org:8008"} {
		r := c.expect(exitUsage, "", "demo", "--serve", addr)
		oneLineStderr(t, r)
		if !strings.Contains(r.stderr, "loopback only") || r.stdout != "" {
			t.Errorf("--serve %s: %s", addr, r)
		}
	}

	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := c.command(ctx, "", "demo", "--serve", addr)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		banner, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			t.Fatalf("--serve %s: no banner: %v", addr, err)
		}
		base, err := url.Parse(strings.TrimSpace(strings.TrimPrefix(banner, "Demo homeserver: ")))
		if err != nil {
			t.Fatalf("banner %q: %v", banner, err)
		}
		if ip := net.ParseIP(base.Hostname()); ip == nil || !ip.IsLoopback() {
			t.Errorf("--serve %s: banner %q names no loopback address", addr, banner)
		}
		conn, err := net.DialTimeout("tcp", base.Host, 5*time.Second)
		if err != nil {
			t.Errorf("--serve %s: the banner's address %s does not answer: %v", addr, base.Host, err)
		} else {
			conn.Close()
			assertLegacyDemo(t, ctx, base.String())
		}
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("--serve %s: after Ctrl+C: %v", addr, err)
		}
		cancel()
	}
}

// TestDemoServeOAuth: --serve --oauth runs only the homeserver that delegates
// sign-in, and what it prints is enough to sign in: the approval page it names
// is where a device grant's code goes, and its user and password approve it.
func TestDemoServeOAuth(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	r := c.expect(exitUsage, "", "demo", "--oauth")
	oneLineStderr(t, r)
	if !strings.Contains(r.stderr, "--serve") {
		t.Errorf("--oauth alone: %s", r)
	}
	c.expect(exitUsage, "", "demo", "--serve", "0.0.0.0:0", "--oauth")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.command(ctx, "", "demo", "--serve", "127.0.0.1:0", "--oauth")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("after Ctrl+C: %v", err)
		}
	}()
	lines := bufio.NewReader(out)
	var banner []string
	for len(banner) < 3 {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("banner cut short after %q: %v", banner, err)
		}
		banner = append(banner, strings.TrimRight(line, "\n"))
	}
	hs := regexp.MustCompile(`^Demo OAuth homeserver: (http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(banner[0])
	approval := regexp.MustCompile(`^  approval page (http://\S+)$`).FindStringSubmatch(banner[1])
	carol := regexp.MustCompile(`^  user (@carol:\S+)  password (\S+)$`).FindStringSubmatch(banner[2])
	if hs == nil || approval == nil || carol == nil {
		t.Fatalf("banner:\n%s", strings.Join(banner, "\n"))
	}
	if !strings.HasPrefix(approval[1], hs[1]+"/") {
		t.Errorf("the approval page %s is not on the homeserver's loopback address %s", approval[1], hs[1])
	}

	mc, err := matrix.NewClient(hs[1])
	if err != nil {
		t.Fatal(err)
	}
	auth, err := mc.ProbeServerAuth(ctx)
	if err != nil {
		t.Fatalf("probing the demo OAuth homeserver: %v", err)
	}
	if auth.Kind != matrix.AuthOAuthOnly {
		t.Fatalf("the demo OAuth homeserver is %v", auth.Kind)
	}
	meta := auth.Metadata
	reg, err := mc.RegisterClient(ctx, meta, matrix.NativeClient("demo test", "https://example.org/", []string{matrix.GrantDeviceCode, matrix.GrantRefreshToken}, nil))
	if err != nil {
		t.Fatalf("registering: %v", err)
	}
	deviceID, err := matrix.NewDeviceID()
	if err != nil {
		t.Fatal(err)
	}
	da, err := mc.RequestDeviceAuthorization(ctx, meta, reg.ClientID, matrix.OAuthScope(deviceID))
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	if da.VerificationURI != approval[1] {
		t.Errorf("the banner's approval page %s is not the device grant's verification URI %s", approval[1], da.VerificationURI)
	}
	// The page the banner names, as a newcomer would use it: enter the code, sign in, allow.
	browsertest.New(t).AnswerDevice(approval[1], da.UserCode, browsertest.Answer{User: carol[1], Password: carol[2], Decision: browsertest.Approve})
	tok, err := mc.RequestToken(ctx, meta, matrix.TokenRequest{GrantType: matrix.GrantDeviceCode, ClientID: reg.ClientID, DeviceCode: da.DeviceCode})
	if err != nil {
		t.Fatalf("token after approval: %v", err)
	}
	if who := whoami(t, hs[1], tok.AccessToken.Reveal()); who.UserID != carol[1] || who.DeviceID != deviceID {
		t.Errorf("signed in as %+v, want %s on device %s", who, carol[1], deviceID)
	}

	// And as the banner suggests: mxauth login against it, approved on its page.
	forgetKeyringItems(t, strings.TrimPrefix(hs[1], "http://"))
	r = deviceSignIn(t, c, carol[1], "carol", carol[2], "approve", "--json")
	if r.code != 0 || decodeJSON[oauthAccountJSON](t, r.stdout).UserID != carol[1] {
		t.Fatalf("mxauth login against the demo's OAuth homeserver: %s", r)
	}
	c.ok("", "logout")
}

// assertLegacyDemo checks that plain --serve runs the password homeserver,
// without the OAuth 2.0 API.
func assertLegacyDemo(t *testing.T, ctx context.Context, baseURL string) {
	t.Helper()
	mc, err := matrix.NewClient(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	if auth, err := mc.ProbeServerAuth(ctx); err != nil || auth.Kind != matrix.AuthLegacy {
		t.Errorf("--serve without --oauth: %+v, %v; want the password homeserver", auth, err)
	}
}
