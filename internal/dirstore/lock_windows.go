package dirstore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// canLock says that Lock works here: LockFileEx locks belong to a handle,
// so two handles conflict even within one process, and Windows releases
// them when their holder dies.
const canLock = true

// kernel32 is loaded from the system directory (a known DLL), not the
// working directory.
var (
	kernel32         = syscall.NewLazyDLL("kernel32.dll")
	procLockFileEx   = kernel32.NewProc("LockFileEx")
	procUnlockFileEx = kernel32.NewProc("UnlockFileEx")
)

const (
	lockfileFailImmediately = 0x1
	lockfileExclusiveLock   = 0x2
	// errorLockViolation is ERROR_LOCK_VIOLATION: another handle holds it.
	errorLockViolation syscall.Errno = 33
	// allBytes locks the whole possible range of the file, as every holder
	// does, so that any two locks overlap.
	allBytes = ^uint32(0)
)

// tryLock takes the exclusive lock of f without waiting: errBusy if another
// handle holds it.
func tryLock(f *os.File) error {
	err := control(f, func(h uintptr) error {
		ol := new(syscall.Overlapped)
		r, _, err := procLockFileEx.Call(h, lockfileExclusiveLock|lockfileFailImmediately, 0,
			uintptr(allBytes), uintptr(allBytes), uintptr(unsafe.Pointer(ol)))
		if r == 0 {
			return err
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errorLockViolation):
		return errBusy
	}
	return fmt.Errorf("econnect: DirStore: lock %s: %w", f.Name(), err)
}

// unlockFile releases f's lock.
func unlockFile(f *os.File) {
	control(f, func(h uintptr) error {
		ol := new(syscall.Overlapped)
		procUnlockFileEx.Call(h, 0, uintptr(allBytes), uintptr(allBytes), uintptr(unsafe.Pointer(ol)))
		return nil
	})
}

// control runs op on f's handle, which stays open while op runs.
func control(f *os.File, op func(h uintptr) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(h uintptr) { opErr = op(h) }); err != nil {
		return err
	}
	return opErr
}
