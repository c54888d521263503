package main

import "os"

// crashEnvName names a variable for tests only: set to the name of a step,
// the process kills itself there (as kill -9 would), so the tests can check
// what the next run finds after a crash at exactly that point.
const crashEnvName = "MXAUTH_TEST_CRASH_AT"

// Steps crashPoint knows.
const (
	crashAfterLoginSave = "login-saved" // a sign-in's tokens are in the keyring, its account not yet in the index
)

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
