package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/redis/go-redis/v9"
)

// maxValue is the largest value Save accepts: econnect's entries are far
// smaller, so a bigger one is a bug, not a token.
const maxValue = 64 << 10

var (
	_ econnect.Store  = (*Store)(nil)
	_ econnect.Locker = (*Store)(nil)
)

var errTooLarge = errors.New("econnect: redisstore: save: value over 64 KiB")

// errNotStored is what Load returns for a missing value. Its own text, as
// econnect.ErrNotStored reads "file does not exist".
var errNotStored error = notStored{}

type notStored struct{}

func (notStored) Error() string { return "econnect: redisstore: load: no value under the key" }
func (notStored) Unwrap() error { return econnect.ErrNotStored }

// Store is an [econnect.Store] and an [econnect.Locker] that keeps values
// and leases in Redis. It is safe for concurrent use by multiple goroutines,
// and by processes that share the Redis and the prefix.
type Store struct {
	client redis.UniversalClient
	prefix string
}

// New returns a Store keeping values in Redis under keys that start with
// prefix, through client: a [*redis.Client], a Sentinel failover client or
// a [*redis.ClusterClient]. The Store does not close the client.
func New(client redis.UniversalClient, prefix string) *Store {
	return &Store{client: client, prefix: prefix}
}

// valueKey and leaseKey name the Redis keys of key: the braces are a hash
// tag, so that both land in one Cluster slot.
func (s *Store) valueKey(key string) string { return s.prefix + "{" + key + "}:token" }
func (s *Store) leaseKey(key string) string { return s.prefix + "{" + key + "}:lock" }

// Load returns the value saved under key, or an error for which
// errors.Is(err, [econnect.ErrNotStored]) holds when there is none (never
// saved, deleted, or dropped by Redis at the end of its ttl).
func (s *Store) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := run(ctx, func(ctx context.Context) ([]byte, error) {
		return s.client.Get(ctx, s.valueKey(key)).Bytes()
	}, nil)
	switch {
	case errors.Is(err, redis.Nil):
		return nil, errNotStored
	case err != nil:
		return nil, fmt.Errorf("econnect: redisstore: load: %w", err)
	}
	return v, nil
}

// Save replaces the value under key with a SET … PX ttl, so that Redis
// drops it once ttl has passed (rounded up to a whole millisecond). A ttl
// of zero or less, a token that never expires, sets no expiry: the value
// stays until the next Save or Delete. Save refuses a value over 64 KiB.
func (s *Store) Save(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if len(value) > maxValue {
		return errTooLarge
	}
	args := []any{"set", s.valueKey(key), value}
	if ttl > 0 {
		args = append(args, "px", millis(ttl))
	}
	_, err := run(ctx, func(ctx context.Context) (any, error) {
		return s.client.Do(ctx, args...).Result()
	}, nil)
	if err != nil {
		return fmt.Errorf("econnect: redisstore: save: %w", err)
	}
	return nil
}

// Delete removes the value under key; a missing value is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := run(ctx, func(ctx context.Context) (int64, error) {
		return s.client.Del(ctx, s.valueKey(key)).Result()
	}, nil)
	if err != nil {
		return fmt.Errorf("econnect: redisstore: delete: %w", err)
	}
	return nil
}

// millis is d in whole milliseconds for PX, rounded up: PX 0 is an error,
// and a lease or value should not lapse before its time.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// A result is what an operation run by run hands back.
type result[T any] struct {
	v   T
	err error
}

// run runs op in a goroutine of its own and returns its result, or ctx's
// error as soon as ctx is done, whichever comes first: go-redis bounds a
// command by ctx only when the client was built with ContextTimeoutEnabled,
// and by its own ReadTimeout and WriteTimeout otherwise. An op the caller
// gave up on runs on until the client ends it; its result then goes to
// abandoned, if not nil, so that it can undo what it did.
func run[T any](ctx context.Context, op func(context.Context) (T, error), abandoned func(T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	// Unbuffered: the result is either received here or abandoned, never
	// both and never neither.
	results := make(chan result[T])
	go func() {
		v, err := op(ctx)
		select {
		case results <- result[T]{v, err}:
		case <-ctx.Done():
			if abandoned != nil {
				abandoned(v, err)
			}
		}
	}()
	select {
	case r := <-results:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
