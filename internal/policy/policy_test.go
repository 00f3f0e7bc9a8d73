package policy

import (
	"errors"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)

// TestStateBoundaries pins every state change to the nanosecond, for
// several lifetimes, with the threshold at both ends of its draw.
func TestStateBoundaries(t *testing.T) {
	tests := []struct {
		name      string
		lifetime  time.Duration
		early     time.Duration
		r         float64
		threshold time.Duration
		margin    time.Duration
	}{
		{"1h middle draw", time.Hour, 0, 0.5, 262500 * time.Millisecond, 10 * time.Second},
		{"1h earliest draw", time.Hour, 0, 0, 225 * time.Second, 10 * time.Second},
		{"24h", 24 * time.Hour, 5 * time.Minute, 0, 225 * time.Second, 10 * time.Second},
		{"60s uses half the lifetime", time.Minute, 0, 0.5, 26250 * time.Millisecond, 6 * time.Second},
		{"10s", 10 * time.Second, 0, 0, 3750 * time.Millisecond, time.Second},
		{"2s", 2 * time.Second, 0, 0, 750 * time.Millisecond, 200 * time.Millisecond},
		{"tiny EarlyExpiry keeps twice the margin", 20 * time.Second, time.Second, 0.5, 4 * time.Second, 2 * time.Second},
		{"1ns EarlyExpiry, 1h", time.Hour, 1, 0, 20 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := NewTiming(epoch.Add(tt.lifetime), tt.lifetime, tt.early, tt.r)
			if tm.Threshold != tt.threshold {
				t.Fatalf("Threshold = %v, want %v", tm.Threshold, tt.threshold)
			}
			exp := tm.Expiry
			rows := []struct {
				at   time.Time
				want State
			}{
				{epoch, Fresh},
				{exp.Add(-tt.threshold - 1), Fresh},
				{exp.Add(-tt.threshold), Fresh},
				{exp.Add(-tt.threshold + 1), Due},
				{exp.Add(-tt.margin), Due},
				{exp.Add(-tt.margin + 1), Unsafe},
				{exp.Add(-1), Unsafe},
				{exp, Expired},
				{exp.Add(1), Expired},
			}
			for _, r := range rows {
				if got := tm.State(r.at); got != r.want {
					t.Errorf("State(%v left) = %v, want %v", exp.Sub(r.at), got, r.want)
				}
			}
			if !tm.RenewAt().Equal(exp.Add(-tt.threshold)) || !tm.UnusableAt().Equal(exp.Add(-tt.margin)) {
				t.Errorf("RenewAt, UnusableAt = %v, %v; want %v, %v", tm.RenewAt(), tm.UnusableAt(), exp.Add(-tt.threshold), exp.Add(-tt.margin))
			}
		})
	}
	t.Run("no expiry", func(t *testing.T) {
		tm := NewTiming(time.Time{}, 0, 0, 0.5)
		if got := tm.State(epoch.Add(100 * 365 * 24 * time.Hour)); got != Fresh {
			t.Errorf("State() = %v, want fresh", got)
		}
		if !tm.RenewAt().IsZero() || !tm.UnusableAt().IsZero() {
			t.Errorf("RenewAt, UnusableAt = %v, %v; want zero", tm.RenewAt(), tm.UnusableAt())
		}
	})
}

// TestThresholdDraw checks that the draw covers [3R/4, R] and never
// renews earlier than R, so two auth calls per lifetime stay the most.
func TestThresholdDraw(t *testing.T) {
	for _, life := range []time.Duration{2 * time.Second, 8 * time.Second, time.Minute, time.Hour, 48 * time.Hour} {
		for _, early := range []time.Duration{1, time.Second, 5 * time.Minute, 24 * time.Hour} {
			R := min(early, life/2)
			floor := 2 * Margin(life)
			lo, hi := Threshold(life, early, 0), Threshold(life, early, 0.999999999)
			if lo != max(R*3/4, floor) && lo != max(R-R/4, floor) {
				t.Errorf("Threshold(%v, %v, 0) = %v, want %v", life, early, lo, max(R*3/4, floor))
			}
			if hi > max(R, floor) || hi < max(R-R/10000, floor) {
				t.Errorf("Threshold(%v, %v, ~1) = %v, want about %v", life, early, hi, max(R, floor))
			}
			if hi > life/2 {
				t.Errorf("Threshold(%v, %v) = %v renews before half the lifetime", life, early, hi)
			}
		}
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct{ left, want time.Duration }{
		{time.Hour, 30 * time.Second},
		{2 * time.Minute, 30 * time.Second},
		{80 * time.Second, 20 * time.Second},
		{4 * time.Second, time.Second},
		{time.Second, time.Second},
		{-time.Second, time.Second},
	}
	for _, tt := range tests {
		if got := RetryDelay(tt.left); got != tt.want {
			t.Errorf("RetryDelay(%v) = %v, want %v", tt.left, got, tt.want)
		}
	}
}

func TestDoublingAndJitter(t *testing.T) {
	tests := []struct {
		n       int
		ceiling time.Duration
		want    time.Duration
	}{
		{0, MaxTransient, time.Second},
		{1, MaxTransient, time.Second},
		{2, MaxTransient, 2 * time.Second},
		{5, MaxTransient, 16 * time.Second},
		{6, MaxTransient, 30 * time.Second},
		{1000, MaxTransient, 30 * time.Second},
		{9, RefusalCeiling, 256 * time.Second},
		{10, RefusalCeiling, 5 * time.Minute},
		{64, RefusalCeiling, 5 * time.Minute},
	}
	for _, tt := range tests {
		got := Doubling(tt.n, tt.ceiling)
		if got != tt.want {
			t.Errorf("Doubling(%d, %v) = %v, want %v", tt.n, tt.ceiling, got, tt.want)
		}
		if lo, hi := Jitter(got, 0), Jitter(got, 0.999999); lo != got || hi <= got || hi >= got*12/10 {
			t.Errorf("Jitter(%v) range = [%v, %v], want [%v, %v)", got, lo, hi, got, got*12/10)
		}
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	if b.Active(0) || b.Active(-time.Hour) {
		t.Fatal("zero Backoff is active (at 0, or at a negative reading, as in a synctest bubble)")
	}
	errA := errors.New("a")
	b.Fail(10*time.Second, time.Second, errA)
	for _, r := range []struct {
		at   time.Duration
		want bool
	}{{10 * time.Second, true}, {11*time.Second - 1, true}, {11 * time.Second, false}} {
		if got := b.Active(r.at); got != r.want {
			t.Errorf("Active(%v) = %t, want %t", r.at, got, r.want)
		}
	}
	if b.Fails != 1 || b.Err != errA {
		t.Errorf("after Fail: Fails, Err = %d, %v; want 1, a", b.Fails, b.Err)
	}
	b.Hold(20 * time.Second)
	b.Hold(15 * time.Second)
	if !b.Active(20*time.Second-1) || b.Active(20*time.Second) || b.Fails != 1 {
		t.Errorf("Hold: Until, Fails = %v, %d; want 20s, 1", b.Until, b.Fails)
	}
	b.Reset()
	if b.Active(0) || b.Fails != 0 || b.Err != nil {
		t.Errorf("after Reset: %+v, want zero", b)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{None: "none", Fresh: "fresh", Due: "due", Unsafe: "unsafe", Expired: "expired", 9: "State(?)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
		if s.Usable() != (s == Fresh || s == Due) {
			t.Errorf("State(%v).Usable() = %t", s, s.Usable())
		}
	}
}

// TestTransientCeiling: about four login attempts per token lifetime while
// logins fail, never more than one a second, never less than one in 30 s.
func TestTransientCeiling(t *testing.T) {
	for _, tt := range []struct {
		lifetime, want time.Duration
	}{
		{0, 30 * time.Second}, // never held a token
		{time.Second, time.Second},
		{4 * time.Second, time.Second},
		{6 * time.Second, 1500 * time.Millisecond},
		{time.Minute, 15 * time.Second},
		{2 * time.Minute, 30 * time.Second},
		{time.Hour, 30 * time.Second},
	} {
		if got := TransientCeiling(tt.lifetime); got != tt.want {
			t.Errorf("TransientCeiling(%v) = %v, want %v", tt.lifetime, got, tt.want)
		}
	}
}
