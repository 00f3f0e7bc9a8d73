package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/econnect-oss/econnect/internal/secret"
)

// Store and Locker are econnect.Store and econnect.Locker: the same method
// sets, declared here so that this package need not import the one that
// uses it.
type Store interface {
	Load(ctx context.Context, key string) ([]byte, error)
	Save(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Delete(ctx context.Context, key string) error
}

// Locker is econnect.Locker.
type Locker interface {
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error)
}

const (
	// CallTimeout bounds every store call: a store never costs a request
	// or a token more than about a second.
	CallTimeout = time.Second
	// LockAttempt is how long one attempt to take a held lock lasts before
	// the waiting flight loads again, to adopt a peer's token as soon as it
	// is saved.
	LockAttempt = 100 * time.Millisecond
	// grace is how long past its deadline a store call may take to return
	// before it counts as hung: a Lock that gives up at its deadline was
	// busy, one that does not return is broken.
	grace = 50 * time.Millisecond
)

// A Shelf is one token source's place in a Store: its key, and the calls
// the source makes there. Each call is bounded by CallTimeout, whatever the
// store does with its context, and a failure is reported to Warn once per
// failure streak: a streak ends only with a Load or Save that works. It is
// safe for concurrent use by multiple goroutines.
type Shelf struct {
	store  Store
	locker Locker // nil: the store has no lease
	key    string
	now    func() time.Time
	// warn reports the first failure of a streak; its text holds no
	// token. It is called with no lock held.
	warn    func(msg string)
	failing atomic.Bool
}

// NewShelf returns the shelf of key in s, reading time from now and
// reporting failures to warn.
func NewShelf(s Store, key string, now func() time.Time, warn func(msg string)) *Shelf {
	sh := &Shelf{store: s, key: key, now: now, warn: warn}
	sh.locker, _ = s.(Locker)
	return sh
}

// Load returns the entry stored under the shelf's key: one with no Token
// when there is none to use (nothing stored, or a value that is not a
// valid entry for this key, which the next Save overwrites), and an error
// when the store failed or did not answer in time.
func (sh *Shelf) Load(ctx context.Context) (Entry, error) {
	b, err := bounded(ctx, CallTimeout, func(ctx context.Context) ([]byte, error) { return sh.store.Load(ctx, sh.key) })
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sh.worked()
		return Entry{}, nil
	case err != nil:
		sh.failed("loading a token", err, "")
		return Entry{}, err
	}
	e, err := Decode(sh.key, b, sh.now())
	if err != nil {
		sh.failed("ignoring what it holds", err, "")
		return Entry{}, nil // garbage is nothing stored: the next save replaces it
	}
	sh.worked()
	return e, nil
}

// Save stores e under the shelf's key for ttl (zero: no expiry).
func (sh *Shelf) Save(ctx context.Context, e Entry, ttl time.Duration) {
	b, err := Encode(sh.key, e)
	if err == nil {
		_, err = bounded(ctx, CallTimeout, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, sh.store.Save(ctx, sh.key, b, ttl)
		})
	}
	if err != nil {
		sh.failed("saving a token", err, e.Token)
		return
	}
	sh.worked()
}

// Forget deletes the value under the shelf's key if it still holds the
// token jwt: a token the server refused, which a peer could otherwise adopt.
// Another token a peer saved meanwhile stays.
func (sh *Shelf) Forget(ctx context.Context, jwt string) {
	e, err := sh.Load(ctx)
	if err != nil || e.Token != jwt {
		return
	}
	_, err = bounded(ctx, CallTimeout, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, sh.store.Delete(ctx, sh.key)
	})
	if err != nil {
		sh.failed("deleting a refused token", err, jwt)
	}
}

// worked ends a failure streak.
func (sh *Shelf) worked() { sh.failing.Store(false) }

// failed reports a failure if it starts a streak. The store's own error
// text is kept, with the token it was given removed.
func (sh *Shelf) failed(what string, err error, jwt string) {
	if !sh.failing.CompareAndSwap(false, true) || sh.warn == nil {
		return
	}
	msg := string(secret.Redact([]byte(err.Error()), 512, jwt))
	sh.warn(fmt.Sprintf("econnect: Config.Store: %s: %s; going on without it", what, msg))
}

// bounded runs call with a context that ends after d (or with ctx), and
// returns by then plus a little, whether or not call does: a store that
// ignores its context costs its caller no more than d. A call still
// running then goes on alone; what it returns is dropped.
func bounded[T any](ctx context.Context, d time.Duration, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer cancel()
		v, err := call(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-t.C:
		var zero T
		return zero, fmt.Errorf("the store did not answer within %v: %w", d, errHung)
	}
}

// errHung is a store call that did not return by its deadline: slow, or
// stuck.
var errHung = errors.New("no answer by the call's deadline")

// Lease takes the store's lock on the shelf's key for ttl, for a flight
// about to call the server, and returns the unlock to call once the new
// token is saved. While a peer holds the lock it alternates short attempts
// with loads, and gives adopt each entry loaded; once it holds the lock it
// loads once more. As soon as adopt accepts an entry, Lease returns without
// the lock and with adopted true. It also gives up the lock (returning a
// no-op unlock) at the lease bound ttl, when Lock fails, or when a Load
// fails: the lock saves logins, it is never worth a request. A store that
// is not a Locker has no lock: Lease returns at once.
func (sh *Shelf) Lease(ctx context.Context, ttl time.Duration, adopt func(Entry) bool) (unlock func(), adopted bool) {
	if sh.locker == nil {
		return noop, false
	}
	end := time.Now().Add(ttl)
	for ctx.Err() == nil && time.Now().Before(end) {
		unlock, err := sh.tryLock(ctx, ttl)
		if err != nil && !errors.Is(err, errBusy) {
			sh.failed("taking the lock", err, "")
			return noop, false
		}
		e, loadErr := sh.Load(ctx)
		if loadErr == nil && e.Token != "" && adopt(e) {
			unlock()
			return noop, true
		}
		if err == nil {
			return unlock, false // held: the flight calls the server
		}
		if loadErr != nil {
			return noop, false
		}
	}
	return noop, false
}

// errBusy is a Lock that did not get the lock within its attempt: a peer
// holds it.
var errBusy = errors.New("the lock is held")

// tryLock makes one attempt of LockAttempt (jittered, so that waiting
// flights do not poll in step) to take the lock. It returns errBusy when
// the lock is held, and a no-op unlock with every error.
func (sh *Shelf) tryLock(ctx context.Context, ttl time.Duration) (func(), error) {
	d := LockAttempt + time.Duration(rand.Int64N(int64(LockAttempt/2)))
	attempt, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		unlock func()
		err    error
	}
	r, err := bounded(attempt, d, func(ctx context.Context) (result, error) {
		unlock, err := sh.locker.Lock(ctx, sh.key, ttl)
		if err == nil && ctx.Err() != nil {
			unlock() // granted too late: nobody will use it
			return result{}, ctx.Err()
		}
		return result{unlock, err}, err
	})
	switch {
	case err == nil:
		return r.unlock, nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return noop, errBusy
	}
	return noop, err
}

func noop() {}
