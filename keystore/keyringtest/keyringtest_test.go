//go:build linux || freebsd || openbsd || netbsd || dragonfly

package keyringtest

import (
	"strings"
	"testing"
	"time"
)

// TestDiedNamesTheDaemonsEnd: a daemon that ends on its own is reported with
// when and how; one ended by Stop, or still running, is not.
func TestDiedNamesTheDaemonsEnd(t *testing.T) {
	k := StartKeyring(t, Options{})
	if d := k.Died(); d != "" {
		t.Fatalf("a running daemon reported as ended: %s", d)
	}
	if err := k.daemon.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-k.daemonExited:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed daemon did not end")
	}
	if d := k.Died(); !strings.Contains(d, "gnome-keyring-daemon ended at") || !strings.Contains(d, "killed") {
		t.Fatalf("Died() = %q", d)
	}
	k.Stop()
	if d := k.Died(); d != "" {
		t.Fatalf("after Stop: %q", d)
	}
}
