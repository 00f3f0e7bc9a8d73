package dirstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// staleAge is how old a temporary file must be for Save to remove it: a
// save writes at most MaxValue bytes, so one older than that was left by
// a save that died between writing and renaming.
const staleAge = time.Minute

// ensure creates d and its missing parents with mode 0700, then checks d.
func (d Dir) ensure() error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return wrap(err)
	}
	return d.check()
}

// check reports an error unless d is a directory that no other user may
// write in (where modes say so: Unix), since such a user could swap files
// in it. A missing directory is an error wrapping fs.ErrNotExist.
func (d Dir) check() error {
	fi, err := os.Stat(string(d))
	if err != nil {
		return wrap(err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("econnect: DirStore: %s is not a directory", d)
	}
	return checkPrivate(string(d), fi, 0o022)
}

// writeTemp writes value to a new temporary file of key in d (mode 0600)
// and syncs it, so that a rename makes it the value only once its bytes are
// on disk. It returns the file's path; on failure it leaves no file behind.
func (d Dir) writeTemp(key string, value []byte) (string, error) {
	f, err := os.CreateTemp(string(d), "."+key+tempInfix+"*")
	if err != nil {
		return "", wrap(err)
	}
	_, err = f.Write(value)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", wrap(err)
	}
	return f.Name(), nil
}

// removeStale removes the temporary files in d, of any key, last changed
// more than staleAge before now. It is best effort: a file another process
// removes first, or that cannot be removed, is left to the next Save.
func (d Dir) removeStale(now time.Time) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isTemp(e.Name()) {
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleAge {
			os.Remove(filepath.Join(string(d), e.Name()))
		}
	}
}

// isTemp reports whether name is that of a temporary file of this store:
// a dot, a key, tempInfix, and a non-empty random suffix.
func isTemp(name string) bool {
	i := strings.LastIndex(name, tempInfix)
	return i > 1 && name[0] == '.' && checkKey(name[1:i]) == nil && len(name) > i+len(tempInfix)
}

// syncDir makes a rename in dir durable where the system allows it. It is
// best effort: where a directory cannot be synced (Windows), the rename is
// still atomic, only its durability is left to the file system.
func syncDir(dir string) {
	if !dirSyncs {
		return
	}
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	f.Sync()
	f.Close()
}
