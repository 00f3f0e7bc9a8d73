package econnecttest

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/testkit"
	"github.com/google/go-cmp/cmp"
)

// newStore returns a Store on a fake clock, closed when the test ends.
func newStore(t *testing.T) (*Store, *testkit.Clock) {
	t.Helper()
	s := NewStore()
	t.Cleanup(s.Close)
	c := testkit.NewClock(clockStart)
	s.SetClock(c.Wall)
	return s, c
}

// checkStoreStats compares the store's counters with want.
func checkStoreStats(t *testing.T, s *Store, want StoreStats) {
	t.Helper()
	if diff := cmp.Diff(want, s.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

// checkValue checks what Load returns for key: want, or a miss if want is
// nil.
func checkValue(t *testing.T, s *Store, key string, want []byte) {
	t.Helper()
	got, err := s.Load(t.Context(), key)
	switch {
	case want == nil && !errors.Is(err, fs.ErrNotExist):
		t.Errorf("Load(%q) = %q, %v, want a miss (fs.ErrNotExist)", key, got, err)
	case want != nil && (err != nil || string(got) != string(want)):
		t.Errorf("Load(%q) = %q, %v, want %q", key, got, err, want)
	}
}

func TestStoreSaveLoadDelete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store)
		want []byte // Load("k") at the end; nil: a miss
		st   StoreStats
	}{
		{"miss", func(*testing.T, *Store) {}, nil, StoreStats{Loads: 1}},
		{"saved", func(t *testing.T, s *Store) { s.Save(t.Context(), "k", []byte("v1"), 0) }, []byte("v1"), StoreStats{Saves: 1, Loads: 1}},
		{"replaced", func(t *testing.T, s *Store) {
			s.Save(t.Context(), "k", []byte("v1"), 0)
			s.Save(t.Context(), "k", []byte("v2"), 0)
		}, []byte("v2"), StoreStats{Saves: 2, Loads: 1}},
		{"empty value", func(t *testing.T, s *Store) { s.Save(t.Context(), "k", nil, 0) }, []byte{}, StoreStats{Saves: 1, Loads: 1}},
		{"other key", func(t *testing.T, s *Store) { s.Save(t.Context(), "other", []byte("v1"), 0) }, nil, StoreStats{Saves: 1, Loads: 1}},
		{"deleted", func(t *testing.T, s *Store) {
			s.Save(t.Context(), "k", []byte("v1"), 0)
			if err := s.Delete(t.Context(), "k"); err != nil {
				t.Errorf("Delete() = %v, want nil", err)
			}
		}, nil, StoreStats{Saves: 1, Deletes: 1, Loads: 1}},
		{"delete of nothing", func(t *testing.T, s *Store) {
			if err := s.Delete(t.Context(), "k"); err != nil {
				t.Errorf("Delete(missing) = %v, want nil", err)
			}
		}, nil, StoreStats{Deletes: 1, Loads: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			tt.run(t, s)
			checkValue(t, s, "k", tt.want)
			checkStoreStats(t, s, tt.st)
		})
	}
}

func TestStoreTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ttl     time.Duration
		advance time.Duration
		want    bool // still there
	}{
		{"1ns before", time.Minute, time.Minute - 1, true},
		{"at the ttl", time.Minute, time.Minute, false},
		{"1ns after", time.Minute, time.Minute + 1, false},
		{"zero never lapses", 0, 100 * 365 * 24 * time.Hour, true},
		{"negative never lapses", -time.Second, 100 * 365 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newStore(t)
			if err := s.Save(t.Context(), "k", []byte("v"), tt.ttl); err != nil {
				t.Fatalf("Save() = %v", err)
			}
			clock.Advance(tt.advance)
			want := map[bool][]byte{true: []byte("v")}[tt.want]
			checkValue(t, s, "k", want)
			if _, ok := s.Value("k"); ok != tt.want {
				t.Errorf("Value(k) found = %v, want %v", ok, tt.want)
			}
			if got := len(s.Keys()); got != map[bool]int{true: 1}[tt.want] {
				t.Errorf("Keys() = %q, want k only if still there", s.Keys())
			}
		})
	}
}

func TestStoreCopies(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	value := []byte("v1")
	s.Save(ctx, "saved", value, 0)
	value[0] = 'X'
	loaded, _ := s.Load(ctx, "saved")
	loaded[0] = 'Y'
	looked, _ := s.Value("saved")
	looked[0] = 'Z'
	planted := []byte("p1")
	s.Put("planted", planted)
	planted[0] = 'X'
	garbage := []byte("g1")
	s.Fail(StoreLoad, 1, StoreFault{Value: garbage})
	garbage[0] = 'X'
	if got, _ := s.Load(ctx, "any"); string(got) != "g1" {
		t.Errorf("Load() with a Value fault = %q, want %q, the bytes when Fail was called", got, "g1")
	}
	checkValue(t, s, "saved", []byte("v1"))
	checkValue(t, s, "planted", []byte("p1"))
}

func TestStoreKeysPutValue(t *testing.T) {
	t.Parallel()
	s, clock := newStore(t)
	s.Put("b", []byte("2"))
	s.Put("a", []byte("1"))
	s.Save(t.Context(), "c", []byte("3"), time.Second)
	if got, want := s.Keys(), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}
	clock.Advance(time.Second)
	if got, want := s.Keys(), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Keys() after c's ttl = %q, want %q", got, want)
	}
	if v, ok := s.Value("a"); !ok || string(v) != "1" {
		t.Errorf("Value(a) = %q, %v, want 1, true", v, ok)
	}
	if v, ok := s.Value("c"); ok {
		t.Errorf("Value(c) = %q, true after its ttl, want none", v)
	}
	checkStoreStats(t, s, StoreStats{Saves: 1}) // Put, Value and Keys count nothing
}

func TestStoreConcurrentCounts(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	const n = 64
	s.Fail(StoreLoad, 10, StoreFault{Err: errors.New("boom")})
	testkit.Parallel(n, func(i int) {
		ctx := context.Background()
		s.Save(ctx, "k", []byte{byte(i)}, 0)
		s.Load(ctx, "k")
		s.Delete(ctx, "other")
	})
	checkStoreStats(t, s, StoreStats{Loads: n, Saves: n, Deletes: n, Faults: 10})
}

func TestStoreDoneContext(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	s.Put("k", []byte("v"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := map[StoreOp]func() error{
		StoreLoad:   func() error { _, err := s.Load(ctx, "k"); return err },
		StoreSave:   func() error { return s.Save(ctx, "k", []byte("new"), 0) },
		StoreDelete: func() error { return s.Delete(ctx, "k") },
		StoreLock:   func() error { _, err := s.Lock(ctx, "k", 0); return err },
	}
	for op, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%v(done ctx) = %v, want %v", op, err, context.Canceled)
		}
	}
	if v, _ := s.Value("k"); string(v) != "v" {
		t.Errorf("after calls with a done ctx, Value(k) = %q, want %q", v, "v")
	}
	checkStoreStats(t, s, StoreStats{Loads: 1, Saves: 1, Deletes: 1})
}

func TestStoreWaitFor(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	waited := make(chan error, 1)
	go func() {
		waited <- s.WaitFor(t.Context(), func(st StoreStats) bool { return st.Saves == 1 })
	}()
	go s.Save(context.Background(), "k", []byte("v"), 0)
	if err := testkit.Await(t, waited, "WaitFor"); err != nil {
		t.Fatalf("WaitFor(a save) = %v", err)
	}
	if _, ok := s.Value("k"); !ok {
		t.Error("once WaitFor saw the save, Value(k) found nothing")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.WaitFor(ctx, func(StoreStats) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor(never) = %v, want %v", err, context.Canceled)
	}
}

func TestStoreOpString(t *testing.T) {
	t.Parallel()
	for op, want := range map[StoreOp]string{StoreLoad: "Load", StoreSave: "Save", StoreDelete: "Delete", StoreLock: "Lock", 9: "StoreOp(9)"} {
		if got := op.String(); got != want {
			t.Errorf("StoreOp(%d).String() = %q, want %q", int(op), got, want)
		}
	}
}

func TestStoreErrorsShort(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	const secret = "jwt-SENTINEL"
	s.Save(t.Context(), "k", []byte(secret), 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s.Fail(StoreLoad, 1, StoreFault{Hang: true})
	_, hung := s.Load(ctx, "k")
	_, missed := s.Load(t.Context(), "none")
	s.Close()
	s.Fail(StoreSave, 1, StoreFault{Stuck: true})
	stuck := s.Save(t.Context(), "k", []byte(secret), 0)
	for _, err := range []error{hung, missed, stuck} {
		if err == nil || !strings.HasPrefix(err.Error(), "econnecttest: ") || strings.Contains(err.Error(), secret) {
			t.Errorf("error %q, want one starting econnecttest: without the value", err)
		}
	}
}
