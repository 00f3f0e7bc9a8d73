//go:build unix

package dirstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestModes(t *testing.T) {
	parent := t.TempDir()
	d := Dir(filepath.Join(parent, "a", "b"))
	mustSave(t, d, testKey, []byte("value"))
	unlock, err := d.Lock(t.Context(), testKey, time.Minute)
	if err != nil {
		t.Fatalf("Lock() error = %v, want nil", err)
	}
	unlock()
	tests := []struct {
		path string
		want fs.FileMode
	}{
		{filepath.Join(parent, "a"), fs.ModeDir | 0o700},
		{string(d), fs.ModeDir | 0o700},
		{filepath.Join(string(d), testKey+valueExt), 0o600},
		{filepath.Join(string(d), testKey+lockExt), 0o600},
	}
	for _, tt := range tests {
		fi, err := os.Lstat(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tt.want {
			t.Errorf("mode of %s = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestDirectoryMode(t *testing.T) {
	tests := []struct {
		name string
		perm fs.FileMode
		ok   bool
	}{
		{"private", 0o700, true},
		{"readable by all", 0o755, true},
		{"readable by group", 0o750, true},
		{"writable by all", 0o777, false},
		{"writable by group", 0o770, false},
		{"writable by others", 0o703, false},
		{"sticky and writable by all", fs.ModeSticky | 0o777, false},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				d := newDir(t)
				mustMkdir(t, d, tt.perm)
				err := op.do(t.Context(), d, testKey)
				if tt.ok {
					if err != nil && !(op.name == "Load" && errors.Is(err, fs.ErrNotExist)) {
						t.Errorf("%s() error = %v, want nil", op.name, err)
					}
					return
				}
				wantRefused(t, op.name+"()", err, "lets other users in")
			})
		}
	}
}

func TestValueMode(t *testing.T) {
	tests := []struct {
		name string
		perm fs.FileMode
		ok   bool
	}{
		{"private", 0o600, true},
		{"read-only", 0o400, true},
		{"executable", 0o700, true},
		{"readable by all", 0o644, false},
		{"readable by group", 0o640, false},
		{"readable by others", 0o604, false},
		{"writable by group", 0o620, false},
		{"writable by others", 0o602, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDir(t)
			writeFile(t, d, testKey+valueExt, []byte("value"), tt.perm)
			got, err := d.Load(t.Context(), testKey)
			if tt.ok {
				if err != nil || string(got) != "value" {
					t.Errorf("Load() = %q, %v, want %q, nil", got, err, "value")
				}
				return
			}
			wantRefused(t, "Load()", err, "lets other users in")
			mustSave(t, d, testKey, []byte("new"))
			if got, err := d.Load(t.Context(), testKey); err != nil || string(got) != "new" {
				t.Errorf("Load() after Save = %q, %v, want %q, nil", got, err, "new")
			}
		})
	}
}

// TestOtherOwner needs root, to give files away.
func TestOtherOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can give a file to another user")
	}
	const uid = 4242
	t.Run("directory", func(t *testing.T) {
		d := newDir(t)
		mustMkdir(t, d, 0o700)
		if err := os.Chown(string(d), uid, uid); err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			wantRefused(t, op.name+"()", op.do(t.Context(), d, testKey), "owned by uid 4242")
		}
	})
	for _, ext := range []string{valueExt, lockExt} {
		t.Run(ext, func(t *testing.T) {
			d := newDir(t)
			writeFile(t, d, testKey+ext, []byte("value"), 0o600)
			if err := os.Chown(filepath.Join(string(d), testKey+ext), uid, uid); err != nil {
				t.Fatal(err)
			}
			op := findOp(t, "Load")
			if ext == lockExt {
				op = findOp(t, "Lock")
			}
			wantRefused(t, op.name+"()", op.do(t.Context(), d, testKey), "owned by uid 4242")
		})
	}
}

func TestSymlink(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("target-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDir(t)
	mustMkdir(t, d, 0o700)
	link := filepath.Join(string(d), testKey+valueExt)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	got, err := d.Load(t.Context(), testKey)
	wantRefused(t, "Load()", err, "a symbolic link")
	if got != nil || strings.Contains(err.Error(), "target-secret") {
		t.Errorf("Load() = %q, %v, want nothing of the target", got, err)
	}
	mustSave(t, d, testKey, []byte("new"))
	if got, err := d.Load(t.Context(), testKey); err != nil || string(got) != "new" {
		t.Errorf("Load() after Save = %q, %v, want %q, nil", got, err, "new")
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "target-secret" {
		t.Errorf("target after Save = %q, %v, want it unchanged", b, err)
	}
}

func TestLockFileSymlink(t *testing.T) {
	target := filepath.Join(t.TempDir(), "target")
	d := newDir(t)
	mustMkdir(t, d, 0o700)
	if err := os.Symlink(target, filepath.Join(string(d), testKey+lockExt)); err != nil {
		t.Fatal(err)
	}
	unlock, err := d.Lock(t.Context(), testKey, time.Minute)
	if err == nil {
		unlock()
	}
	wantRefused(t, "Lock()", err, "a symbolic link")
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lock() through a dangling link made its target: Lstat() error = %v", err)
	}
}

// findOp returns the op of ops named name.
func findOp(t *testing.T, name string) op {
	t.Helper()
	for _, o := range ops {
		if o.name == name {
			return o
		}
	}
	t.Fatalf("no op %q", name)
	return op{}
}
