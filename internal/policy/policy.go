// Package policy decides, as pure functions of time, when a token is handed
// out, when it is renewed, and how long failures back off. It makes no calls
// and holds no clock: every decision takes the current time as an argument,
// so that tests pin each boundary to the nanosecond.
package policy

import "time"

const (
	// DefaultEarlyExpiry is the renewal window when Config.EarlyExpiry is zero.
	DefaultEarlyExpiry = 5 * time.Minute
	// MaxMargin caps the safety margin: a token with less life left is not
	// handed out, since a request might reach the server after it expired.
	MaxMargin = 10 * time.Second
	// MinRetry and MaxRetry clamp the wait before a failed renewal's next try.
	MinRetry = time.Second
	MaxRetry = 30 * time.Second
	// FirstBackoff is the first wait after a failed login, doubled after each
	// further failure up to TransientCeiling or RefusalCeiling.
	FirstBackoff = time.Second
	// MaxTransient caps the login backoff after failures that may pass by
	// themselves (see TransientCeiling), and the spacing of 401-driven
	// logins.
	MaxTransient = 30 * time.Second
	// RefusalCeiling caps the login backoff after failures that waiting
	// cannot heal: the server refused the credentials (so that a wrong
	// password in a busy loop cannot lock the account), or the Config cannot
	// be used as it is (an untrusted certificate, plain http refused).
	RefusalCeiling = 5 * time.Minute
)

// TransientCeiling caps the login backoff after failures that may pass by
// themselves (network, timeouts, 408, 429, 5xx, a garbled answer):
// min(30 s, max(1 s, lifetime/4)), lifetime being the usable lifetime of the
// last token the source held (zero when it never held one: 30 s). While
// logins fail, a source then tries about four times per token lifetime:
// often enough that a server failing calls at random serves waiting
// requests, rarely enough that a server that is down sees no more than
// that budget from each source.
func TransientCeiling(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return MaxTransient
	}
	return min(MaxTransient, max(FirstBackoff, lifetime/4))
}

// State is where a token stands at a moment. The token source switches on
// it; every state and what it leads to:
//
//	State    Remaining life left         Callers get           The source
//	None     (no token)                  wait                  logs in
//	Fresh    ≥ threshold, or no expiry   the token             does nothing
//	Due      < threshold, ≥ margin       the token             renews in the background
//	Unsafe   < margin, > 0               wait                  logs in (renews without a password)
//	Expired  ≤ 0                         wait                  logs in
//
// The threshold lies between 3/4 of R and R, where R = min(EarlyExpiry,
// lifetime/2), at a point each source draws once for all its tokens, and is
// never below twice the margin; the margin is min(10 s, lifetime/10).
type State int

const (
	None State = iota
	Fresh
	Due
	Unsafe
	Expired
)

var stateNames = [...]string{"none", "fresh", "due", "unsafe", "expired"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "State(?)"
	}
	return stateNames[s]
}

// Usable reports whether a token in state s may be handed out.
func (s State) Usable() bool { return s == Fresh || s == Due }

// Timing is what the policy knows of one token. It is a value: it never
// changes once made.
type Timing struct {
	// Expiry is when the token expires, on the local wall clock; zero if it
	// never does.
	Expiry time.Time
	// Lifetime is the token's whole life, counted from when it was asked
	// for; zero when Expiry is zero.
	Lifetime time.Duration
	// Threshold is the remaining life below which a renewal is due.
	Threshold time.Duration
}

// NewTiming returns the timing of a token that expires at expiry after
// lifetime. early is Config.EarlyExpiry (zero or less: the default), and r,
// in [0, 1), places the renewal threshold in its window: the token source
// draws it once and uses it for all its tokens, so that sources that logged
// in together do not renew in lockstep and drift apart with each lifetime.
func NewTiming(expiry time.Time, lifetime, early time.Duration, r float64) Timing {
	t := Timing{Expiry: expiry, Lifetime: lifetime}
	if !expiry.IsZero() {
		t.Threshold = Threshold(lifetime, early, r)
	}
	return t
}

// Threshold draws a renewal threshold uniformly between 3/4 of R and R,
// R = min(early, lifetime/2), never below twice the safety margin: a renewal
// that answers within the margin then keeps every caller from waiting,
// whatever early is. Renewing at no more than half the lifetime keeps auth
// calls at two per lifetime at most.
func Threshold(lifetime, early time.Duration, r float64) time.Duration {
	if early <= 0 {
		early = DefaultEarlyExpiry
	}
	R := min(early, lifetime/2)
	d := R - time.Duration(float64(R/4)*(1-r))
	return max(d, 2*Margin(lifetime))
}

// Margin is min(10 s, lifetime/10): a token with less life left is not
// handed out.
func Margin(lifetime time.Duration) time.Duration {
	return min(MaxMargin, lifetime/10)
}

// State returns where the token stands at now, a wall-clock reading.
func (t Timing) State(now time.Time) State {
	if t.Expiry.IsZero() {
		return Fresh
	}
	left := t.Expiry.Sub(now)
	switch {
	case left <= 0:
		return Expired
	case left < Margin(t.Lifetime):
		return Unsafe
	case left < t.Threshold:
		return Due
	}
	return Fresh
}

// RenewAt is the first moment the token is Due; zero if it never is.
func (t Timing) RenewAt() time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	return t.Expiry.Add(-t.Threshold)
}

// UnusableAt is the first moment the token is no longer handed out; zero if
// it never is.
func (t Timing) UnusableAt() time.Time {
	if t.Expiry.IsZero() {
		return time.Time{}
	}
	return t.Expiry.Add(-Margin(t.Lifetime))
}

// RetryDelay is how long a renewal that failed while the token was usable
// waits before its next try: clamp(left/4, 1 s, 30 s).
func RetryDelay(left time.Duration) time.Duration {
	return min(max(left/4, MinRetry), MaxRetry)
}

// Doubling returns FirstBackoff doubled for each failure after the first
// of n, capped at ceiling.
func Doubling(n int, ceiling time.Duration) time.Duration {
	if n <= 1 {
		return min(FirstBackoff, ceiling)
	}
	if n > 30 {
		return ceiling
	}
	return min(FirstBackoff<<(n-1), ceiling)
}

// Jitter spreads d over [d, 1.2·d) with r in [0, 1): never earlier than the
// schedule says, so a server never sees a call sooner than promised.
func Jitter(d time.Duration, r float64) time.Duration {
	return d + time.Duration(float64(d)*0.2*r)
}

// Backoff is a failure streak: how many failures in a row, the error of the
// last, and until when, on the monotonic clock, nothing is tried again.
// The zero value is no streak, and no wait, whatever the sign of the
// clock's readings (a clock read inside a testing/synctest bubble is far
// before the process started).
type Backoff struct {
	Fails int
	Until time.Duration // monotonic reading; zero: no wait (see Active)
	Err   error
}

// Fail records a failure at now, a monotonic reading, to be waited out for
// wait.
func (b *Backoff) Fail(now, wait time.Duration, err error) {
	b.Fails++
	b.Until = now + wait
	b.Err = err
}

// Reset ends the streak.
func (b *Backoff) Reset() { *b = Backoff{} }

// Hold makes the wait last at least until until, a monotonic reading,
// without counting a failure: a server's Retry-After.
func (b *Backoff) Hold(until time.Duration) {
	if b.Until == 0 || until > b.Until {
		b.Until = until
	}
}

// Active reports whether now, a monotonic reading, is inside the wait.
func (b *Backoff) Active(now time.Duration) bool { return b.Until != 0 && now < b.Until }
