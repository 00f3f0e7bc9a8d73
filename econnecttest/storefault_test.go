package econnecttest

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"testing/synctest"
)

var errInjected = errors.New("injected")

// storeCall calls op on s for key "k", with the value "new".
func storeCall(ctx context.Context, s *Store, op StoreOp) ([]byte, error) {
	switch op {
	case StoreLoad:
		return s.Load(ctx, "k")
	case StoreSave:
		return nil, s.Save(ctx, "k", []byte("new"), 0)
	case StoreDelete:
		return nil, s.Delete(ctx, "k")
	}
	unlock, err := s.Lock(ctx, "k", 0)
	if err == nil {
		unlock()
	}
	return nil, err
}

func TestStoreFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		op        StoreOp
		fault     StoreFault
		wantErr   error  // of the call
		wantLoad  []byte // returned by Load
		wantValue []byte // stored under k afterwards; nil: nothing
	}{
		{"Load Err", StoreLoad, StoreFault{Err: errInjected}, errInjected, nil, []byte("old")},
		{"Load Value", StoreLoad, StoreFault{Value: []byte("garbage")}, nil, []byte("garbage"), []byte("old")},
		{"Load empty Value", StoreLoad, StoreFault{Value: []byte{}}, nil, []byte{}, []byte("old")},
		{"Load Drop", StoreLoad, StoreFault{Drop: true}, fs.ErrNotExist, nil, []byte("old")},
		{"Load Err before Value", StoreLoad, StoreFault{Err: errInjected, Value: []byte("x")}, errInjected, nil, []byte("old")},
		{"Save Err", StoreSave, StoreFault{Err: errInjected}, errInjected, nil, []byte("old")},
		{"Save Value", StoreSave, StoreFault{Value: []byte("corrupt")}, nil, nil, []byte("corrupt")},
		{"Save Drop", StoreSave, StoreFault{Drop: true}, nil, nil, []byte("old")},
		{"Delete Err", StoreDelete, StoreFault{Err: errInjected}, errInjected, nil, []byte("old")},
		{"Delete Drop", StoreDelete, StoreFault{Drop: true}, nil, nil, []byte("old")},
		{"Delete Value ignored", StoreDelete, StoreFault{Value: []byte("x")}, nil, nil, nil},
		{"Lock Err", StoreLock, StoreFault{Err: errInjected}, errInjected, nil, []byte("old")},
		{"no field set", StoreSave, StoreFault{}, nil, nil, []byte("new")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			s.Put("k", []byte("old"))
			s.Fail(tt.op, 1, tt.fault)
			got, err := storeCall(t.Context(), s, tt.op)
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Errorf("%v() error = %v, want %v", tt.op, err, tt.wantErr)
			}
			if string(got) != string(tt.wantLoad) || (got == nil) != (tt.wantLoad == nil) {
				t.Errorf("%v() = %q, want %q", tt.op, got, tt.wantLoad)
			}
			if v, _ := s.Value("k"); string(v) != string(tt.wantValue) {
				t.Errorf("Value(k) = %q, want %q", v, tt.wantValue)
			}
			if st := s.Stats(); st.Faults != 1 {
				t.Errorf("Stats().Faults = %d, want 1", st.Faults)
			}
		})
	}
}

func TestStoreFailQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*Store)
		want  []bool // successive Loads fail
	}{
		{"two", func(s *Store) { s.Fail(StoreLoad, 2, StoreFault{Err: errInjected}) }, []bool{true, true, false}},
		{"replaced", func(s *Store) {
			s.Fail(StoreLoad, 3, StoreFault{Err: errInjected})
			s.Fail(StoreLoad, 1, StoreFault{Err: errInjected})
		}, []bool{true, false}},
		{"cleared", func(s *Store) {
			s.Fail(StoreLoad, 2, StoreFault{Err: errInjected})
			s.Fail(StoreLoad, 0, StoreFault{Err: errInjected})
		}, []bool{false}},
		{"other ops apart", func(s *Store) { s.Fail(StoreSave, 2, StoreFault{Err: errInjected}) }, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			s.Put("k", []byte("v"))
			tt.setup(s)
			faults := 0
			for i, want := range tt.want {
				_, err := s.Load(t.Context(), "k")
				if got := errors.Is(err, errInjected); got != want {
					t.Errorf("Load %d failed = %v (%v), want %v", i, got, err, want)
				}
				if want {
					faults++
				}
			}
			checkStoreStats(t, s, StoreStats{Loads: len(tt.want), Faults: faults})
		})
	}
}

func TestStoreFailPanics(t *testing.T) {
	t.Parallel()
	for _, op := range []StoreOp{-1, storeOps} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Fail(%v) did not panic", op)
				}
			}()
			NewStore().Fail(op, 1, StoreFault{})
		}()
	}
}

// TestStoreHang: a Hang fault holds the call until its ctx ends, for each
// method; Close ends it too.
func TestStoreHang(t *testing.T) {
	t.Parallel()
	for op := range storeOps {
		for _, end := range []string{"ctx", "Close"} {
			t.Run(op.String()+" until "+end, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := NewStore()
					defer s.Close()
					s.Put("k", []byte("old"))
					s.Fail(op, 1, StoreFault{Hang: true, Err: errInjected})
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					done := goStoreCall(ctx, s, op)
					synctest.Wait()
					if returned(done) {
						t.Fatalf("%v returned before its ctx ended", op)
					}
					want := context.Canceled
					if end == "ctx" {
						cancel()
					} else {
						s.Close()
						want = nil // errStoreClosed
					}
					err := <-done
					if want != nil && !errors.Is(err, want) || want == nil && !errors.Is(err, errStoreClosed) {
						t.Errorf("%v() = %v, want %v", op, err, map[bool]error{true: want, false: errStoreClosed}[want != nil])
					}
					if v, _ := s.Value("k"); string(v) != "old" {
						t.Errorf("Value(k) = %q after a hung %v, want old", v, op)
					}
				})
			})
		}
	}
}

// TestStoreStuck: a Stuck fault ignores its ctx; only Close ends it.
func TestStoreStuck(t *testing.T) {
	t.Parallel()
	for op := range storeOps {
		t.Run(op.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := NewStore()
				defer s.Close()
				s.Fail(op, 1, StoreFault{Stuck: true, Hang: true})
				ctx, cancel := context.WithCancel(t.Context())
				cancel() // a ctx that has ended already
				done := goStoreCall(ctx, s, op)
				synctest.Wait()
				if returned(done) {
					t.Fatalf("%v returned once its ctx ended, want it stuck", op)
				}
				s.Close()
				if err := <-done; !errors.Is(err, errStoreClosed) {
					t.Errorf("%v() after Close = %v, want %v", op, err, errStoreClosed)
				}
				s.Fail(op, 1, StoreFault{Stuck: true})
				if _, err := storeCall(ctx, s, op); !errors.Is(err, errStoreClosed) {
					t.Errorf("%v() stuck after Close = %v, want %v at once", op, err, errStoreClosed)
				}
			})
		})
	}
}

// goStoreCall runs storeCall on a goroutine and delivers its error.
func goStoreCall(ctx context.Context, s *Store, op StoreOp) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := storeCall(ctx, s, op)
		ch <- err
	}()
	return ch
}

// returned reports whether ch has delivered. What it delivered is lost.
func returned(ch <-chan error) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
