package dirstore

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// errIrregular is what openFile returns when path is not a regular file;
// openPrivate then says what it is.
var errIrregular = errors.New("not a regular file")

const (
	// modesMatter is false: Windows file modes do not say who may read or
	// change a file (ACLs do, and the user's own folders are private).
	modesMatter = false
	// dirSyncs is false: Windows cannot sync a directory.
	dirSyncs = false
)

// openFile opens path with flag (os.O_RDONLY, or os.O_RDWR|os.O_CREATE)
// without following a symbolic link or junction. Windows has no O_NOFOLLOW:
// a path that is not a regular file is refused before it is opened, and the
// file is opened as a reparse point itself (FILE_FLAG_OPEN_REPARSE_POINT),
// so that the caller's Stat of the open file sees a link swapped in between.
// The file is shared for deletion too, so that a Save can rename over a
// value that a Load is reading.
func openFile(path string, flag int) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errIrregular}
	}
	p, err := syscall.UTF16PtrFromString(path)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	access, disposition := uint32(syscall.GENERIC_READ), uint32(syscall.OPEN_EXISTING)
	if flag&os.O_CREATE != 0 {
		access, disposition = syscall.GENERIC_READ|syscall.GENERIC_WRITE, syscall.OPEN_ALWAYS
	}
	share := uint32(syscall.FILE_SHARE_READ | syscall.FILE_SHARE_WRITE | syscall.FILE_SHARE_DELETE)
	h, err := syscall.CreateFile(p, access, share, nil, disposition,
		syscall.FILE_ATTRIBUTE_NORMAL|syscall.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// owner reports false: the package does not read Windows owners.
func owner(fs.FileInfo) (int, bool) { return 0, false }
