//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package dirstore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// canLock says that Lock works here: flock(2) locks belong to an open file
// description, so two descriptors conflict even within one process, and the
// kernel releases them when their holder dies.
const canLock = true

// tryLock takes the exclusive lock of f without waiting: errBusy if another
// descriptor holds it. An error from a file system without locks wraps
// errors.ErrUnsupported (syscall.Errno says so for ENOTSUP).
func tryLock(f *os.File) error {
	err := control(f, func(fd uintptr) error {
		return syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		return errBusy
	}
	return fmt.Errorf("econnect: DirStore: lock %s: %w", f.Name(), err)
}

// unlockFile releases f's lock.
func unlockFile(f *os.File) {
	control(f, func(fd uintptr) error { return syscall.Flock(int(fd), syscall.LOCK_UN) })
}

// control runs op on f's descriptor, which stays open while op runs.
func control(f *os.File, op func(fd uintptr) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = op(fd) }); err != nil {
		return err
	}
	return opErr
}
