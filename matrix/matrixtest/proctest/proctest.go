// Package proctest runs a server as a child process for tests: started in a
// process group of its own with its output in a log file, polled until it
// answers, and stopped by its whole group, so nothing it started outlives the
// test.
package proctest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"
)

// Proc is a started server process.
type Proc struct {
	name    string
	cmd     *exec.Cmd
	log     *os.File
	logPath string
	done    chan struct{}
}

// Start creates the log file at logPath, sends cmd's standard output and error
// there unless the caller set them already, and starts cmd in its own process
// group. name is what errors call the server.
func Start(name string, cmd *exec.Cmd, logPath string) (*Proc, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = log
	}
	if cmd.Stderr == nil {
		cmd.Stderr = log
	}
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &Proc{name: name, cmd: cmd, log: log, logPath: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(p.done) }()
	return p, nil
}

// Log is the log file, for a caller that reads the output itself and keeps
// some of it; it closes when the process exits.
func (p *Proc) Log() io.Writer { return p.log }

// Done is closed once the process has exited and been waited for.
func (p *Proc) Done() <-chan struct{} { return p.done }

// WaitReady polls url until it answers 200, and fails with the log's tail if
// the process exits first or limit passes.
func (p *Proc) WaitReady(url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return p.ExitedError()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer within %s: %s", p.name, limit, p.LogTail())
}

// ExitedError is the error for a server that exited during start-up, with the
// log's tail.
func (p *Proc) ExitedError() error {
	return fmt.Errorf("%s exited during start-up: %s", p.name, p.LogTail())
}

// LogTail is the last 2,000 bytes of the log, for error messages.
func (p *Proc) LogTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Stop asks the process group to end, kills it if it has not within 5 s, and
// returns once the process has been waited for. A nil Proc is already stopped.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	signalGroup(p.cmd, false)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		signalGroup(p.cmd, true)
		<-p.done
	}
}
