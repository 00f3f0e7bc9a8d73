package dirstore

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	d := newDir(t)
	ctx := t.Context()
	for _, value := range [][]byte{[]byte(`{"v":1}`), []byte(`{"v":2,"longer":true}`), {}} {
		mustSave(t, d, testKey, value)
		got, err := d.Load(ctx, testKey)
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("Load() = %q, %v, want %q, nil", got, err, value)
		}
	}
	if err := d.Delete(ctx, testKey); err != nil {
		t.Fatalf("Delete() error = %v, want nil", err)
	}
	if _, err := d.Load(ctx, testKey); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load() after Delete error = %v, want fs.ErrNotExist", err)
	}
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name string
		dir  func(t *testing.T) Dir
	}{
		{"no value", func(t *testing.T) Dir {
			d := newDir(t)
			mustSave(t, d, "other-key", []byte("x"))
			return d
		}},
		{"no directory", newDir},
		{"no parent directory", func(t *testing.T) Dir { return Dir(filepath.Join(string(newDir(t)), "a", "b")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dir(t)
			_, before := os.Stat(string(d))
			if got, err := d.Load(t.Context(), testKey); !errors.Is(err, fs.ErrNotExist) || got != nil {
				t.Errorf("Load() = %q, %v, want nil, fs.ErrNotExist", got, err)
			}
			if err := d.Delete(t.Context(), testKey); err != nil {
				t.Errorf("Delete() error = %v, want nil", err)
			}
			if _, after := os.Stat(string(d)); (before == nil) != (after == nil) {
				t.Errorf("Stat() of the directory error = %v after Load and Delete, want %v", after, before)
			}
		})
	}
}

// An op calls a method of d on key.
type op struct {
	name string
	do   func(ctx context.Context, d Dir, key string) error
}

// ops calls each method of d on key, for tests that every method obeys a
// rule.
var ops = []op{
	{"Load", func(ctx context.Context, d Dir, key string) error {
		_, err := d.Load(ctx, key)
		return err
	}},
	{"Save", func(ctx context.Context, d Dir, key string) error {
		return d.Save(ctx, key, []byte("value"))
	}},
	{"Delete", func(ctx context.Context, d Dir, key string) error {
		return d.Delete(ctx, key)
	}},
	{"Lock", func(ctx context.Context, d Dir, key string) error {
		unlock, err := d.Lock(ctx, key, time.Minute)
		if err == nil {
			unlock()
		}
		return err
	}},
}

func TestBadKey(t *testing.T) {
	tests := []struct {
		name, key, says string
	}{
		{"parent", "../x", "starts with a dot"},
		{"parent inside", "a/../../x", "outside"},
		{"slash", "a/b", "outside"},
		{"backslash", `a\b`, "outside"},
		{"hidden", ".hidden", "starts with a dot"},
		{"dot", ".", "starts with a dot"},
		{"empty", "", "empty key"},
		{"300 bytes", strings.Repeat("a", 300), "longer than 200 bytes"},
		{"201 bytes", strings.Repeat("a", 201), "longer than 200 bytes"},
		{"NUL", "a\x00b", "outside"},
		{"space", "a b", "outside"},
		{"colon", "a:b", "outside"},
		{"non-ASCII", "é", "outside"},
		{"device", "CON", "device"},
		{"device with extension", "nul.x", "device"},
		{"numbered device", "com1", "device"},
		{"numbered device upper case", "LPT9.json", "device"},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				parent := t.TempDir()
				d := Dir(filepath.Join(parent, "store"))
				wantRefused(t, op.name+"()", op.do(t.Context(), d, tt.key), tt.says)
				if entries, _ := os.ReadDir(parent); len(entries) > 0 {
					t.Errorf("%s() with key %q made %s, want nothing made", op.name, tt.key, entries[0].Name())
				}
			})
		}
	}
}

func TestGoodKey(t *testing.T) {
	tests := []struct {
		name, key string
	}{
		{"caller's key", testKey},
		{"200 bytes", strings.Repeat("a", 200)},
		{"every kind of byte", "AZaz09._-"},
		{"inner dots", "a..b"},
		{"looks like a temporary file", "a.tmp-1"},
		{"near a device name", "com"},
		{"longer than a device name", "console"},
		{"device name with more digits", "com10"},
	}
	for _, tt := range tests {
		for _, op := range ops {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				d := newDir(t)
				err := op.do(t.Context(), d, tt.key)
				if err != nil && !(op.name == "Load" && errors.Is(err, fs.ErrNotExist)) {
					t.Errorf("%s() error = %v, want nil", op.name, err)
				}
			})
		}
	}
}

func TestNoDirectory(t *testing.T) {
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			wantRefused(t, op.name+"()", op.do(t.Context(), Dir(""), testKey), "no directory")
		})
	}
}

func TestContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			d := newDir(t)
			if err := op.do(ctx, d, testKey); !errors.Is(err, context.Canceled) {
				t.Errorf("%s() error = %v, want context.Canceled", op.name, err)
			}
			if _, err := os.Stat(string(d)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s() with a done context made the directory: Stat() error = %v", op.name, err)
			}
		})
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		name string
		size int
		ok   bool
	}{
		{"MaxValue", MaxValue, true},
		{"MaxValue+1", MaxValue + 1, false},
		{"1 MiB", 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value := bytes.Repeat([]byte("secret"), tt.size/6+1)[:tt.size]
			t.Run("Save", func(t *testing.T) {
				d := newDir(t)
				err := d.Save(t.Context(), testKey, value)
				if tt.ok {
					if err != nil {
						t.Errorf("Save() error = %v, want nil", err)
					}
					return
				}
				wantRefused(t, "Save()", err, "larger than 65536 bytes")
				if _, err := d.Load(t.Context(), testKey); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Load() after a refused Save error = %v, want fs.ErrNotExist", err)
				}
				wantNoTemp(t, d)
			})
			t.Run("Load", func(t *testing.T) {
				d := newDir(t)
				writeFile(t, d, testKey+valueExt, value, 0o600)
				got, err := d.Load(t.Context(), testKey)
				if tt.ok {
					if err != nil || len(got) != tt.size {
						t.Errorf("Load() = %d bytes, %v, want %d bytes, nil", len(got), err, tt.size)
					}
					return
				}
				wantRefused(t, "Load()", err, "larger than 65536 bytes")
				if got != nil || strings.Contains(err.Error(), "secret") {
					t.Errorf("Load() = %d bytes, %v, want no bytes, in the error either", len(got), err)
				}
			})
		})
	}
}

// TestDirectoryAtValuePath: a directory where a value belongs is refused by
// Load; Save replaces an empty one, as it replaces any other file put
// there, and fails on one that holds something, which it never deletes.
func TestDirectoryAtValuePath(t *testing.T) {
	d := newDir(t)
	mustMkdir(t, d, 0o700)
	at := filepath.Join(string(d), testKey+valueExt)
	if err := os.Mkdir(at, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := d.Load(t.Context(), testKey)
	wantRefused(t, "Load()", err, "a directory")
	if err := d.Save(t.Context(), testKey, []byte("value")); err != nil {
		t.Errorf("Save() over an empty directory error = %v, want it replaced", err)
	}
	if got, err := d.Load(t.Context(), testKey); err != nil || string(got) != "value" {
		t.Errorf("Load() after the save = %q, %v; want the value", got, err)
	}
	os.Remove(at)
	if err := os.MkdirAll(filepath.Join(at, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := d.Save(t.Context(), testKey, []byte("value")); err == nil {
		t.Errorf("Save() over a directory with something in it: error = nil, want an error")
	}
	if _, err := os.Stat(filepath.Join(at, "inside")); err != nil {
		t.Errorf("Save() touched what the directory holds: %v", err)
	}
	wantNoTemp(t, d)
}

func TestStoreIsFile(t *testing.T) {
	d := newDir(t)
	if err := os.WriteFile(string(d), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			if err := op.do(t.Context(), d, testKey); err == nil || errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s() in a file error = %v, want a refusal", op.name, err)
			}
		})
	}
}
