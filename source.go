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
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/econnect-oss/econnect/internal/policy"
	"github.com/econnect-oss/econnect/internal/wire"
	"golang.org/x/oauth2"
)

// A Store keeps tokens outside the process, so that they survive a restart
// and can be shared by processes that log in as the same user to the same
// server (see [Config.Store]). Values are opaque bytes of the package's own
// format, at most 64 KiB, never holding the password; the package computes
// the keys, printable strings without path separators. A Store must be safe
// for concurrent use and return by the deadline of the context it is given.
type Store interface {
	// Load returns the value saved under key: an error for which
	// errors.Is(err, ErrNotStored) holds when there is none.
	Load(ctx context.Context, key string) ([]byte, error)
	// Save replaces the value under key. The value is of no use after
	// ttl; the store may drop it then.
	Save(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes the value under key; a missing value is not an error.
	Delete(ctx context.Context, key string) error
}

// A Locker is a [Store] that can keep processes sharing it from calling the
// server at the same time. Lock blocks until it holds the lock on key or
// ctx is done; the lock lapses after ttl even if unlock is never called,
// and unlock may be called more than once. A Store that wraps another must
// implement Locker itself to forward it, or the lease is lost.
type Locker interface {
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error)
}

// ErrNotStored is what a [Store]'s Load returns, wrapped or not, when it
// holds no value under the key. It is [fs.ErrNotExist], as for certmagic's
// storage, so that a store over files reports a missing file as it is.
var ErrNotStored = fs.ErrNotExist

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
// Its Token method has no context: while logins back off, it waits for the
// next attempt only when that is at most 2 seconds away after a transient
// failure, and otherwise returns the last error at once. A request through
// [Config.Client] or a [Transport] around this source waits as long as its
// own context allows.
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
	return newSource(ctx, c, t).reuse()
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
	origin origin // where tokens may go
	// draw places each token's renewal point in its window: once per
	// source, not per token, so that sources that logged in together drift
	// apart with every lifetime instead of meeting again mid-window.
	draw float64

	// snap is tok unless a request saw it refused; current reads it
	// without the lock until its renewal point.
	snap atomic.Pointer[token]

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

// newSource returns a source for c, starting from saved if it is not nil.
func newSource(ctx context.Context, c *Config, saved *oauth2.Token) *source {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg := *c
	s := &source{cfg: &cfg, ctx: ctx, clock: systemClock, origin: originOf(c), draw: rand.Float64()}
	s.tok = fromOAuth2(saved, s.clock.wall(), c.EarlyExpiry, s.draw)
	s.publishLocked()
	return s
}

// current returns a usable token. While one exists it never waits: a due
// renewal starts in the background. Otherwise it waits, until ctx ends, for
// the flight under way, starting one if none is, so that any number of
// concurrent callers cause a single call. While logins back off, a caller
// waits for the next attempt if it comes within patience and ctx allows,
// and after a transient failure for the one after; else it fails at once
// with the last error. The attempts are the backoff's: waiting adds none.
func (s *source) current(ctx context.Context, patience time.Duration) (*token, error) {
	if t := s.snap.Load(); t != nil && s.readNow().Before(t.renewAt) {
		return t, nil // fresh: the common case, without the lock
	}
	return s.decide(ctx, patience)
}

// How long callers wait out a login backoff: a request as long as its
// context allows; Token, which has none, only short ones after a transient
// failure.
const (
	patient       = time.Duration(math.MaxInt64)
	tokenPatience = 2 * time.Second
)

// readNow is the wall clock for current's lock-free read: with the system
// clock, time.Now itself, without the indirect call (Before compares wall
// readings, renewAt having no monotonic one).
func (s *source) readNow() time.Time {
	if s.clock == systemClock {
		return time.Now()
	}
	return s.clock.wall()
}

// decide is current past its lock-free read: the one switch on the state.
func (s *source) decide(ctx context.Context, patience time.Duration) (*token, error) {
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
		case waited != nil && waited.err != nil && (patience == 0 || !wire.Transient(waited.err)):
			s.mu.Unlock()
			return nil, waited.err // the result of the attempt this caller waited for
		case s.flight == nil && s.cfg.Password == "" && (st == policy.None || st == policy.Expired):
			s.mu.Unlock()
			return nil, errNoPassword
		case s.flight == nil && s.login.Active(mono):
			err, wait := s.lastErrLocked(), s.login.Until-mono
			s.mu.Unlock()
			if wait > patience || patience < patient && !wire.Transient(err) || !allows(ctx, wait) {
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
	return cmp.Or(s.login.Err, s.renewal.Err, errHeld)
}

var errHeld = errors.New("econnect: no token yet; auth calls are held by the server's Retry-After")

// startLocked starts a flight that gets a token for a source in state st.
// The flight runs on its own goroutine, so that a caller that stops waiting
// does not cancel it for the others. s.mu is held.
func (s *source) startLocked(st policy.State) {
	f, old := &flight{done: make(chan struct{})}, s.tok
	s.flight = f
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
		if err == nil || s.cfg.Password == "" || !s.replaceable(old, err) {
			return t, err
		}
		s.log(slog.LevelInfo, "econnect: renewal failed; logging in again", err)
	}
	return s.cfg.login(s.ctx, s.clock, s.clock.hedge, s.draw)
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
	t, err := s.cfg.renew(ctx, old, s.clock, min(s.clock.hedge, left/2), s.draw)
	if err != nil && ctx.Err() == context.DeadlineExceeded && s.ctx.Err() == nil {
		return nil, errUnusable
	}
	return t, err
}

var (
	// errSameToken is a renewal answered with the token it renewed.
	errSameToken = errors.New("econnect: renewal: the server answered the same token")
	// errUnusable ends a renewal that lasted until its token could no
	// longer be handed out.
	errUnusable = errors.New("econnect: renewal: no answer while the token was usable")
)

// replaceable reports whether old, whose renewal failed with err, is to be
// replaced by a login now: the server refused it (then it is dropped, so
// that nobody gets it while the login runs), or it can no longer be used.
func (s *source) replaceable(old *token, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wire.Refused(err) && s.tok == old {
		s.tok = nil
		s.publishLocked()
	}
	return s.tok != old || err == errUnusable || !s.stateLocked(s.clock.wall()).Usable()
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
//	                        credentials; the server's Retry-After if any
//
// The logger is called after the lock is released.
func (s *source) finish(f *flight, old, t *token, err error) {
	s.mu.Lock()
	wall, mono := s.clock.wall(), s.clock.mono()
	var ev event
	switch {
	case err == nil:
		ev = event{slog.LevelDebug, "econnect: new token", nil}
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
		wait := cmp.Or(wire.RetryAfter(err), policy.Doubling(s.login.Fails+1, ceiling))
		s.login.Fail(mono, policy.Jitter(wait, s.clock.rand()), err)
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
