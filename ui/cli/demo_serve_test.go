package cli

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
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
		}
		_ = cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Errorf("--serve %s: after Ctrl+C: %v", addr, err)
		}
		cancel()
	}
}
