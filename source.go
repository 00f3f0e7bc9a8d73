// Package econnect lets Go programs call an eConnect Identities server with a
// username and password through the standard [golang.org/x/oauth2] interfaces.
//
// A [Config] logs in with POST {BaseURL}/api/v1/authenticate, which answers a
// JWT, and renews that JWT with GET {BaseURL}/api/v1/renewToken before it
// expires. The expiry comes from the JWT itself, counted on the local clock,
// so a server whose clock is off changes nothing. When a renewal is refused,
// or the token can no longer be used, the source logs in again with the
// password; transient failures are absorbed while the current token is still
// usable, and failed logins back off so that a wrong password cannot lock
// the account.
//
// Most programs want [Config.Client]. Programs that hand tokens to an
// oauth2-aware library want [Config.TokenSource].
package econnect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/econnect-oss/econnect/internal/policy"
	"github.com/econnect-oss/econnect/internal/wire"
	"golang.org/x/oauth2"
)

// TokenSource returns a [oauth2.TokenSource] that logs in on first use,
// renews the token before it expires, and logs in again when a renewal is
// refused or the token can no longer be used. While the current token is
// usable, renewals run in the background and callers never wait for them.
//
// The returned value is the one [oauth2.ReuseTokenSourceWithExpiry] made, so
// [oauth2.NewClient] uses it as it is and keeps its renewal point. Through
// it, every caller gets the same *oauth2.Token until the next renewal:
// that is oauth2's design, so treat the token as read-only.
//
// Its Token method has no context: while logins back off after a failure,
// it returns the last error at once rather than wait. A request through
// [Config.Client] or a [Transport] around this source waits instead, as
// long as its own context allows.
//
// The provided context optionally controls which HTTP client is used (see
// [oauth2.HTTPClient]) and bounds every later login and renewal, so it must
// outlive the source. Make one source and share it; each call starts a new
// one, which logs in again. Most users will use [Config.Client] instead.
func (c *Config) TokenSource(ctx context.Context) oauth2.TokenSource {
	return newSource(ctx, c, nil).reuse()
}

// TokenSourceFrom is like [Config.TokenSource] but starts from t, a token
// saved earlier (for example by [Config.Token] or [ParseToken]): it hands out
// t while t is usable, renews it at the renewal point, and logs in only when
// t is refused or can no longer be used. With an empty Password it never
// logs in and returns an error once t can no longer be renewed. t is not
// modified.
func (c *Config) TokenSourceFrom(ctx context.Context, t *oauth2.Token) oauth2.TokenSource {
	s := newSource(ctx, c, nil)
	if tok := fromOAuth2(t, s.clock.wall(), c.EarlyExpiry, s.draw); tok != nil {
		s.tok = tok
		s.publishLocked()
	}
	return s.reuse()
}

// source is the token source behind TokenSource, TokenSourceFrom and Client.
// It is safe for concurrent use by multiple goroutines.
//
// What it does is decided in one place, [source.current], by the state of
// its token (see [policy.State]):
//
//	fresh    hand out the token
//	due      hand out the token; start a renewal in the background, unless one
//	         runs or the last one failed less than its retry delay ago
//	unsafe   wait for a new token: log in (without a password: renew)
//	expired  wait for a login (without a password: fail)
//	none     wait for a login (without a password: fail)
//
// A token that a request saw refused (401) counts as unsafe. Waiting means
// joining the one flight under way, or starting it; while failed logins back
// off, callers that cannot wait fail at once with the last error. What a
// flight's outcome changes is decided in one place too, [source.finish].
//
// Secrets sit behind pointers (cfg, tok), which fmt prints as addresses:
// fmt walks the fields of a value whose Format it does not call.
type source struct {
	cfg    *Config // a copy
	ctx    context.Context
	clock  *clock
	hedge  time.Duration // see hedgeDelay
	origin origin        // where tokens may go
	// draw places the renewal point of each of this source's tokens in its
	// window (see policy.Threshold). One draw per source, not per token:
	// sources that logged in together then drift further apart with every
	// lifetime instead of meeting again around the window's middle.
	draw float64

	// snap is tok while it is fresh, read without the lock until its
	// renewal point; nil otherwise.
	snap atomic.Pointer[token]

	extraOnce sync.Once
	extra     map[string]any // Extra of the oauth2 tokens handed out

	mu      sync.Mutex // guards the fields below
	tok     *token     // the current token, or nil
	suspect bool       // a request with tok was refused: tok is unsafe
	flight  *flight    // the login or renewal under way, or nil; at most one runs
	// renewal is the streak of background renewals that failed while tok
	// was usable; the next waits for its retry delay.
	renewal policy.Backoff
	// login is the streak of failed logins (and renewals that callers
	// waited for); callers that cannot wait fail fast until it ends.
	login policy.Backoff
	// relogin spaces 401-driven logins: one a second at most, doubling
	// while even fresh tokens are refused.
	relogin policy.Backoff

	wg sync.WaitGroup // flights under way, so tests can wait for them
}

// A flight is one login or renewal, shared by every caller waiting for it.
type flight struct {
	done chan struct{} // closed when the flight ends
	err  error         // set before done is closed
}

// clock is where a source reads time. Expiry follows the wall clock, so a
// host that wakes from sleep sees its token expired; backoffs run on the
// monotonic clock, so a wall clock step does not stretch them.
type clock struct {
	wall func() time.Time     // monotonic reading stripped
	mono func() time.Duration // since an arbitrary fixed point
	rand func() float64       // in [0, 1), for jitter
	// sleep waits d on the monotonic clock, or until ctx ends.
	sleep func(ctx context.Context, d time.Duration) error
}

var processStart = time.Now()

var systemClock = &clock{
	wall:  func() time.Time { return time.Now().Round(0) },
	mono:  func() time.Duration { return time.Since(processStart) },
	rand:  rand.Float64,
	sleep: sleep,
}

func newSource(ctx context.Context, c *Config, t *token) *source {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg := *c
	s := &source{cfg: &cfg, ctx: ctx, clock: systemClock, hedge: hedgeDelay, origin: originOf(c), draw: rand.Float64()}
	if t != nil {
		s.tok = t
		s.publishLocked()
	}
	return s
}

// reuse wraps s for callers. Its margin, at least the renewal window and the
// safety margin, makes the wrapper ask s again from the renewal point on, so
// that s decides when to renew and what to hand out.
func (s *source) reuse() oauth2.TokenSource {
	early := s.cfg.EarlyExpiry
	if early <= 0 {
		early = policy.DefaultEarlyExpiry
	}
	return oauth2.ReuseTokenSourceWithExpiry(nil, s, max(early, policy.MaxMargin))
}

// Token returns a new copy of a usable token; see current.
func (s *source) Token() (*oauth2.Token, error) {
	t, err := s.current(s.ctx, false)
	if err != nil {
		return nil, err
	}
	s.extraOnce.Do(func() { s.extra = map[string]any{"username": t.name, ownerKey: s} })
	return t.oauth2Token(s.extra), nil
}

// current returns a usable token. While one exists it never waits: a due
// renewal starts in the background. Otherwise it waits, until ctx ends, for
// the flight under way, starting one if none is, so that any number of
// concurrent callers cause a single call. While logins back off, a patient
// caller whose ctx allows it waits for the next attempt; others fail at once.
func (s *source) current(ctx context.Context, patient bool) (*token, error) {
	if t := s.snap.Load(); t != nil && s.clock.wall().Before(t.renewAt) {
		return t, nil
	}
	var waited *flight
	for {
		s.mu.Lock()
		wall, mono := s.clock.wall(), s.clock.mono()
		st := s.stateLocked(wall)
		switch {
		case st.Usable():
			if st == policy.Due && s.flight == nil && !s.renewal.Active(mono) && s.ctx.Err() == nil {
				s.startLocked(st)
			}
			t := s.tok
			s.mu.Unlock()
			return t, nil
		case waited != nil && waited.err != nil:
			s.mu.Unlock()
			return nil, waited.err // the result of the attempt this caller waited for
		case s.flight == nil && s.cfg.Password == "" && (st == policy.None || st == policy.Expired):
			s.mu.Unlock()
			return nil, errNoPassword
		case s.flight == nil && s.login.Active(mono):
			err, wait := s.lastErrLocked(), s.login.Until-mono
			s.mu.Unlock()
			if !patient || !allows(ctx, wait) {
				return nil, err
			}
			if err := s.clock.sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		case s.flight == nil:
			if err := s.ctx.Err(); err != nil {
				s.mu.Unlock()
				return nil, fmt.Errorf("econnect: %w", err)
			}
			s.startLocked(st)
		}
		f := s.flight
		s.mu.Unlock()
		select {
		case <-f.done:
			waited = f
		case <-ctx.Done():
			return nil, fmt.Errorf("econnect: waiting for a token: %w", ctx.Err())
		}
	}
}

// stateLocked is the state of s.tok at now. s.mu is held.
func (s *source) stateLocked(now time.Time) policy.State {
	if s.tok == nil {
		return policy.None
	}
	st := s.tok.timing.State(now)
	if s.suspect && st.Usable() {
		return policy.Unsafe
	}
	return st
}

// lastErrLocked is the error to fail fast with while logins back off.
func (s *source) lastErrLocked() error {
	if s.login.Err != nil {
		return s.login.Err
	}
	if s.renewal.Err != nil {
		return s.renewal.Err
	}
	return errNoToken
}

var errNoToken = fmt.Errorf("econnect: no token yet; auth calls are held by the server's Retry-After")

// allows reports whether ctx leaves time to wait d.
func allows(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("econnect: waiting for a token: %w", ctx.Err())
	}
}

// startLocked starts a flight that gets a token for a source in state st.
// The flight runs on its own goroutine, so that a caller that stops waiting
// does not cancel it for the others. s.mu is held.
func (s *source) startLocked(st policy.State) {
	f := &flight{done: make(chan struct{})}
	s.flight = f
	old := s.tok
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t, err := s.fetch(st, old)
		s.finish(f, old, t, err)
	}()
}

// fetch gets a token for a source whose token old is in state st. A due
// token is renewed, within its usable life; a refusal, or the end of that
// life, leads to a login. A token no longer usable is replaced by a login,
// or renewed while valid when there is no password.
func (s *source) fetch(st policy.State, old *token) (*token, error) {
	if st == policy.Due || st == policy.Unsafe && s.cfg.Password == "" {
		until := old.timing.UnusableAt()
		if st == policy.Unsafe {
			until = old.timing.Expiry
		}
		t, err := s.renewUntil(old, until)
		if t == old {
			t, err = nil, errSameToken // its expiry stands; try again later
		}
		if err == nil || s.cfg.Password == "" || !wire.Refused(err) && err != errUnusable && s.usable(old) {
			return t, err
		}
		s.log(slog.LevelInfo, "econnect: renewal failed; logging in again", err)
	}
	return s.cfg.login(s.ctx, s.clock, s.hedge, s.draw)
}

// renewUntil renews old, giving up at until (wall clock) with errUnusable:
// past it, a renewal would keep callers waiting that a login can serve.
func (s *source) renewUntil(old *token, until time.Time) (*token, error) {
	left := until.Sub(s.clock.wall())
	if left <= 0 {
		return nil, errUnusable
	}
	ctx, cancel := context.WithTimeout(s.ctx, left)
	defer cancel()
	t, err := s.cfg.renew(ctx, old, s.clock, min(s.hedge, left/2), s.draw)
	if err != nil && ctx.Err() == context.DeadlineExceeded && s.ctx.Err() == nil {
		return nil, errUnusable
	}
	return t, err
}

// errSameToken is a renewal answered with the token it renewed.
var errSameToken = errors.New("econnect: renewal: the server answered the same token")

// errUnusable ends a renewal that lasted until its token could no longer be
// handed out.
var errUnusable = errors.New("econnect: renewal: no answer while the token was usable")

// usable reports whether t is still the current token and may be handed out.
func (s *source) usable(t *token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tok == t && s.stateLocked(s.clock.wall()).Usable()
}

// finish records the outcome of a flight that set out to replace old, and
// releases its waiters. Every change a flight's outcome makes is here:
//
//	new token               it becomes current; every failure streak ends
//	failure, old usable     old stays; the renewal retry waits
//	                        clamp(remaining/4, 1 s, 30 s), or the server's
//	                        Retry-After if longer
//	refusal of old          old is dropped, so it is not handed out again
//	failure, none usable    logins back off: 1 s doubling to 30 s, or to
//	                        5 minutes when the server refused the
//	                        credentials; at least the server's Retry-After
//
// The logger is called after the lock is released.
func (s *source) finish(f *flight, old, t *token, err error) {
	s.mu.Lock()
	wall, mono := s.clock.wall(), s.clock.mono()
	var ev event
	switch {
	case err == nil:
		if s.login.Fails > 0 || s.renewal.Fails > 0 {
			ev = event{slog.LevelInfo, "econnect: recovered", nil}
		}
		s.tok, s.suspect = t, false
		s.login.Reset()
		s.renewal.Reset()
	case errors.Is(err, context.Canceled):
	case s.tok == old && !wire.Refused(err) && s.stateLocked(wall).Usable():
		wait := max(policy.Jitter(policy.RetryDelay(old.timing.Expiry.Sub(wall)), s.clock.rand()), wire.RetryAfter(err))
		s.renewal.Fail(mono, wait, err)
		if s.renewal.Fails == 1 {
			ev = event{slog.LevelWarn, "econnect: renewal failed; keeping the current token", err}
		}
	default:
		if s.tok == old && wire.Refused(err) {
			s.tok = nil // refused by the auth server itself: never hand it out again
		}
		s.suspect = false // the refusal a request saw was answered: by a login, or a renewal
		ceiling := policy.TransientCeiling
		if !wire.Transient(err) {
			ceiling = policy.RefusalCeiling
		}
		wait := policy.Jitter(policy.Doubling(s.login.Fails+1, ceiling), s.clock.rand())
		s.login.Fail(mono, max(wait, wire.RetryAfter(err)), err)
		if s.login.Fails == 1 {
			ev = event{slog.LevelWarn, "econnect: no usable token; backing off", err}
		}
	}
	if ra := wire.RetryAfter(err); ra > 0 {
		s.login.Hold(mono + ra)
		s.renewal.Hold(mono + ra)
	}
	s.publishLocked()
	s.flight, f.err = nil, err
	close(f.done)
	s.mu.Unlock()
	s.log(ev.level, ev.msg, ev.err)
}

// publishLocked makes the current token readable without the lock, unless a
// request saw it refused. s.mu is held.
func (s *source) publishLocked() {
	if s.tok == nil || s.suspect {
		s.snap.Store(nil)
		return
	}
	s.snap.Store(s.tok)
}

// ownerKey is the Extra key under which the tokens a source hands out point
// back to it. A [Transport] whose Source is a token source of this package
// finds the source directly (see sourceOf); when a wrapper of the user's
// stands between them, the token it returns still leads back to its
// source, so that the token stays on its origin and a 401 can be healed.
// The key holds a NUL so that it cannot clash with a claim's name.
const ownerKey = "econnect.source\x00"

// ownerOf returns the source that handed out t, or nil.
func ownerOf(t *oauth2.Token) *source {
	s, _ := t.Extra(ownerKey).(*source)
	return s
}

// Format prints only the username, for every verb: the source holds the
// password and tokens, and is reachable from a Client's Transport and from
// the tokens it hands out.
func (s *source) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "econnect.TokenSource{Username:%q}", s.cfg.Username)
}

// An event is a log line decided under the lock and written after it.
type event struct {
	level slog.Level
	msg   string
	err   error
}

// log reports an event to the configured logger, if any. Errors are logged
// by their text, which never holds a secret. s.mu must not be held: the
// logger may call back into the source.
func (s *source) log(level slog.Level, msg string, err error) {
	l := s.cfg.Logger
	if l == nil || msg == "" || !l.Enabled(s.ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("username", s.cfg.Username)}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.LogAttrs(context.WithoutCancel(s.ctx), level, msg, attrs...)
}
