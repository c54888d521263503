package cli

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
)

// runChild runs cmd to its end, passing on the signals mxauth receives meanwhile,
// and returns the exit status mxauth must end with: the command's own code, or
// 128+N when signal N ended it, as shells report it.
func runChild(cmd *exec.Cmd) error {
	// Listen before starting, so a signal that arrives as the command starts is
	// passed on rather than lost or fatal to mxauth.
	sigs := make(chan os.Signal, 4)
	if fwd := forwardedSignals(); len(fwd) > 0 {
		signal.Notify(sigs, fwd...)
	}
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	forwarding := make(chan struct{})
	go func() {
		defer close(forwarding)
		for {
			select {
			case sig := <-sigs:
				passOn(cmd.Process, sig)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	<-forwarding
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return &exitStatus{childExitCode(ee)}
	}
	return err
}
