package oidctest

import (
	"testing"
	"time"
)

// TestServerEndsWithItsParent: the server exits by itself when the pipe to
// its standard input closes, as it does when the test process that started
// it dies without running Stop, so it cannot outlive a killed test run.
func TestServerEndsWithItsParent(t *testing.T) {
	t.Parallel()
	s := New(t, Options{})
	if !s.Running() {
		t.Fatal("not running after start")
	}
	s.stdin.Close()
	select {
	case <-s.proc.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the server kept running after its standard input closed")
	}
}
