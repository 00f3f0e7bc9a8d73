package testkit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var start = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// goSleep calls c.Sleep(ctx, d) on a goroutine and delivers its error.
func goSleep(ctx context.Context, c *Clock, d time.Duration) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- c.Sleep(ctx, d) }()
	return ch
}

// returned reports whether ch has delivered, and what.
func returned(ch <-chan error) (bool, error) {
	select {
	case err := <-ch:
		return true, err
	default:
		return false, nil
	}
}

func TestClockSleep(t *testing.T) {
	tests := []struct {
		name      string
		d         time.Duration
		move      func(*Clock)
		wantAwake bool
	}{
		{"woken by Advance", time.Second, func(c *Clock) { c.Advance(time.Second) }, true},
		{"woken by a longer Advance", time.Second, func(c *Clock) { c.Advance(time.Hour) }, true},
		{"woken by steps", time.Second, func(c *Clock) {
			c.Advance(400 * time.Millisecond)
			c.Advance(600 * time.Millisecond)
		}, true},
		{"1ns short", time.Second, func(c *Clock) { c.Advance(time.Second - 1) }, false},
		{"not moved", time.Second, func(*Clock) {}, false},
		{"StepWall does not wake", time.Second, func(c *Clock) { c.StepWall(time.Hour) }, false},
		{"zero", 0, func(*Clock) {}, true},
		{"negative", -time.Second, func(*Clock) {}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := NewClock(start)
				ctx, cancel := context.WithCancel(t.Context())
				done := goSleep(ctx, c, tt.d)
				synctest.Wait()
				tt.move(c)
				synctest.Wait()
				awake, err := returned(done)
				if awake != tt.wantAwake || err != nil {
					t.Errorf("Sleep(%v) returned = %v, %v; want %v, nil", tt.d, awake, err, tt.wantAwake)
				}
				cancel()
				if !awake {
					if err := <-done; !errors.Is(err, context.Canceled) {
						t.Errorf("Sleep(%v) after cancel = %v, want %v", tt.d, err, context.Canceled)
					}
				}
			})
		})
	}
}

func TestClockSleepEndsWithContext(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		cancel  bool // cancel ctx once Sleep sleeps
		wantErr error
	}{
		{"cancelled", context.WithCancel, true, context.Canceled},
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, time.Minute) // synctest's time, not the Clock's
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := NewClock(start)
				ctx, cancel := tt.ctx(t.Context())
				defer cancel()
				done := goSleep(ctx, c, time.Hour)
				synctest.Wait()
				if tt.cancel {
					cancel()
				}
				if err := <-done; err != tt.wantErr {
					t.Errorf("Sleep() = %v, want %v", err, tt.wantErr)
				}
				if err := c.AwaitSleepers(t.Context(), 0); err != nil {
					t.Errorf("AwaitSleepers(0) = %v, want nil", err)
				}
			})
		})
	}
}

func TestClockSleepAlreadyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := NewClock(start).Sleep(ctx, time.Second); err != context.Canceled {
		t.Errorf("Sleep(cancelled ctx) = %v, want %v", err, context.Canceled)
	}
}

// TestClockAwaitSleepers runs on real goroutines, as the tests that use it
// do: it must not depend on synctest to wake up.
func TestClockAwaitSleepers(t *testing.T) {
	c := NewClock(start)
	const n = 3
	var dones []<-chan error
	for i := range n {
		dones = append(dones, goSleep(t.Context(), c, time.Duration(i+1)*time.Second))
	}
	awaited := make(chan error, 1)
	go func() { awaited <- c.AwaitSleepers(t.Context(), n) }()
	if err := Await(t, awaited, "AwaitSleepers"); err != nil {
		t.Fatalf("AwaitSleepers(%d) = %v, want nil", n, err)
	}
	c.Advance(n * time.Second)
	for i, done := range dones {
		if err := Await(t, done, "Sleep"); err != nil {
			t.Errorf("Sleep %d = %v, want nil", i, err)
		}
	}
}

func TestClockAwaitSleepersEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewClock(start)
		sleeping := goSleep(t.Context(), c, time.Second)
		ctx, cancel := context.WithCancel(t.Context())
		awaited := make(chan error, 1)
		go func() { awaited <- c.AwaitSleepers(ctx, 2) }()
		synctest.Wait()
		if ok, _ := returned(awaited); ok {
			t.Fatal("AwaitSleepers(2) returned with 1 sleeper")
		}
		cancel()
		err := <-awaited
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "1 callers in Sleep, want 2") {
			t.Errorf("AwaitSleepers(2) = %v, want 1 of 2 and %v", err, context.Canceled)
		}
		c.Advance(time.Second)
		if err := <-sleeping; err != nil {
			t.Errorf("Sleep() = %v, want nil", err)
		}
	})
}

func TestClockReadings(t *testing.T) {
	tests := []struct {
		name     string
		move     func(*Clock)
		wantWall time.Time
		wantMono time.Duration
	}{
		{"new", func(*Clock) {}, start, 0},
		{"Advance", func(c *Clock) { c.Advance(90 * time.Second) }, start.Add(90 * time.Second), 90 * time.Second},
		{"StepWall forward", func(c *Clock) { c.StepWall(time.Hour) }, start.Add(time.Hour), 0},
		{"StepWall back", func(c *Clock) { c.StepWall(-time.Hour) }, start.Add(-time.Hour), 0},
		{"both", func(c *Clock) {
			c.Advance(time.Minute)
			c.StepWall(-10 * time.Minute)
			c.Advance(time.Minute)
		}, start.Add(-8 * time.Minute), 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClock(start)
			tt.move(c)
			if got := c.Wall(); !got.Equal(tt.wantWall) {
				t.Errorf("Wall() = %v, want %v", got, tt.wantWall)
			}
			if got := c.Mono(); got != tt.wantMono {
				t.Errorf("Mono() = %v, want %v", got, tt.wantMono)
			}
		})
	}
}

func TestClockWallHasNoMonotonicReading(t *testing.T) {
	c := NewClock(time.Now()) // time.Now carries one
	c.Advance(time.Second)
	if s := c.Wall().String(); strings.Contains(s, "m=") {
		t.Errorf("Wall() = %s, want no monotonic reading", s)
	}
}

func TestClockAdvanceNegativePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Advance(-1) did not panic")
		}
	}()
	NewClock(start).Advance(-1)
}
