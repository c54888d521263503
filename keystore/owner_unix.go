//go:build unix

package keystore

import (
	"io/fs"
	"syscall"
)

// fileOwner is the user ID owning the file.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
