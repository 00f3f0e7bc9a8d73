// Package dirstore keeps small values in a directory, one file per key, for
// the root package's DirStore: tokens that survive a restart and are shared
// by the processes of one user on one host.
//
// The files are written for machines that lose power and directories that
// other users can reach. A value is written to a temporary file that is
// synced and then renamed over the old one, so a power cut leaves the old
// value or the new one, never an empty or partial file, and a reader never
// sees a write half done. The directory is 0700 and the files 0600; a
// directory other users may write in, and a value file that is not a
// regular file only this user can read (a symbolic link, a FIFO, a
// directory, a file of another user), is refused without being followed or
// opened for a blocking read, since someone else may have put it there.
//
// Processes coordinate through one lock file per key beside the values. It
// is never deleted, so that no process ever locks a file another one has
// already unlinked, and it is never the value file itself, which each save
// replaces by another inode.
package dirstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxValue is the size of the largest value, in bytes: Save refuses larger
// values and Load refuses larger files.
const MaxValue = 64 << 10

const (
	// maxKey bounds a key, leaving room for the file name extensions within
	// the 255 bytes most file systems allow.
	maxKey = 200
	// valueExt, lockExt and tempInfix name a key's files: the value, the
	// lock, and temporary files ("." + key + tempInfix + random digits),
	// whose leading dot keeps them apart from every key.
	valueExt  = ".token"
	lockExt   = ".lock"
	tempInfix = ".tmp-"
)

// Dir is a directory holding one file per key: the value of key K in
// K.token and its lock in K.lock. A key is 1 to 200 bytes of
// [A-Za-z0-9._-] that does not start with a dot. Keys differing only in
// case may share a file on case-insensitive file systems (macOS, Windows).
// Modes and owners are checked where they say who may use a file (Unix);
// on Windows the user's own folders are private by their access lists.
//
// The methods of Dir are safe for concurrent use by multiple goroutines and
// processes.
type Dir string

// Load returns the value saved under key. When there is none, or no
// directory, the error wraps [fs.ErrNotExist]. A value file that is not a
// regular file, that other users may read or write, or that is larger than
// [MaxValue] is an error saying so; the next Save replaces it.
func (d Dir) Load(ctx context.Context, key string) ([]byte, error) {
	path, err := d.file(key, valueExt)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(err)
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	f, err := openPrivate(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxValue+1))
	if err != nil {
		return nil, wrap(err)
	}
	if len(b) > MaxValue {
		return nil, fmt.Errorf("econnect: DirStore: %s: larger than %d bytes", path, MaxValue)
	}
	return b, nil
}

// Save replaces the value under key, creating the directory (mode 0700)
// if needed. The new file is complete on disk before it replaces the old
// one. Values larger than [MaxValue] are refused. If ctx is done before the
// new file takes the old one's place, nothing changes and the error wraps
// ctx.Err(). Save also removes the temporary files of saves that were
// interrupted more than a minute ago.
func (d Dir) Save(ctx context.Context, key string, value []byte) error {
	path, err := d.file(key, valueExt)
	if err != nil {
		return err
	}
	if len(value) > MaxValue {
		return fmt.Errorf("econnect: DirStore: value larger than %d bytes", MaxValue)
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	if err := d.ensure(); err != nil {
		return err
	}
	d.removeStale(time.Now())
	tmp, err := d.writeTemp(key, value)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		os.Remove(tmp)
		return wrap(err)
	}
	clearDir(path)
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return wrap(err)
	}
	syncDir(string(d))
	return nil
}

// clearDir removes an empty directory found where a value belongs, so that
// the rename can replace it as it replaces any other file put there; a
// directory with something in it stays, and the save fails.
func clearDir(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
		os.Remove(path) // only an empty one goes
	}
}

// Delete removes the value under key. A missing value is not an error.
func (d Dir) Delete(ctx context.Context, key string) error {
	path, err := d.file(key, valueExt)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	if err := d.check(); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap(err)
	}
	return nil
}

// file returns the path of key's file with the extension ext, or an error
// if d is empty or key is not a valid key.
func (d Dir) file(key, ext string) (string, error) {
	if d == "" {
		return "", errors.New("econnect: DirStore: no directory")
	}
	if err := checkKey(key); err != nil {
		return "", err
	}
	return filepath.Join(string(d), key+ext), nil
}

// checkKey reports what is wrong with key, if anything. Only the bytes of
// [A-Za-z0-9._-] are allowed, so that a key never names a path outside the
// directory, and no leading dot, so that a key never names a temporary file.
func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("econnect: DirStore: empty key")
	case len(key) > maxKey:
		return fmt.Errorf("econnect: DirStore: key longer than %d bytes", maxKey)
	case key[0] == '.':
		return errors.New("econnect: DirStore: key starts with a dot")
	case strings.IndexFunc(key, notKeyRune) >= 0:
		return errors.New("econnect: DirStore: key holds a character outside [A-Za-z0-9._-]")
	case windowsDevice(key):
		return errors.New("econnect: DirStore: key is a Windows device name")
	}
	return nil
}

// notKeyRune reports whether r may not be part of a key.
func notKeyRune(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		r == '.' || r == '_' || r == '-')
}

// windowsDevice reports whether key names a device on Windows (CON.token
// is the console there, whatever the extension). Such keys are refused on
// every platform, so that a key means the same everywhere.
func windowsDevice(key string) bool {
	stem, _, _ := strings.Cut(strings.ToLower(key), ".")
	switch stem {
	case "con", "prn", "aux", "nul":
		return true
	}
	return len(stem) == 4 && (strings.HasPrefix(stem, "com") || strings.HasPrefix(stem, "lpt")) &&
		'0' <= stem[3] && stem[3] <= '9'
}

// wrap prefixes err, an error of the operating system or a context, with
// the package's prefix.
func wrap(err error) error {
	return fmt.Errorf("econnect: DirStore: %w", err)
}
