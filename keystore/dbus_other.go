//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package keystore

func dbusErrorName(error) (string, bool) { return "", false }

// checkSessionBus: only the Secret Service backend needs a session bus.
func checkSessionBus() error { return nil }
