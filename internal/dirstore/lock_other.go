//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || windows)

package dirstore

import (
	"errors"
	"os"
)

// canLock is false: this package locks files with flock(2) or LockFileEx
// only. (fcntl locks, all Solaris and AIX have, belong to the process: two
// Locks in one process would not exclude each other, and closing any
// descriptor of the file would drop them.)
const canLock = false

// tryLock reports that files cannot be locked here.
func tryLock(*os.File) error { return errors.ErrUnsupported }

// unlockFile does nothing: no lock is ever held here.
func unlockFile(*os.File) {}
