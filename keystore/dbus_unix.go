//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package keystore

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	dbus "github.com/godbus/dbus/v5"
)

// dbusErrorName returns the D-Bus error name carried by err, if any.
func dbusErrorName(err error) (string, bool) {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name, true
	}
	var pe *dbus.Error
	if errors.As(err, &pe) && pe != nil {
		return pe.Name, true
	}
	return "", false
}

// checkSessionBus fails when godbus would find no session bus address. godbus
// then runs dbus-launch, which starts a stray bus per process (or fails with
// "Cannot autolaunch" without X11); neither leads to the user's keyring.
func checkSessionBus() error {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return nil
	}
	// The places godbus itself looks before autolaunching.
	if u, err := user.Current(); err == nil {
		run := filepath.Join("/run/user", u.Uid)
		for _, name := range []string{"bus", "dbus-session"} {
			if _, err := os.Stat(filepath.Join(run, name)); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: DBUS_SESSION_BUS_ADDRESS is not set and /run/user/<uid>/bus does not exist", errNoSessionBus)
}
