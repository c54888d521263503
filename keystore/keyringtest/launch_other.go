//go:build !(linux || freebsd || openbsd || netbsd || dragonfly)

package keyringtest

import "runtime"

type impl struct{}

func launch(Options) (*Keyring, error) {
	return nil, errorf("%w: not on %s", ErrNotInstalled, runtime.GOOS)
}

// Lock is not available on this platform.
func (k *Keyring) Lock() error { return errorf("%w", ErrNotInstalled) }

// Unlock is not available on this platform.
func (k *Keyring) Unlock() error { return errorf("%w", ErrNotInstalled) }

// Stop does nothing on this platform.
func (k *Keyring) Stop() {}

// SearchItems is not available on this platform.
func (k *Keyring) SearchItems(map[string]string) ([]string, error) {
	return nil, errorf("%w", ErrNotInstalled)
}

// Pause is not available on this platform.
func (k *Keyring) Pause() (func(), error) { return nil, errorf("%w", ErrNotInstalled) }

// Died is always "" on this platform: there is no daemon.
func (k *Keyring) Died() string { return "" }
