//go:build tools

// Package dendrite pins the Dendrite homeserver (github.com/matrix-org/dendrite, Apache-2.0) that
// mxauth's real-server tests build and run as a separate process. It is its own module so that
// Dendrite and its dependencies are never part of mxauth's build. dendritetest caches the build
// under a hash of this module's go.mod and go.sum, so any edit here builds afresh.
package dendrite

import (
	_ "github.com/matrix-org/dendrite/cmd/dendrite"
	_ "github.com/matrix-org/dendrite/cmd/generate-config"
	_ "github.com/matrix-org/dendrite/cmd/generate-keys"
)
