//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly || windows)

package keystore

import (
	"errors"
	"os"
)

// fileLock falls back to an exclusively created file. Unlike flock it survives
// a crash: a stale file must then be removed by hand.
type fileLock struct{ path string }

func tryLock(path string) (*fileLock, error) {
	f, err := os.OpenFile(path+".held", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, errLockBusy
		}
		return nil, err
	}
	f.Close()
	return &fileLock{path + ".held"}, nil
}

func (l *fileLock) unlock() { _ = os.Remove(l.path) }
