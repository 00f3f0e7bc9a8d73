package dirstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// testKey is a key shaped like the ones the root package computes.
const testKey = "econnect-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// newDir returns a store directory that does not exist yet, in a fresh
// temporary directory.
func newDir(t *testing.T) Dir {
	t.Helper()
	return Dir(filepath.Join(t.TempDir(), "store"))
}

// mustSave saves value under key in d.
func mustSave(t *testing.T, d Dir, key string, value []byte) {
	t.Helper()
	if err := d.Save(t.Context(), key, value); err != nil {
		t.Fatalf("Save() error = %v, want nil", err)
	}
}

// mustMkdir creates d with exactly mode perm, whatever the umask.
func mustMkdir(t *testing.T, d Dir, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(string(d), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(string(d), perm); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes data to the file name in d with exactly mode perm,
// creating d (0700) if needed.
func writeFile(t *testing.T, d Dir, name string, data []byte, perm fs.FileMode) {
	t.Helper()
	mustMkdir(t, d, 0o700)
	path := filepath.Join(string(d), name)
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// tempFiles returns the names of the temporary files in d.
func tempFiles(t *testing.T, d Dir) []string {
	t.Helper()
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.Contains(e.Name(), tempInfix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// wantNoTemp fails the test if d holds a temporary file.
func wantNoTemp(t *testing.T, d Dir) {
	t.Helper()
	if names := tempFiles(t, d); len(names) > 0 {
		t.Errorf("temporary files left: %q, want none", names)
	}
}

// wantRefused fails the test unless err is a refusal of the store: an
// error of this package that is not a miss.
func wantRefused(t *testing.T, op string, err error, says string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s error = nil, want an error saying %q", op, says)
	case errors.Is(err, fs.ErrNotExist):
		t.Errorf("%s error = %v, want a refusal, not a miss", op, err)
	case !strings.HasPrefix(err.Error(), "econnect: DirStore: "):
		t.Errorf("%s error = %q, want the prefix %q", op, err, "econnect: DirStore: ")
	case !strings.Contains(err.Error(), says):
		t.Errorf("%s error = %v, want it to say %q", op, err, says)
	}
}

// skipModes skips a test of file modes where they do not say who may use
// a file.
func skipModes(t *testing.T) {
	t.Helper()
	if !modesMatter {
		t.Skipf("file modes are not checked on %s", runtime.GOOS)
	}
}
