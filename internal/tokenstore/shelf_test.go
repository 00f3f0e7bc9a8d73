package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const key = "econnect-v1-test"

// warnings collects what a shelf reports.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) warn(msg string) { w.mu.Lock(); w.msgs = append(w.msgs, msg); w.mu.Unlock() }

func (w *warnings) count() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.msgs) }

func newShelf(t *testing.T) (*Shelf, *econnecttest.Store, *warnings) {
	t.Helper()
	st := econnecttest.NewStore()
	t.Cleanup(st.Close)
	w := &warnings{}
	return NewShelf(st, key, func() time.Time { return now }, w.warn), st, w
}

func entry(exp int64) Entry {
	return Entry{Token: jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, exp-3600, exp)), Expiry: now.Add(time.Hour),
		Lifetime: time.Hour, SavedAt: now}
}

func put(t *testing.T, st *econnecttest.Store, e Entry) {
	t.Helper()
	b, err := Encode(key, e)
	if err != nil {
		t.Fatal(err)
	}
	st.Put(key, b)
}

// TestShelfLoad: a valid entry is loaded; nothing stored, garbage, and a
// failing store are nothing to use; failures and garbage warn once per
// streak, which a load that works ends.
func TestShelfLoad(t *testing.T) {
	sh, st, w := newShelf(t)
	if e, err := sh.Load(t.Context()); e.Token != "" || err != nil || w.count() != 0 {
		t.Fatalf("Load() of an empty store = %q, %v, %d warnings; want nothing and no warning", e.Token, err, w.count())
	}
	st.Put(key, []byte("garbage"))
	for range 3 {
		if e, err := sh.Load(t.Context()); e.Token != "" || err != nil {
			t.Fatalf("Load() of garbage = %q, %v; want nothing and no error", e.Token, err)
		}
	}
	st.Fail(econnecttest.StoreLoad, 3, econnecttest.StoreFault{Err: errors.New("connection refused")})
	for range 3 {
		sh.Load(t.Context())
	}
	if n := w.count(); n != 1 {
		t.Errorf("%d warnings for one streak of garbage and failures, want 1: %q", n, w.msgs)
	}
	want := entry(now.Add(time.Hour).Unix())
	put(t, st, want)
	if got, err := sh.Load(t.Context()); err != nil || got.Token != want.Token {
		t.Fatalf("Load() = %v, %v; want the entry", got.Token, err)
	}
	st.Fail(econnecttest.StoreLoad, 1, econnecttest.StoreFault{Err: errors.New("down again")})
	sh.Load(t.Context())
	if n := w.count(); n != 2 {
		t.Errorf("%d warnings after a load that worked and a new failure, want 2", n)
	}
}

// TestShelfBounded: a store that ignores its deadline, or hangs until it,
// costs a call about a second, not more; a Save of a hung store keeps
// nothing waiting longer either.
func TestShelfBounded(t *testing.T) {
	for _, f := range []econnecttest.StoreFault{{Stuck: true}, {Hang: true}} {
		t.Run(fmt.Sprintf("stuck %t", f.Stuck), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sh, st, w := newShelf(t)
				defer st.Close()
				st.Fail(econnecttest.StoreLoad, 1, f)
				st.Fail(econnecttest.StoreSave, 1, f)
				start := time.Now()
				if _, err := sh.Load(context.Background()); err == nil {
					t.Error("Load() of a hung store: error = nil")
				}
				sh.Save(context.Background(), entry(now.Add(time.Hour).Unix()), time.Hour)
				if d := time.Since(start); d > 2*(CallTimeout+grace) {
					t.Errorf("a hung Load and Save took %v, want at most %v", d, 2*(CallTimeout+grace))
				}
				if w.count() != 1 {
					t.Errorf("%d warnings, want 1 for the streak", w.count())
				}
			})
		})
	}
}

// TestShelfSaveWarningHoldsNoToken: a store whose error quotes the value it
// was given is reported without the token.
func TestShelfSaveWarningHoldsNoToken(t *testing.T) {
	sh, st, w := newShelf(t)
	e := entry(now.Add(time.Hour).Unix())
	st.Fail(econnecttest.StoreSave, 1, econnecttest.StoreFault{Err: errors.New("value too large: " + e.Token)})
	sh.Save(t.Context(), e, time.Hour)
	if w.count() != 1 || strings.Contains(w.msgs[0], e.Token) {
		t.Errorf("warnings = %q, want one without the token", w.msgs)
	}
}

// TestShelfForget: a refused token is deleted only while the store still
// holds it; a newer one a peer saved stays.
func TestShelfForget(t *testing.T) {
	sh, st, _ := newShelf(t)
	refused, newer := entry(now.Add(time.Hour).Unix()), entry(now.Add(2*time.Hour).Unix())
	put(t, st, newer)
	sh.Forget(t.Context(), refused.Token)
	if _, ok := st.Value(key); !ok {
		t.Error("Forget() deleted a peer's newer token")
	}
	put(t, st, refused)
	sh.Forget(t.Context(), refused.Token)
	if _, ok := st.Value(key); ok {
		t.Error("Forget() kept the refused token")
	}
}

// TestShelfLease: the lease is taken when free; while a peer holds it, the
// waiting flight adopts the peer's token as soon as it is saved; a failing
// or hung Lock, or a failing Load, means going on unlocked.
func TestShelfLease(t *testing.T) {
	adoptAny := func(Entry) bool { return true }
	t.Run("free", func(t *testing.T) {
		sh, st, _ := newShelf(t)
		unlock, adopted := sh.Lease(t.Context(), time.Minute, adoptAny)
		if adopted || st.Stats().Locks != 1 {
			t.Fatalf("Lease() adopted %t with %d locks, want the lock", adopted, st.Stats().Locks)
		}
		unlock()
	})
	t.Run("a peer's token", func(t *testing.T) {
		sh, st, _ := newShelf(t)
		peer, err := st.Lock(t.Context(), key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan bool, 1)
		go func() {
			unlock, adopted := sh.Lease(context.Background(), time.Minute, adoptAny)
			unlock()
			done <- adopted
		}()
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
		defer cancel()
		st.WaitFor(ctx, func(s econnecttest.StoreStats) bool { return s.Loads > 0 }) // the flight is waiting
		put(t, st, entry(now.Add(time.Hour).Unix()))
		if !testkit.Await(t, done, "Lease() while a peer saves") {
			t.Error("Lease() did not adopt the token the peer saved")
		}
		peer()
		if st.Stats().MaxHolders != 1 {
			t.Errorf("MaxHolders = %d, want 1", st.Stats().MaxHolders)
		}
	})
	for name, f := range map[string]econnecttest.StoreFault{
		"Lock fails":    {Err: errors.New("down")},
		"Lock is stuck": {Stuck: true},
	} {
		t.Run(name, func(t *testing.T) {
			sh, st, w := newShelf(t)
			st.Fail(econnecttest.StoreLock, 1, f)
			unlock, adopted := sh.Lease(t.Context(), time.Minute, adoptAny)
			unlock()
			if adopted || w.count() != 1 {
				t.Errorf("Lease() adopted %t with %d warnings, want unlocked and 1 warning", adopted, w.count())
			}
		})
	}
	t.Run("Load fails while waiting", func(t *testing.T) {
		sh, st, _ := newShelf(t)
		peer, _ := st.Lock(t.Context(), key, time.Minute)
		defer peer()
		st.Fail(econnecttest.StoreLoad, 1, econnecttest.StoreFault{Err: errors.New("down")})
		unlock, adopted := sh.Lease(t.Context(), time.Minute, adoptAny)
		unlock()
		if adopted {
			t.Error("Lease() adopted after a failed Load")
		}
	})
}
