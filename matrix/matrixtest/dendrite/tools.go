//go:build tools

// Package dendrite pins the Dendrite homeserver that mxauth's real-server tests build and run as
// a separate process. It is its own module so that Dendrite (AGPL) is never part of mxauth's build.
package dendrite

import (
	_ "github.com/element-hq/dendrite/cmd/dendrite"
	_ "github.com/element-hq/dendrite/cmd/generate-config"
	_ "github.com/element-hq/dendrite/cmd/generate-keys"
)
