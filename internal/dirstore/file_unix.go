//go:build unix

package dirstore

import (
	"io/fs"
	"os"
	"syscall"
)

const (
	// modesMatter says that file modes and owners decide who may read or
	// change the store's files.
	modesMatter = true
	// dirSyncs says that syncing a directory makes the renames in it durable.
	dirSyncs = true
)

// openFile opens path with flag, failing instead of following a symbolic
// link (O_NOFOLLOW) and returning at once on a FIFO (O_NONBLOCK), so that
// the caller can look at what it opened before reading from it.
func openFile(path string, flag int) (*os.File, error) {
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
}

// owner returns the user id owning the file fi describes.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
