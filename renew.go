package econnect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Renew makes one renewal call: it sends t, which must still be valid, to
// the server and returns the new token it issued. It does not log in; a
// refused renewal is an error whose [oauth2.RetrieveError] has status 401.
//
// The provided context optionally controls which HTTP client is used; see
// [oauth2.HTTPClient]. It also bounds the call, which never lasts longer than
// 30 seconds.
func (c *Config) Renew(ctx context.Context, t *oauth2.Token) (*oauth2.Token, error) {
	if t == nil || t.AccessToken == "" {
		return nil, errors.New("econnect: renewal: no token to renew")
	}
	nt, err := c.renew(ctx, t.AccessToken, wallClock)
	if err != nil {
		return nil, err
	}
	return nt.oauth2Token(), nil
}

// renew makes one renewal call with the JWT raw.
func (c *Config) renew(ctx context.Context, raw string, now func() time.Time) (*token, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "api/v1/renewToken", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+raw)
	return c.exchange(req, "renewal", raw, now)
}

// The renewal policy, as pure functions of the current time. L is the
// token's lifetime; a token with zero expiry never expires.

// safetyMargin is min(10 s, L/10): a token with less left is not handed out.
func safetyMargin(t *token) time.Duration {
	return min(maxSafetyMargin, t.lifetime/10)
}

// usable reports whether t may be handed out at now.
func usable(t *token, now time.Time) bool {
	if t == nil {
		return false
	}
	left := t.expiry.Sub(now)
	return t.expiry.IsZero() || left > 0 && left >= safetyMargin(t)
}

// expired reports whether t can no longer be renewed at now.
func expired(t *token, now time.Time) bool {
	return !t.expiry.IsZero() && !now.Before(t.expiry)
}

// renewDue reports whether t's remaining life at now has dropped below
// min(early, L/2), its renewal point.
func renewDue(t *token, now time.Time, early time.Duration) bool {
	if t.expiry.IsZero() {
		return false
	}
	return t.expiry.Sub(now) < min(early, t.lifetime/2)
}

// renewRetryDelay is how long a background renewal that failed for a
// transient reason waits before the next try: clamp(remaining/4, 1 s, 30 s).
func renewRetryDelay(t *token, now time.Time) time.Duration {
	return min(max(t.expiry.Sub(now)/4, time.Second), 30*time.Second)
}

// loginBackoff is how long calls fail fast after the nth failed login in a
// row: 1 s doubling to 30 s, or to 5 minutes when the server refused the
// credentials, so that a wrong password in a busy loop cannot lock the
// account. jitter in [0, 1) spreads it by ±20%.
func loginBackoff(n int, err error, jitter float64) time.Duration {
	ceiling := 30 * time.Second
	if !transient(err) {
		ceiling = 5 * time.Minute
	}
	d := ceiling
	if n < 20 {
		d = min(time.Second<<(n-1), ceiling)
	}
	return jittered(d, jitter)
}

// transient reports whether err may pass by itself: a network failure, a
// timeout, or an answer 408, 429 or 5xx.
func transient(err error) bool {
	var ae *authError
	if errors.As(err, &ae) {
		return ae.code == http.StatusRequestTimeout || ae.code == http.StatusTooManyRequests || ae.code >= 500
	}
	var be *answerError
	return !errors.As(err, &be) && !errors.Is(err, errNoPassword) && !errors.Is(err, context.Canceled)
}

// source is the token source behind TokenSource, TokenSourceFrom and Client.
// It is safe for concurrent use by multiple goroutines.
type source struct {
	cfg    Config
	ctx    context.Context
	now    func() time.Time
	rand   func() float64 // in [0, 1), for jitter
	early  time.Duration
	origin *url.URL // BaseURL, for its scheme, host and port; nil when it is not a URL

	mu sync.Mutex // guards the fields below
	// tok is the current token, or nil.
	tok *token
	// flight is the login or renewal under way, or nil; at most one runs.
	flight *flight
	// renewAfter is when the next background renewal may start, after one
	// failed for a transient reason; renewFails counts such failures in a row.
	renewAfter time.Time
	renewFails int
	// failErr is the last failed fetch's error, returned at once until
	// failUntil; fails counts such failures in a row.
	failErr   error
	failUntil time.Time
	fails     int
	// reloginAfter is when a 401 may again drop the token, after even a
	// fresh token was refused; refusals counts such retries in a row.
	reloginAfter time.Time
	refusals     int

	wg sync.WaitGroup // flights under way, so tests can wait for them
}

// A flight is one login or renewal, shared by every caller waiting for it.
type flight struct {
	done chan struct{} // closed when the flight ends
	err  error         // set before done is closed
}

func newSource(ctx context.Context, c *Config, t *token) *source {
	if ctx == nil {
		ctx = context.Background()
	}
	s := &source{
		cfg:   *c,
		ctx:   ctx,
		now:   wallClock,
		rand:  rand.Float64,
		early: c.earlyExpiry(),
	}
	if u, err := url.Parse(c.BaseURL); err == nil && u.Host != "" {
		s.origin = u
	}
	if t != nil {
		s.tok = s.own(t)
	}
	return s
}

// reuse wraps s for callers. Its margin, at least the renewal window and the
// safety margin, makes the wrapper ask s again from the renewal point on, so
// that s decides when to renew and what to hand out.
func (s *source) reuse() oauth2.TokenSource {
	return oauth2.ReuseTokenSourceWithExpiry(nil, s, max(s.early, maxSafetyMargin))
}

// Token returns a new copy of a usable token; see current.
func (s *source) Token() (*oauth2.Token, error) {
	t, err := s.current(s.ctx)
	if err != nil {
		return nil, err
	}
	return t.oauth2Token(), nil
}

// current returns a usable token. While one exists it never waits: a due
// renewal starts in the background. Otherwise it waits, until ctx ends, for
// the login or renewal under way, starting one if none is, so that any
// number of concurrent callers cause a single call.
func (s *source) current(ctx context.Context) (*token, error) {
	var lastErr error
	for {
		s.mu.Lock()
		now := s.now()
		if t := s.tok; usable(t, now) {
			if renewDue(t, now, s.early) && s.flight == nil && !now.Before(s.renewAfter) && s.ctx.Err() == nil {
				s.startLocked(t)
			}
			s.mu.Unlock()
			return t, nil
		}
		if lastErr != nil {
			s.mu.Unlock()
			return nil, lastErr
		}
		if s.flight == nil {
			if err := s.failedLocked(now); err != nil {
				s.mu.Unlock()
				return nil, err
			}
			s.startLocked(s.tok)
		}
		f := s.flight
		s.mu.Unlock()
		select {
		case <-f.done:
			lastErr = f.err
		case <-ctx.Done():
			return nil, fmt.Errorf("econnect: waiting for a token: %w", ctx.Err())
		}
	}
}

// failedLocked returns the last fetch's error while its backoff lasts, and
// an error without any call when the source's context has ended.
// s.mu is held.
func (s *source) failedLocked(now time.Time) error {
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("econnect: %w", err)
	}
	if s.failErr != nil && now.Before(s.failUntil) {
		return s.failErr
	}
	return nil
}

// startLocked starts a flight that renews or replaces old. The flight runs
// on its own goroutine, so that a caller that stops waiting does not cancel
// it for the others; it ends within the auth call deadline. s.mu is held.
func (s *source) startLocked(old *token) {
	f := &flight{done: make(chan struct{})}
	s.flight = f
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t, err := s.fetch(old)
		s.finish(f, t, err)
	}()
}

// fetch renews old while it is valid and logs in otherwise. A renewal that
// fails for a transient reason while old is still usable is not followed by
// a login: the caller keeps old and tries again later. Any other failed
// renewal is followed by a login, if there is a password.
func (s *source) fetch(old *token) (*token, error) {
	if old != nil && !expired(old, s.now()) {
		t, err := s.cfg.renew(s.ctx, old.raw, s.now)
		if err == nil || s.cfg.Password == "" || errors.Is(err, context.Canceled) ||
			transient(err) && usable(old, s.now()) {
			return t, err
		}
		s.log(slog.LevelInfo, "econnect: renewal failed; logging in again", err)
		s.drop(old.raw) // a refused token is not handed out while the login runs
	}
	if s.cfg.Password == "" {
		return nil, errors.New("econnect: token expired and Config.Password is empty, so no login is possible")
	}
	return s.cfg.login(s.ctx, s.now)
}

// finish records the outcome of a flight and releases its waiters. A failure
// that leaves a usable token schedules the next renewal; one that leaves
// none makes callers fail fast for a backoff.
func (s *source) finish(f *flight, t *token, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer close(f.done)
	s.flight, f.err = nil, err
	now := s.now()
	switch {
	case err == nil:
		if s.fails > 0 || s.renewFails > 0 {
			s.log(slog.LevelInfo, "econnect: recovered", nil)
		}
		s.tok, s.fails, s.failErr, s.renewFails, s.renewAfter = s.own(t), 0, nil, 0, time.Time{}
		s.log(slog.LevelDebug, "econnect: new token", nil, slog.Time("expiry", t.expiry))
	case usable(s.tok, now):
		s.renewFails++
		wait := jittered(renewRetryDelay(s.tok, now), s.rand())
		s.renewAfter = now.Add(wait)
		if s.renewFails == 1 {
			s.log(slog.LevelWarn, "econnect: renewal failed; keeping the current token", err, slog.Duration("retry_in", wait))
		}
	case errors.Is(err, context.Canceled):
	default:
		s.fails++
		wait := loginBackoff(s.fails, err, s.rand())
		s.failErr, s.failUntil = err, now.Add(wait)
		if s.fails == 1 {
			s.log(slog.LevelWarn, "econnect: no token; backing off", err, slog.Duration("backoff", wait))
		}
	}
}

// jittered spreads d by ±20%; r is in [0, 1).
func jittered(d time.Duration, r float64) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*r))
}

// drop forgets the token raw if it is still the current one, so that the
// next caller logs in again.
func (s *source) drop(raw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(raw)
}

// dropLocked is drop with s.mu held.
func (s *source) dropLocked(raw string) {
	if s.tok != nil && s.tok.raw == raw {
		s.tok, s.renewAfter = nil, time.Time{}
	}
}

// refused handles a 401 on a request that carried the token raw: it drops
// raw, once however many requests saw it, and reports whether the request
// may be retried with a new token. It reports false while re-logins are
// backing off because the server refused even a fresh token: an endpoint
// that answers 401 to every token must not cause a login per request.
func (s *source) refused(raw string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.now().Before(s.reloginAfter) {
		return false
	}
	s.dropLocked(raw)
	return true
}

// retried records whether a retry after a 401 was accepted. A refused one
// backs off later re-logins by 1 s doubling to 30 s.
func (s *source) retried(accepted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if accepted {
		s.refusals = 0
		return
	}
	s.refusals++
	wait := jittered(min(time.Second<<min(s.refusals-1, 5), 30*time.Second), s.rand())
	s.reloginAfter = s.now().Add(wait)
	if s.refusals == 1 {
		s.log(slog.LevelWarn, "econnect: the server refused a fresh token; backing off re-logins on 401", nil, slog.Duration("backoff", wait))
	}
}

// ownerKey is the Extra key under which a source's tokens point back to it,
// so that a hand-built Transport can ask it directly and drop refused tokens.
const ownerKey = "econnect.source\x00"

// own marks t as handed out by s. t is not yet shared.
func (s *source) own(t *token) *token {
	t.tmpl = t.tmpl.WithExtra(map[string]any{"username": t.tmpl.Extra("username"), ownerKey: s})
	return t
}

// ownerOf returns the source that handed out t, or nil.
func ownerOf(t *oauth2.Token) *source {
	s, _ := t.Extra(ownerKey).(*source)
	return s
}

// Format prints only the username: the source holds the password and
// tokens, and is reachable as the Source of a Client's Transport.
func (s *source) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "econnect.TokenSource{Username:%q}", s.cfg.Username)
}

// log reports an event to the configured logger. Errors are logged by their
// text, which never holds a secret.
func (s *source) log(level slog.Level, msg string, err error, attrs ...slog.Attr) {
	l := s.cfg.Logger
	if l == nil || !l.Enabled(s.ctx, level) {
		return
	}
	attrs = append(attrs, slog.String("username", s.cfg.Username))
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	l.LogAttrs(context.WithoutCancel(s.ctx), level, msg, attrs...)
}
