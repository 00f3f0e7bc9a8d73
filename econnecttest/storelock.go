package econnecttest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Lock blocks until it holds the lock on key, or ctx is done; then it
// fails with an error wrapping ctx.Err(). The lock is free once each of its
// holders has unlocked it or let its lease lapse: ttl after it was granted,
// by the store's clock; a ttl of zero or less never lapses. A waiting Lock
// looks again on every unlock and every few milliseconds, so that it sees
// a lease lapse on a fake clock soon after the clock moved. Calling unlock
// again, or once the lease has lapsed, does nothing.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error) {
	f, err := s.lockFault(ctx)
	if err != nil {
		return nil, err
	}
	var poll <-chan time.Time // made when the call first has to wait
	for {
		now := s.clock()
		s.mu.Lock()
		if f.Drop || len(s.holders(key, now)) == 0 {
			unlock := s.grant(key, now, ttl)
			s.mu.Unlock()
			return unlock, nil
		}
		if poll == nil {
			s.stats.LockWaits++
			s.changed.broadcast()
			t := time.NewTicker(lockPoll)
			defer t.Stop()
			poll = t.C
		}
		changed := s.changed.wait()
		s.mu.Unlock()
		select {
		case <-changed:
		case <-poll:
		case <-ctx.Done():
			return nil, fmt.Errorf("econnecttest: lock not acquired: %w", ctx.Err())
		}
	}
}

// lockFault counts a call to Lock and takes its fault, and returns the
// error that fails the call before it starts, if any.
func (s *Store) lockFault(ctx context.Context) (StoreFault, error) {
	s.mu.Lock()
	f, faulted := s.take(StoreLock)
	err := s.check(ctx, f, faulted)
	s.changed.broadcast()
	s.mu.Unlock()
	if faulted && f.blocks() {
		return f, s.block(ctx, f)
	}
	return f, err
}

// holders returns the leases on key's lock that hold at now, forgetting
// the others. s.mu must be held.
func (s *Store) holders(key string, now time.Time) []lease {
	ls := slices.DeleteFunc(s.leases[key], func(l lease) bool { return !live(l.expires, now) })
	if len(ls) == 0 {
		delete(s.leases, key)
	} else {
		s.leases[key] = ls
	}
	return ls
}

// grant adds a holder to key's lock and returns its unlock. s.mu must be
// held.
func (s *Store) grant(key string, now time.Time, ttl time.Duration) func() {
	l := lease{id: s.nextID}
	s.nextID++
	if ttl > 0 {
		l.expires = now.Add(ttl)
	}
	ls := append(s.holders(key, now), l)
	s.leases[key] = ls
	s.stats.Locks++
	s.stats.MaxHolders = max(s.stats.MaxHolders, len(ls))
	s.changed.broadcast()
	var once sync.Once
	return func() { once.Do(func() { s.release(key, l.id) }) }
}

// release removes the lease id from key's lock, if it is still there.
func (s *Store) release(key string, id uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls := slices.DeleteFunc(s.leases[key], func(l lease) bool { return l.id == id })
	if len(ls) == 0 {
		delete(s.leases, key)
	} else {
		s.leases[key] = ls
	}
	s.changed.broadcast()
}
