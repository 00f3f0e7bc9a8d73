package dirstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

const (
	// retryEvery and retryJitter space the attempts of a waiting Lock: a
	// peer's login takes far longer, and the jitter keeps waiting processes
	// from trying in step.
	retryEvery  = 10 * time.Millisecond
	retryJitter = 5 * time.Millisecond
)

// errBusy is what tryLock returns when another holder has the lock.
var errBusy = errors.New("locked by another holder")

// Lock takes the exclusive lock of key, shared by every process on this
// host using d, waiting until it holds it or ctx is done (then the error
// wraps ctx.Err()). Two Locks in one process exclude each other too. The
// lock is on the file K.lock, created 0600 and never deleted; it is not
// the value file, so holding it never keeps a Load or a Save from running.
// The lock lapses after ttl, which must be positive, if unlock has not
// released it by then; a process that dies releases it at once. Unlock
// may be called more than once. Where files cannot be locked, the error
// wraps [errors.ErrUnsupported].
func (d Dir) Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error) {
	path, err := d.file(key, lockExt)
	if err != nil {
		return nil, err
	}
	switch {
	case !canLock:
		return nil, wrap(errors.ErrUnsupported)
	case ttl <= 0:
		return nil, errors.New("econnect: DirStore: lock ttl must be positive")
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(err)
	}
	if err := d.ensure(); err != nil {
		return nil, err
	}
	// Each Lock opens its own descriptor: the lock belongs to it, so that
	// two Locks in one process exclude each other as two processes do.
	f, err := openPrivate(path, os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, err
	}
	if err := acquire(ctx, f); err != nil {
		f.Close()
		return nil, err
	}
	return hold(f, ttl), nil
}

// acquire tries to lock f until it holds the lock, the lock fails for
// another reason than a holder, or ctx is done.
func acquire(ctx context.Context, f *os.File) error {
	var retry *time.Timer
	for {
		err := tryLock(f)
		if !errors.Is(err, errBusy) {
			return err // nil once held
		}
		wait := retryEvery + rand.N(retryJitter)
		if retry == nil {
			retry = time.NewTimer(wait)
			defer retry.Stop()
		} else {
			retry.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return wrap(ctx.Err())
		case <-retry.C:
		}
	}
}

// A held lock is released once, by its unlock or when its ttl lapses.
type held struct {
	f     *os.File
	once  sync.Once
	lapse *time.Timer // set before unlock is handed out; not read by release
}

// hold returns the unlock func of the lock held on f, which also lapses
// after ttl: a timer, with no goroutine until it fires.
func hold(f *os.File, ttl time.Duration) (unlock func()) {
	h := &held{f: f}
	h.lapse = time.AfterFunc(ttl, h.release)
	return h.unlock
}

// unlock releases the lock now, if it has not lapsed, and stops its timer.
func (h *held) unlock() {
	h.lapse.Stop()
	h.release()
}

// release unlocks and closes the file, the first time it is called.
func (h *held) release() {
	h.once.Do(func() {
		unlockFile(h.f)
		h.f.Close()
	})
}
