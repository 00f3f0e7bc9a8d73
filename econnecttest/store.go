package econnecttest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Errors of Store. A miss wraps fs.ErrNotExist, which is what
// econnect.ErrNotStored is.
var (
	errNotStored   = fmt.Errorf("econnecttest: nothing stored under the key: %w", fs.ErrNotExist)
	errStoreClosed = errors.New("econnecttest: store closed")
)

// lockPoll is how often a waiting Lock looks again, besides every unlock:
// often enough to see a lease lapse on a fake clock soon after it moved.
const lockPoll = 2 * time.Millisecond

// Store is an in-memory token store with faults on demand, for tests of
// code that keeps tokens outside the process: econnect's Config.Store, a
// store of your own that wraps another, a farm of processes sharing one.
// It has the methods of econnect.Store and econnect.Locker, and reports a
// missing value with an error wrapping [fs.ErrNotExist], which is what
// econnect.ErrNotStored is. [Store.Fail] makes its next calls fail, hang,
// or return garbage; [Store.Stats] counts its calls exactly and tells
// whether its lock ever failed to exclude.
//
// A Store is safe for concurrent use by multiple goroutines. Its methods
// copy the values they are given and return copies.
type Store struct {
	closed    chan struct{} // closed by Close, releasing hung and stuck calls
	closeOnce sync.Once

	// mu guards the fields below.
	mu      sync.Mutex
	now     func() time.Time
	values  map[string]entry
	leases  map[string][]lease // the holders of each key's lock
	nextID  uint64             // of the next lease
	faults  [storeOps]storeFaults
	stats   StoreStats
	changed signal // broadcast by every change of stats or of a lock
}

// entry is a value of a Store.
type entry struct {
	value   []byte
	expires time.Time // zero: never
}

// lease is a holder's claim on a key's lock.
type lease struct {
	id      uint64
	expires time.Time // zero: never
}

// live reports whether a value or a lease that expires at exp still holds
// at now.
func live(exp, now time.Time) bool {
	return exp.IsZero() || now.Before(exp)
}

// NewStore returns an empty Store on the real clock.
func NewStore() *Store {
	return &Store{
		closed: make(chan struct{}),
		now:    time.Now,
		values: make(map[string]entry),
		leases: make(map[string][]lease),
	}
}

// StoreOp names a method of [Store], for [Store.Fail].
type StoreOp int

// The methods of a Store.
const (
	// StoreLoad is [Store.Load].
	StoreLoad StoreOp = iota
	// StoreSave is [Store.Save].
	StoreSave
	// StoreDelete is [Store.Delete].
	StoreDelete
	// StoreLock is [Store.Lock].
	StoreLock
	storeOps // how many there are
)

// String returns the method's name, such as "Load".
func (op StoreOp) String() string {
	switch op {
	case StoreLoad:
		return "Load"
	case StoreSave:
		return "Save"
	case StoreDelete:
		return "Delete"
	case StoreLock:
		return "Lock"
	}
	return "StoreOp(" + strconv.Itoa(int(op)) + ")"
}

// StoreStats counts the calls a [Store] has seen. Loads, Saves and Deletes
// count the calls received, faulted ones included.
type StoreStats struct {
	// Loads counts calls to Load.
	Loads int
	// Saves counts calls to Save.
	Saves int
	// Deletes counts calls to Delete.
	Deletes int
	// Locks counts the locks Lock granted.
	Locks int
	// LockWaits counts the calls to Lock that found the lock held and had
	// to wait, whether they got it in the end or not.
	LockWaits int
	// MaxHolders is the most holders one key's lock had at once, leases
	// that had lapsed by the store's clock not counted. More than 1 means
	// the lock failed to exclude: only a Lock fault with Drop does that.
	MaxHolders int
	// Faults counts the calls that took a fault queued by Fail.
	Faults int
}

// Load returns a copy of the value saved under key. If there is none, or
// its ttl has passed by the store's clock, the error wraps
// [fs.ErrNotExist].
func (s *Store) Load(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.call(ctx, StoreLoad, func(f StoreFault, now time.Time) error {
		switch {
		case f.Value != nil:
			v = slices.Clone(f.Value)
		case f.Drop:
			return errNotStored
		default:
			e, ok := s.entry(key, now)
			if !ok {
				return errNotStored
			}
			v = slices.Clone(e.value)
		}
		return nil
	})
	return v, err
}

// Save stores a copy of value under key, replacing what was there. The
// value lapses after ttl by the store's clock; a ttl of zero or less never
// lapses.
func (s *Store) Save(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return s.call(ctx, StoreSave, func(f StoreFault, now time.Time) error {
		if f.Drop {
			return nil
		}
		if f.Value != nil {
			value = f.Value
		}
		e := entry{value: append([]byte{}, value...)}
		if ttl > 0 {
			e.expires = now.Add(ttl)
		}
		s.values[key] = e
		return nil
	})
}

// Delete removes the value under key; a missing value is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.call(ctx, StoreDelete, func(f StoreFault, _ time.Time) error {
		if !f.Drop {
			delete(s.values, key)
		}
		return nil
	})
}

// call runs a call of op other than Lock: it counts the call, takes its
// fault, and unless the fault or ctx fails the call first, runs do with
// s.mu held, the fault (zero if none) and the time by the store's clock.
func (s *Store) call(ctx context.Context, op StoreOp, do func(f StoreFault, now time.Time) error) error {
	now := s.clock()
	s.mu.Lock()
	f, faulted := s.take(op)
	err := s.check(ctx, f, faulted)
	if err == nil && !f.blocks() {
		err = do(f, now)
	}
	s.changed.broadcast()
	s.mu.Unlock()
	if faulted && f.blocks() {
		return s.block(ctx, f)
	}
	return err
}

// take counts a call of op and takes its fault, if it has one. s.mu must
// be held.
func (s *Store) take(op StoreOp) (StoreFault, bool) {
	switch op {
	case StoreLoad:
		s.stats.Loads++
	case StoreSave:
		s.stats.Saves++
	case StoreDelete:
		s.stats.Deletes++
	}
	f, ok := s.faults[op].next()
	if ok {
		s.stats.Faults++
	}
	return f, ok
}

// check returns the error of a call that its fault's Err or its ctx fails
// before it starts.
func (s *Store) check(ctx context.Context, f StoreFault, faulted bool) error {
	switch {
	case faulted && f.blocks():
		return nil // block will fail it
	case faulted && f.Err != nil:
		return f.Err
	case ctx.Err() != nil:
		return fmt.Errorf("econnecttest: store call: %w", ctx.Err())
	}
	return nil
}

// entry returns the live value under key, forgetting it if its ttl has
// passed. s.mu must be held.
func (s *Store) entry(key string, now time.Time) (entry, bool) {
	e, ok := s.values[key]
	if ok && !live(e.expires, now) {
		delete(s.values, key)
		ok = false
	}
	return e, ok
}

// clock returns the time by the store's clock, read with s.mu not held.
func (s *Store) clock() time.Time {
	s.mu.Lock()
	now := s.now
	s.mu.Unlock()
	return now()
}

// SetClock sets the clock by which values' ttl and locks' leases lapse;
// nil restores the default, [time.Now]. Tests pass a fake clock and move
// it instead of waiting.
func (s *Store) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
	s.changed.broadcast() // waiting Locks look again
}

// Stats returns the counts of the calls the store has seen so far.
func (s *Store) Stats() StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// WaitFor blocks until cond holds for the store's [StoreStats], or ctx
// ends; then it returns an error wrapping ctx.Err(). It checks cond at once
// and after every change of a counter, with no lock of the store held.
// Tests use it to wait for a save made in the background, or for a Lock to
// be waiting (LockWaits), instead of polling Stats.
func (s *Store) WaitFor(ctx context.Context, cond func(StoreStats) bool) error {
	return waitFor(ctx, &s.mu, &s.changed, func() StoreStats { return s.stats }, cond)
}

// Value returns a copy of what is stored under key, if its ttl has not
// passed. Unlike Load it meets no fault and counts in no Stats: it is for
// the test to look.
func (s *Store) Value(key string) ([]byte, bool) {
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entry(key, now)
	return slices.Clone(e.value), ok
}

// Put stores a copy of value under key, with no ttl: a value planted by the
// test, such as another process's entry or garbage. It meets no fault and
// counts in no Stats.
func (s *Store) Put(key string, value []byte) {
	e := entry{value: append([]byte{}, value...)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[key] = e
}

// Keys returns the keys that hold a value whose ttl has not passed, in
// order.
func (s *Store) Keys() []string {
	now := s.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.values))
	for k := range s.values {
		if _, ok := s.entry(k, now); ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
