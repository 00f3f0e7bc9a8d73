package econnecttest

import (
	"context"
	"fmt"
	"slices"
)

// StoreFault is an injected failure of a [Store] call, queued by
// [Store.Fail]. Its fields are looked at in this order: Stuck, Hang, Err,
// then Value and Drop. A call that fails has no effect.
type StoreFault struct {
	// Stuck blocks the call, whatever its ctx, until [Store.Close]; then
	// it fails. This is a store that breaks its contract, which requires
	// it to return by its ctx's deadline: code that must not wait for a
	// store runs its calls where it can leave them behind.
	Stuck bool
	// Hang blocks the call until its ctx is done, then fails it with an
	// error wrapping ctx.Err(), as a store that does not answer but keeps
	// its contract. Close also ends it.
	Hang bool
	// Err fails the call with Err.
	Err error
	// Value, if not nil, is what Load returns, with no error: garbage, a
	// truncated entry, another key's entry. On Save it is what is stored
	// instead of the value given, as a corrupted write. Delete and Lock
	// ignore it.
	Value []byte
	// Drop makes the call report success without doing its work: Load
	// reports a miss, Save and Delete change nothing (a lost write), and
	// Lock grants the lock even though another holds it, which
	// [StoreStats].MaxHolders then shows.
	Drop bool
}

// blocks reports whether f holds its call.
func (f StoreFault) blocks() bool {
	return f.Stuck || f.Hang
}

// storeFaults is the fault of the next n calls of an op.
type storeFaults struct {
	f StoreFault
	n int
}

// next takes a fault, if any is left.
func (q *storeFaults) next() (StoreFault, bool) {
	if q.n <= 0 {
		return StoreFault{}, false
	}
	q.n--
	return q.f, true
}

// Fail makes the next n calls of op meet f. It replaces what an earlier
// call left queued for op; n <= 0 clears the queue. It panics if op is not
// one of the StoreOp constants.
func (s *Store) Fail(op StoreOp, n int, f StoreFault) {
	if op < 0 || op >= storeOps {
		panic(fmt.Sprintf("econnecttest: Store.Fail(%v): no such method", op))
	}
	f.Value = slices.Clone(f.Value) // the caller may change it
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = storeFaults{f: f, n: n}
}

// block holds a call as f says, and returns its error.
func (s *Store) block(ctx context.Context, f StoreFault) error {
	if f.Stuck {
		<-s.closed
		return errStoreClosed
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("econnecttest: store call hung: %w", ctx.Err())
	case <-s.closed:
		return errStoreClosed
	}
}

// Close releases the calls that a Stuck or a Hang fault holds: they fail.
// Those faults fail at once from then on; the store otherwise keeps
// working, so that the order of a test's cleanups does not matter. Close
// may be called more than once.
func (s *Store) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}
