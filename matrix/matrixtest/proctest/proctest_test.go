//go:build unix

package proctest_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mxauth/matrix/matrixtest/proctest"
)

// TestStopEndsTheWholeGroup: Stop ends what the server started too. The
// shell and the sleep it leaves in the background both hold the pipe's write
// end, so the pipe reads end-of-file only once both are gone.
func TestStopEndsTheWholeGroup(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("sh", "-c", "sleep 300 & echo started; wait")
	cmd.Stdout = w
	p, err := proctest.Start("sh", cmd, filepath.Join(t.TempDir(), "log"))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what a failed Stop left behind
	r.SetReadDeadline(time.Now().Add(20 * time.Second))
	line := make([]byte, len("started\n"))
	if _, err := io.ReadFull(r, line); err != nil {
		t.Fatalf("the shell did not start its child: %v", err)
	}
	p.Stop()
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process was waited for")
	}
	r.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("a process of the group outlived Stop: %v", err)
	}
}

// TestWaitReadyReportsAnEarlyExit: a server that exits during start-up fails
// WaitReady at once, with what it wrote.
func TestWaitReadyReportsAnEarlyExit(t *testing.T) {
	cmd := exec.Command("sh", "-c", "echo cannot bind >&2; exit 3")
	p, err := proctest.Start("shell", cmd, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	err = p.WaitReady("http://127.0.0.1:1/", 60*time.Second)
	if err == nil || !strings.Contains(err.Error(), "shell exited during start-up") || !strings.Contains(err.Error(), "cannot bind") {
		t.Fatalf("WaitReady = %v, want the early exit with the log's tail", err)
	}
}

// TestWaitReadyWaitsFor200: answers other than 200 are not ready yet.
func TestWaitReadyWaitsFor200(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	p, err := proctest.Start("sleep", exec.Command("sleep", "300"), filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.WaitReady(srv.URL, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("ready after %d requests, want 3", n)
	}
}

// TestLockFileExcludes: while one holder has the lock, nobody else gets it.
func TestLockFileExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, exclusive, err := proctest.LockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !exclusive {
		t.Fatal("not exclusive on a system with flock")
	}
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("second lock while held: %v, want EWOULDBLOCK", err)
	}
	unlock()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("second lock after unlock: %v", err)
	}
}
