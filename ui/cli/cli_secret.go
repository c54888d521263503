package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"

	"mxauth/matrix"
)

// errNoMoreInput ends a retry loop when a secret came from stdin: a script
// gets one attempt, never a prompt it cannot answer.
var errNoMoreInput = errors.New("no more input")

// secretReader reads a password or login token: the first line of stdin with
// --*-stdin, else a no-echo prompt on the terminal.
type secretReader struct {
	a         *program
	fromStdin bool
	flagName  string // the --*-stdin flag, named in the usage error
	used      bool
}

func (a *program) secretReader(fromStdin bool, flagName string) *secretReader {
	return &secretReader{a: a, fromStdin: fromStdin, flagName: flagName}
}

// interactive reports whether a wrong answer can be asked for again.
func (r *secretReader) interactive() bool { return !r.fromStdin && r.a.isTerminal() }

func (a *program) isTerminal() bool { return a.stdin != nil && term.IsTerminal(int(a.stdin.Fd())) }

// check fails early with a usage error when there is no way to read the secret.
func (r *secretReader) check() error {
	if r.fromStdin || r.a.isTerminal() {
		return nil
	}
	return usageErrorf("stdin is not a terminal: pass %s and write the secret on the first line of stdin", r.flagName)
}

// read returns the secret; prompt is shown on stderr for the terminal.
func (r *secretReader) read(prompt string) (matrix.Secret, error) {
	if r.fromStdin {
		if r.used {
			return "", errNoMoreInput
		}
		r.used = true
		return readFirstLine(r.a.stdin)
	}
	if err := r.check(); err != nil {
		return "", err
	}
	fmt.Fprint(r.a.stderr, prompt)
	fd := int(r.a.stdin.Fd())
	b, err := r.a.readTerminal(func() ([]byte, error) { return term.ReadPassword(fd) })
	fmt.Fprintln(r.a.stderr)
	if errors.Is(err, errCancelled) {
		return "", err
	}
	if err != nil {
		return "", fmt.Errorf("reading from the terminal: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("nothing was entered")
	}
	return matrix.Secret(b), nil
}

// readFirstLine reads up to the first newline, without the line ending.
func readFirstLine(in io.Reader) (matrix.Secret, error) {
	if in == nil {
		return "", errors.New("nothing on stdin")
	}
	line, err := bufio.NewReader(io.LimitReader(in, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageErrorf("stdin is empty: write the secret on its first line")
	}
	return matrix.Secret(line), nil
}

var errCancelled = errors.New("cancelled")

// readTerminal runs a blocking terminal read but gives up on Ctrl+C: the
// interrupt is caught for the whole process, so the read would otherwise go
// on waiting. The terminal's mode (echo off during a password) is restored.
func (a *program) readTerminal(read func() ([]byte, error)) ([]byte, error) {
	fd := int(a.stdin.Fd())
	state, _ := term.GetState(fd)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := read()
		done <- result{b, err}
	}()
	ctx := a.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		if state != nil {
			_ = term.Restore(fd, state)
		}
		return nil, errCancelled
	}
}
