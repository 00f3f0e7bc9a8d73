//go:build unix

package apitest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A process restarted on a token file it must not trust (one that is not
// a regular file, or that other users may read) neither follows it, nor
// blocks on it, nor takes the token it holds: it logs in once, warns once,
// and saves a proper file in its place, so that the next run makes no auth
// call.
func TestRestartedProcessReplacesATokenFileItMustNotTrust(t *testing.T) {
	t.Parallel()
	for _, tc := range []spoilCase{
		{"a symbolic link to a usable token", func(t *testing.T, path string, saved []byte) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.WriteFile(target, saved, 0o600); err != nil {
				t.Fatal(err)
			}
			replace(t, path, func() error { return os.Symlink(target, path) })
			t.Cleanup(func() {
				if b, err := os.ReadFile(target); err != nil || !bytes.Equal(b, saved) {
					t.Errorf("the link's target changed (%v): the store wrote through the link", err)
				}
			})
		}},
		{"a FIFO", func(t *testing.T, path string, _ []byte) {
			replace(t, path, func() error { return syscall.Mkfifo(path, 0o600) })
		}},
		{"readable by others", func(t *testing.T, path string, _ []byte) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t)
		})
	}
}

// replace removes the file at path and makes another in its place.
func replace(t *testing.T, path string, make func() error) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := make(); err != nil {
		t.Fatal(err)
	}
}
