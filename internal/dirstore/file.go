package dirstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// openPrivate opens the store's file at path with flag (os.O_RDONLY, or
// os.O_RDWR|os.O_CREATE to make it 0600 when missing) without following a
// symbolic link or blocking on a FIFO, and checks that the file is regular
// and private to this user. A missing file is an error wrapping
// [fs.ErrNotExist].
func openPrivate(path string, flag int) (*os.File, error) {
	f, err := openFile(path, flag)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// O_NOFOLLOW fails with an errno that differs between systems:
			// look at the path itself to say what is wrong.
			if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
				return nil, irregular(path, fi.Mode())
			}
		}
		return nil, wrap(err)
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = wrap(err)
	case !fi.Mode().IsRegular():
		err = irregular(path, fi.Mode())
	default:
		err = checkPrivate(path, fi, 0o066)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// irregular is the error for a path of the store that is not a regular
// file, saying what it is instead.
func irregular(path string, mode fs.FileMode) error {
	what := "not a regular file"
	switch mode.Type() {
	case fs.ModeSymlink:
		what = "a symbolic link (not followed)"
	case fs.ModeNamedPipe:
		what = "a named pipe (FIFO)"
	case fs.ModeDir:
		what = "a directory"
	case fs.ModeSocket:
		what = "a socket"
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		what = "a device"
	}
	return fmt.Errorf("econnect: DirStore: %s is %s, want a regular file", path, what)
}

// checkPrivate reports an error if other users may have changed the file
// or directory at path: if it belongs to another user, or if its mode
// grants group or others any of the bits in mask. Only where modes and
// owners say who may change a file (Unix); elsewhere it reports nil.
func checkPrivate(path string, fi fs.FileInfo, mask fs.FileMode) error {
	if !modesMatter {
		return nil
	}
	if m := fi.Mode().Perm(); m&mask != 0 {
		return fmt.Errorf("econnect: DirStore: %s: mode %#o lets other users in, want %#o", path, m, m&^0o077)
	}
	if uid, ok := owner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("econnect: DirStore: %s: owned by uid %d, not this user", path, uid)
	}
	return nil
}
