//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package keystore

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// fileLock is a held flock(2). The kernel drops it if the process dies, so a
// crash never leaves an account locked.
type fileLock struct{ f *os.File }

func tryLock(path string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return nil, errLockBusy
		}
		return nil, err
	}
	return &fileLock{f}, nil
}

func (l *fileLock) unlock() {
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
}
