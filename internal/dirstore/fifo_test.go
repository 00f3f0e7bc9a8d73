//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package dirstore

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestFIFO(t *testing.T) {
	for _, name := range []string{"Load", "Lock"} {
		op := findOp(t, name)
		t.Run(op.name, func(t *testing.T) {
			d := newDir(t)
			mustMkdir(t, d, 0o700)
			ext := valueExt
			if op.name == "Lock" {
				ext = lockExt
			}
			if err := syscall.Mkfifo(filepath.Join(string(d), testKey+ext), 0o600); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- op.do(t.Context(), d, testKey) }()
			select {
			case err := <-done:
				wantRefused(t, op.name+"()", err, "a named pipe")
			case <-time.After(10 * time.Second):
				t.Fatalf("%s() of a FIFO still blocked after 10s", op.name)
			}
		})
	}
	t.Run("Save replaces it", func(t *testing.T) {
		d := newDir(t)
		mustMkdir(t, d, 0o700)
		if err := syscall.Mkfifo(filepath.Join(string(d), testKey+valueExt), 0o600); err != nil {
			t.Fatal(err)
		}
		mustSave(t, d, testKey, []byte("new"))
		if got, err := d.Load(t.Context(), testKey); err != nil || string(got) != "new" {
			t.Errorf("Load() after Save = %q, %v, want %q, nil", got, err, "new")
		}
	})
}
