package testkit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Clock is a fake clock that moves only when told. Its wall and monotonic
// readings move together under [Clock.Advance]; [Clock.StepWall] moves the
// wall reading alone, as a host's clock step does. Code under test takes
// its Wall, Mono and Sleep methods as values. The zero Clock reads the
// zero time; a Clock is safe for concurrent use by multiple goroutines.
type Clock struct {
	// mu guards the fields below.
	mu       sync.Mutex
	wall     time.Time
	mono     time.Duration
	sleepers int           // callers in Sleep
	moved    chan struct{} // closed by Advance, to wake sleepers; nil until one waits
	entered  chan struct{} // closed when a caller enters Sleep, to wake AwaitSleepers
}

// NewClock returns a Clock whose wall reading is wall, without its
// monotonic reading, and whose monotonic reading is zero.
func NewClock(wall time.Time) *Clock {
	return &Clock{wall: wall.Round(0)}
}

// Wall returns the wall reading, which has no monotonic reading: comparing
// two of them uses the wall clock, as comparing expiry times does.
func (c *Clock) Wall() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

// Mono returns the monotonic reading: how far the clock has moved from an
// arbitrary fixed point, never backwards.
func (c *Clock) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Sleep returns nil once the clock has moved d on its monotonic reading,
// or ctx.Err() if ctx ends first. A d of zero or less returns nil at once.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock() // the loop leaves with c.mu held
	until := c.mono + d
	c.sleepers++
	defer func() { c.sleepers-- }()
	broadcast(&c.entered)
	for c.mono < until {
		moved := waitOn(&c.moved)
		c.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			c.mu.Lock()
			return ctx.Err()
		}
		c.mu.Lock()
	}
	return nil
}

// Advance moves the wall and monotonic readings forward by d and wakes the
// sleepers whose time has come. It panics if d is negative: the monotonic
// clock never goes back (see StepWall).
func (c *Clock) Advance(d time.Duration) {
	if d < 0 {
		panic("testkit: Clock.Advance with a negative duration")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall, c.mono = c.wall.Add(d), c.mono+d
	broadcast(&c.moved)
}

// StepWall moves the wall reading alone by d, forward or back, as a host's
// clock step does: the monotonic reading, and so every Sleep, is left as
// it was.
func (c *Clock) StepWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
}

// AwaitSleepers blocks until at least n callers are in Sleep at once, or
// ctx ends; then it returns an error wrapping ctx.Err(). Tests call it
// before Advance, to know that what they wait for has gone to sleep.
func (c *Clock) AwaitSleepers(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		sleepers := c.sleepers
		entered := waitOn(&c.entered)
		c.mu.Unlock()
		if sleepers >= n {
			return nil
		}
		select {
		case <-entered:
		case <-ctx.Done():
			return fmt.Errorf("testkit: %d callers in Sleep, want %d: %w", sleepers, n, ctx.Err())
		}
	}
}

// waitOn returns the channel *ch, making it if there is none yet. The
// Clock's mu must be held.
func waitOn(ch *chan struct{}) <-chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{})
	}
	return *ch
}

// broadcast wakes the waiters on *ch, if any, by closing it; the next
// waitOn makes a new one. The Clock's mu must be held.
func broadcast(ch *chan struct{}) {
	if *ch != nil {
		close(*ch)
		*ch = nil
	}
}
