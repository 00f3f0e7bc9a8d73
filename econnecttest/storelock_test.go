package econnecttest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/testkit"
)

// lockResult is the outcome of a Lock call made by goLock.
type lockResult struct {
	unlock func()
	err    error
}

// goLock calls s.Lock on a goroutine and delivers the outcome.
func goLock(ctx context.Context, s *Store, key string, ttl time.Duration) <-chan lockResult {
	ch := make(chan lockResult, 1)
	go func() {
		unlock, err := s.Lock(ctx, key, ttl)
		ch <- lockResult{unlock, err}
	}()
	return ch
}

// mustLock takes the lock on key.
func mustLock(t *testing.T, s *Store, key string, ttl time.Duration) func() {
	t.Helper()
	unlock, err := s.Lock(t.Context(), key, ttl)
	if err != nil {
		t.Fatalf("Lock(%q) = %v", key, err)
	}
	return unlock
}

// awaitLockWaits waits until n Lock calls have had to wait.
func awaitLockWaits(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testkit.Guard)
	defer cancel()
	if err := s.WaitFor(ctx, func(st StoreStats) bool { return st.LockWaits >= n }); err != nil {
		t.Fatalf("waiting for %d Lock calls to wait: %v", n, err)
	}
}

// TestStoreLockReleased: a waiting Lock gets the lock once its holder lets
// it go, by unlock or by its lease lapsing on the store's clock.
func TestStoreLockReleased(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ttl     time.Duration
		release func(unlock func(), clock *testkit.Clock)
	}{
		{"unlock", time.Minute, func(unlock func(), _ *testkit.Clock) { unlock() }},
		{"unlock, no lease", 0, func(unlock func(), _ *testkit.Clock) { unlock() }},
		{"lease lapses", time.Minute, func(_ func(), c *testkit.Clock) { c.Advance(time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newStore(t)
			unlock := mustLock(t, s, "k", tt.ttl)
			waiting := goLock(t.Context(), s, "k", time.Minute)
			awaitLockWaits(t, s, 1)
			tt.release(unlock, clock)
			r := testkit.Await(t, waiting, "the waiting Lock")
			if r.err != nil {
				t.Fatalf("waiting Lock() = %v, want the lock", r.err)
			}
			unlock() // late, or again: the new holder keeps the lock
			third := goLock(t.Context(), s, "k", 0)
			awaitLockWaits(t, s, 2)
			r.unlock()
			if r := testkit.Await(t, third, "the third Lock"); r.err != nil {
				t.Errorf("third Lock() = %v, want the lock", r.err)
			}
			checkStoreStats(t, s, StoreStats{Locks: 3, LockWaits: 2, MaxHolders: 1})
		})
	}
}

func TestStoreLockLeaseBoundary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		advance time.Duration
		wantNew bool // a new Lock gets the lock at once
	}{
		{"1ns before", time.Minute - 1, false},
		{"at the ttl", time.Minute, true},
		{"1ns after", time.Minute + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, clock := newStore(t)
			mustLock(t, s, "k", time.Minute)
			clock.Advance(tt.advance)
			ctx, cancel := context.WithCancel(t.Context())
			waiting := goLock(ctx, s, "k", 0)
			if !tt.wantNew {
				awaitLockWaits(t, s, 1)
				cancel()
			}
			r := testkit.Await(t, waiting, "Lock")
			cancel()
			if got := r.err == nil; got != tt.wantNew {
				t.Errorf("Lock() %v past the lease: got it = %v (%v), want %v", tt.advance, got, r.err, tt.wantNew)
			}
		})
	}
}

func TestStoreLockEndsWithContext(t *testing.T) {
	t.Parallel()
	s, clock := newStore(t)
	mustLock(t, s, "k", 0) // no lease: held for ever
	ctx, cancel := context.WithCancel(t.Context())
	waiting := goLock(ctx, s, "k", time.Minute)
	awaitLockWaits(t, s, 1)
	clock.Advance(100 * 365 * 24 * time.Hour)
	cancel()
	if r := testkit.Await(t, waiting, "Lock"); !errors.Is(r.err, context.Canceled) || r.unlock != nil {
		t.Errorf("Lock() = %v, %v, want no unlock and %v", r.unlock != nil, r.err, context.Canceled)
	}
	checkStoreStats(t, s, StoreStats{Locks: 1, LockWaits: 1, MaxHolders: 1})
}

func TestStoreLockKeysApart(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	mustLock(t, s, "a", 0)
	mustLock(t, s, "b", 0)
	checkStoreStats(t, s, StoreStats{Locks: 2, MaxHolders: 1})
}

func TestStoreLockDropFailsToExclude(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	unlock := mustLock(t, s, "k", 0)
	s.Fail(StoreLock, 1, StoreFault{Drop: true})
	second := mustLock(t, s, "k", 0) // granted at once, beside the holder
	checkStoreStats(t, s, StoreStats{Locks: 2, MaxHolders: 2, Faults: 1})
	unlock()
	third := goLock(t.Context(), s, "k", 0)
	awaitLockWaits(t, s, 1) // the second holder still has it
	second()
	if r := testkit.Await(t, third, "Lock"); r.err != nil {
		t.Errorf("Lock() = %v once both holders unlocked, want the lock", r.err)
	}
}

// TestStoreLockExcludes: of 32 concurrent callers, one at a time holds the
// lock; the race detector watches the counter they share.
func TestStoreLockExcludes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	const n = 32
	inside := 0
	testkit.Parallel(n, func(int) {
		unlock, err := s.Lock(context.Background(), "k", time.Minute)
		if err != nil {
			t.Errorf("Lock() = %v", err)
			return
		}
		inside++
		unlock()
	})
	if inside != n {
		t.Errorf("%d callers held the lock, want %d", inside, n)
	}
	if st := s.Stats(); st.Locks != n || st.MaxHolders != 1 || st.LockWaits > n-1 {
		t.Errorf("Stats() = %+v, want %d locks, at most %d waits, 1 holder at most", st, n, n-1)
	}
}
