//go:build !unix && !windows

package dirstore

import (
	"errors"
	"io/fs"
	"os"
)

// errIrregular is what openFile returns when path is not a regular file;
// openPrivate then says what it is.
var errIrregular = errors.New("not a regular file")

const (
	// modesMatter is false: outside Unix, the package does not rely on file
	// modes to say who may read or change a file.
	modesMatter = false
	// dirSyncs is true: syncing the directory is tried, and may fail.
	dirSyncs = true
)

// openFile opens path with flag, refusing first a path that is not a
// regular file, since there is no O_NOFOLLOW here.
func openFile(path string, flag int) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: path, Err: errIrregular}
	}
	return os.OpenFile(path, flag, 0o600)
}

// owner reports false: the package does not read owners here.
func owner(fs.FileInfo) (int, bool) { return 0, false }
