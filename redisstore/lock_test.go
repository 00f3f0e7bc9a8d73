package redisstore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockWithin calls Lock with a context that ends after d.
func lockWithin(t *testing.T, s *Store, key string, ttl, d time.Duration) (func(), error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	return s.Lock(ctx, key, ttl)
}

// mustLock calls Lock, failing the test if it does not get the lease
// within 10 s.
func mustLock(t *testing.T, s *Store, key string, ttl time.Duration) func() {
	t.Helper()
	unlock, err := lockWithin(t, s, key, ttl, 10*time.Second)
	if err != nil {
		t.Fatalf("Lock() error = %v", err)
	}
	return unlock
}

func TestLockExcludesAnotherHolderUntilUnlock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		unlock := mustLock(t, b.store, "k", time.Minute)
		_, err := lockWithin(t, b.store, "k", time.Minute, 200*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("second Lock() while held error = %v, want DeadlineExceeded", err)
		}
		if _, err := lockWithin(t, b.store, "other", time.Minute, 200*time.Millisecond); err != nil {
			t.Errorf("Lock() of another key error = %v, want nil", err)
		}
		unlock()
		mustLock(t, b.store, "k", time.Minute)()
	})
}

func TestLockSetsTheLeaseTTL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		unlock := mustLock(t, b.store, "k", 30*time.Second)
		defer unlock()
		checkPTTL(t, b.client, b.store.leaseKey("k"), 30*time.Second)
	})
}

func TestLockRefusesANonPositiveTTL(t *testing.T) {
	b := newMiniredis(t)
	for _, ttl := range []time.Duration{0, -time.Second} {
		if _, err := b.store.Lock(t.Context(), "k", ttl); err == nil {
			t.Errorf("Lock(ttl %v) error = nil, want a refusal", ttl)
		}
	}
}

func TestALeaseLapsesAfterItsTTL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		mustLock(t, b.store, "k", 100*time.Millisecond) // never unlocked
		b.lapse(100 * time.Millisecond)
		mustLock(t, b.store, "k", time.Minute)()
	})
}

func TestALapsedHolderDoesNotReleaseItsSuccessor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := t.Context()
		unlockOld := mustLock(t, b.store, "k", 100*time.Millisecond)
		b.lapse(100 * time.Millisecond)
		unlockNew := mustLock(t, b.store, "k", time.Minute)
		unlockOld()
		if n, err := b.client.Exists(ctx, b.store.leaseKey("k")).Result(); err != nil || n != 1 {
			t.Fatalf("Exists(lease) after the old holder's unlock = %d, %v, want 1, nil", n, err)
		}
		unlockNew()
		if n, err := b.client.Exists(ctx, b.store.leaseKey("k")).Result(); err != nil || n != 0 {
			t.Errorf("Exists(lease) after the new holder's unlock = %d, %v, want 0, nil", n, err)
		}
	})
}

func TestUnlockTwiceIsHarmless(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		unlock := mustLock(t, b.store, "k", time.Minute)
		unlock()
		unlock()
		unlockNext := mustLock(t, b.store, "k", time.Minute)
		defer unlockNext()
		unlock() // a third time, while another holds the lease
		_, err := lockWithin(t, b.store, "k", time.Minute, 200*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock() after an old unlock ran again error = %v, want DeadlineExceeded: the lease is held", err)
		}
	})
}

func TestLockAfterItsContextIsDoneFails(t *testing.T) {
	b := newMiniredis(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.store.Lock(ctx, "k", time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock() with a cancelled context error = %v, want Canceled", err)
	}
}

func TestOneHolderAtATime(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		const workers, rounds = 4, 2
		var holders, most atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range rounds {
					unlock, err := lockWithin(t, b.store, "k", time.Minute, 10*time.Second)
					if err != nil {
						t.Errorf("Lock() error = %v", err)
						return
					}
					n := holders.Add(1)
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					holders.Add(-1)
					unlock()
				}
			})
		}
		wg.Wait()
		if got := most.Load(); got != 1 {
			t.Errorf("most holders at once = %d, want 1", got)
		}
	})
}
