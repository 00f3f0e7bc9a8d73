package redisstore

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// releaseTimeout bounds an unlock: it runs on a context of its own, as the
// caller's may be done by then, and a lease left behind lapses anyway.
const releaseTimeout = time.Second

// release deletes a lease only while it still holds the holder's value, so
// that a holder whose lease lapsed never deletes its successor's.
var release = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end return 0`)

var errBadTTL = errors.New("econnect: redisstore: lock: ttl not positive")

// Lock takes the lease on key: a SET … NX PX ttl of a random value, tried
// again every 25 to 50 ms while another process holds it, until it is held
// or ctx is done (then an error wrapping ctx.Err()). Any other failure of
// Redis ends Lock at once with an error. The lease lapses after ttl even if
// unlock is never called.
//
// unlock releases the lease if it still holds it, with a context of its own
// that ends after a second; it returns by then, and calls after the first
// do nothing.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error) {
	if ttl <= 0 {
		return nil, errBadTTL
	}
	l := &lease{client: s.client, key: s.leaseKey(key), value: leaseValue()}
	for {
		held, err := run(ctx, func(ctx context.Context) (bool, error) {
			return l.acquire(ctx, ttl)
		}, l.abandon(ctx))
		if err != nil {
			return nil, fmt.Errorf("econnect: redisstore: lock: %w", err)
		}
		if held {
			return l.unlockFunc(ctx), nil
		}
		if err := pause(ctx, 25*time.Millisecond+rand.N(25*time.Millisecond)); err != nil {
			return nil, fmt.Errorf("econnect: redisstore: lock: %w", err)
		}
	}
}

// A lease is one Lock call's claim on a lease key.
type lease struct {
	client redis.UniversalClient
	key    string
	value  string // random, so that only this holder's release deletes it
}

// leaseValue returns 16 random bytes in hex.
func leaseValue() string {
	b := make([]byte, 16)
	crand.Read(b)
	return hex.EncodeToString(b)
}

// acquire tries once to take the lease: false, nil while another holds it.
func (l *lease) acquire(ctx context.Context, ttl time.Duration) (bool, error) {
	err := l.client.Do(ctx, "set", l.key, l.value, "nx", "px", millis(ttl)).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// abandon returns what to do with an attempt the caller gave up on: it may
// have taken the lease (or, after an error, may have reached Redis), and
// nobody will unlock it, so release it now rather than at the end of ttl.
func (l *lease) abandon(ctx context.Context) func(bool, error) {
	return func(held bool, err error) {
		if held || err != nil {
			l.release(ctx)
		}
	}
}

// unlockFunc returns the unlock of a held lease.
func (l *lease) unlockFunc(ctx context.Context) func() {
	var once sync.Once
	return func() { once.Do(func() { l.release(ctx) }) }
}

// release runs the compare-and-delete, bounded by releaseTimeout; it keeps
// ctx's values but not its end. An error is dropped: the lease lapses.
func (l *lease) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	run(ctx, func(ctx context.Context) (any, error) {
		return release.Run(ctx, l.client, []string{l.key}, l.value).Result()
	}, nil)
}

// pause waits for d or until ctx is done, and then returns ctx's error.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
