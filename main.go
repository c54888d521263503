// Command mxauth manages Matrix login sessions from a terminal: a full-screen
// session manager, a scriptable command line, and an offline demo.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"mxauth/ui/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, version, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
