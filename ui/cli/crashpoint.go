package cli

import (
	"os"

	"mxauth/keystore"
	"mxauth/ui/app"
)

// crashEnvName names a variable for tests only: set to the name of a step,
// the process kills itself there (as kill -9 would), so the tests can check
// what the next run finds after a crash at exactly that point. The steps are
// app's (app.Step...).
const crashEnvName = "MXAUTH_TEST_CRASH_AT"

// crashPoint kills the process if the tests asked for a crash at step.
func crashPoint(step string) {
	if os.Getenv(crashEnvName) != step {
		return
	}
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	select {} // the kill is asynchronous on some systems; never go on past the step
}

// newService is the shared backend with the command line's crash points.
func newService(store *keystore.Store, opt app.Options) *app.Service {
	opt.Checkpoint = crashPoint
	return app.New(store, opt)
}
