//go:build unix

package main

import (
	"io/fs"
	"os"
	"syscall"
)

// looseMode reports whether a cache file may be read or changed by anyone
// but its owner, or belongs to another user.
func looseMode(fi fs.FileInfo) bool {
	if fi.Mode().Perm()&0o077 != 0 {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) != os.Getuid()
}
