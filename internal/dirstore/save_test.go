package dirstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// doneOnceWritten is a context that is done as soon as a temporary file
// exists in d: it ends a Save between its write and its rename.
type doneOnceWritten struct {
	context.Context
	t *testing.T
	d Dir
}

func (c doneOnceWritten) Err() error {
	if len(tempFiles(c.t, c.d)) > 0 {
		return context.Canceled
	}
	return nil
}

func TestSaveLeavesNoTemp(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		d := newDir(t)
		mustSave(t, d, testKey, []byte("one"))
		mustSave(t, d, testKey, []byte("two"))
		wantNoTemp(t, d)
	})
	t.Run("value too large", func(t *testing.T) {
		d := newDir(t)
		mustSave(t, d, testKey, []byte("old"))
		if err := d.Save(t.Context(), testKey, make([]byte, MaxValue+1)); err == nil {
			t.Fatal("Save() error = nil, want an error")
		}
		wantNoTemp(t, d)
	})
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root may write in a read-only directory")
		}
		skipModes(t)
		d := newDir(t)
		mustMkdir(t, d, 0o500)
		t.Cleanup(func() { os.Chmod(string(d), 0o700) })
		if err := d.Save(t.Context(), testKey, []byte("value")); err == nil {
			t.Fatal("Save() error = nil, want an error")
		}
		wantNoTemp(t, d)
	})
}

func TestSaveContextDone(t *testing.T) {
	d := newDir(t)
	mustSave(t, d, testKey, []byte("old"))
	err := d.Save(doneOnceWritten{t.Context(), t, d}, testKey, []byte("new"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Save() done after writing error = %v, want context.Canceled", err)
	}
	wantNoTemp(t, d)
	if got, err := d.Load(t.Context(), testKey); err != nil || string(got) != "old" {
		t.Errorf("Load() after a cancelled Save = %q, %v, want %q, nil", got, err, "old")
	}
}

func TestSaveRemovesStaleTemp(t *testing.T) {
	d := newDir(t)
	old := time.Now().Add(-2 * staleAge)
	files := []struct {
		name string
		old  bool
		kept bool
	}{
		{"." + testKey + ".tmp-123", true, false},
		{".other-key.tmp-456", true, false},
		{".a.tmp-b.tmp-789", true, false},
		{"." + testKey + ".tmp-999", false, true}, // a Save in progress
		{"notes.tmp-1", true, true},               // no leading dot: not this store's
		{".x.tmp-", true, true},                   // no random suffix
		{"..x.tmp-1", true, true},                 // not a key after the dot
		{"other-key.token", true, true},
	}
	for _, f := range files {
		writeFile(t, d, f.name, []byte("x"), 0o600)
		if f.old {
			path := filepath.Join(string(d), f.name)
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	mustSave(t, d, "some-key", []byte("value"))
	for _, f := range files {
		_, err := os.Lstat(filepath.Join(string(d), f.name))
		if kept := err == nil; kept != f.kept {
			t.Errorf("after Save, %s exists = %t, want %t", f.name, kept, f.kept)
		}
	}
}

func TestIsTemp(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{".k.tmp-1", true},
		{"." + testKey + ".tmp-2937465", true},
		{".k.tmp-x.tmp-1", true},
		{"k.tmp-1", false},
		{".k.tmp-", false},
		{"..tmp-1", false},
		{".tmp-1", false},
		{"..k.tmp-1", false},
		{".k.token", false},
		{"k.token", false},
		{"k.lock", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := isTemp(tt.name); got != tt.want {
			t.Errorf("isTemp(%q) = %t, want %t", tt.name, got, tt.want)
		}
	}
}

// TestLoadDuringSave checks that a Load racing with Saves sees one whole
// value or the other, never an error nor a part.
func TestLoadDuringSave(t *testing.T) {
	const (
		loads, loaders = 1000, 8
		saves, savers  = 200, 4
	)
	d := newDir(t)
	values := [][]byte{bytes.Repeat([]byte("a"), 3000), bytes.Repeat([]byte("b"), 5000)}
	mustSave(t, d, testKey, values[0])
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range loaders {
		wg.Go(func() {
			<-start
			for range loads / loaders {
				got, err := d.Load(t.Context(), testKey)
				if err != nil || !slices.ContainsFunc(values, func(v []byte) bool { return bytes.Equal(got, v) }) {
					t.Errorf("Load() during Save = %d bytes, %v, want one of the values, nil", len(got), err)
					return
				}
			}
		})
	}
	for s := range savers {
		wg.Go(func() {
			<-start
			for i := range saves / savers {
				if err := d.Save(t.Context(), testKey, values[(s+i)%2]); err != nil {
					t.Errorf("Save() error = %v, want nil", err)
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	wantNoTemp(t, d)
}
