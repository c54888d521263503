package keystore

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// The account index decides where each account's tokens are sent. A file or
// directory that other users can change is therefore not used: mxauth cannot
// tell whether its homeservers are still the ones the user signed in to, so
// it neither trusts nor silently tightens it. The user checks the file and
// fixes the modes with the commands the error names.

// UnsafeIndexError says that the index, or the directory holding it, can be
// changed by users other than the one running mxauth.
type UnsafeIndexError struct {
	Findings []UnsafeFinding
}

// UnsafeFinding is one path others can change, and the command that fixes it.
type UnsafeFinding struct {
	What string // "config dir" or "account list"
	Path string
	Why  string // "writable by every user (mode 0666)", ...
	Fix  string // a shell command, or advice
}

func (f UnsafeFinding) String() string {
	return fmt.Sprintf("%s %s is %s", f.What, f.Path, f.Why)
}

func (e *UnsafeIndexError) Error() string {
	parts := make([]string, 0, len(e.Findings))
	fixes := make([]string, 0, len(e.Findings))
	for _, f := range e.Findings {
		parts = append(parts, f.String())
		fixes = append(fixes, f.Fix)
	}
	return fmt.Sprintf("keystore: %s, so it may have been changed to send your tokens elsewhere and mxauth will not use it; check the homeservers in it, then: %s",
		strings.Join(parts, " and "), strings.Join(fixes, " && "))
}

// ErrUnsafeIndex matches an *UnsafeIndexError with errors.Is.
var ErrUnsafeIndex = errors.New("the account list can be changed by other users")

func (e *UnsafeIndexError) Is(target error) bool { return target == ErrUnsafeIndex }

// checkIndexSafety refuses an index file or directory that another user can
// write to or owns. Missing paths are fine: mxauth creates them private.
func checkIndexSafety(dir, index string) error {
	if runtime.GOOS == "windows" {
		return nil // no POSIX modes; the profile directory is per user
	}
	var found []UnsafeFinding
	if f, ok := unsafePath("config dir", dir, "chmod 700 "+shellQuote(dir)); ok {
		found = append(found, f)
	}
	if f, ok := unsafePath("account list", index, "chmod 600 "+shellQuote(index)); ok {
		found = append(found, f)
	}
	if len(found) == 0 {
		return nil
	}
	return &UnsafeIndexError{Findings: found}
}

// unsafePath reports a path that is group- or world-writable, or owned by
// another user (who could change it at will).
func unsafePath(what, path, chmod string) (UnsafeFinding, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return UnsafeFinding{}, false // missing, or unreadable: reading it reports that
	}
	mode := fi.Mode().Perm()
	if uid, ok := fileOwner(fi); ok && uid != os.Geteuid() && uid != 0 {
		return UnsafeFinding{What: what, Path: path,
			Why: fmt.Sprintf("owned by another user (uid %d)", uid),
			Fix: "move it away and sign in again"}, true
	}
	switch {
	case mode&0o022 == 0:
		return UnsafeFinding{}, false
	case mode&0o002 != 0:
		return UnsafeFinding{What: what, Path: path, Why: fmt.Sprintf("writable by every user (mode %04o)", mode), Fix: chmod}, true
	default:
		return UnsafeFinding{What: what, Path: path, Why: fmt.Sprintf("writable by its group (mode %04o)", mode), Fix: chmod}, true
	}
}

// shellQuote quotes a path for a command the user may paste.
func shellQuote(p string) string {
	if p != "" && strings.IndexFunc(p, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '+' || r == ':' || r == '@' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
