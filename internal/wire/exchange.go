package wire

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// A result is what one attempt of an auth call came to.
type result struct {
	a       Answer
	err     error
	started time.Time
}

// exchange makes the auth call that build describes, within Timeout. If an
// attempt has not answered within c.Hedge, one more starts on a fresh
// connection: the first good answer wins and the other is cancelled. At most
// two attempts are ever in flight. A failed attempt ends the call unless the
// other one is still young enough to be worth waiting for. secret is the
// password or token the request carries, kept out of every error.
func (c Call) exchange(ctx context.Context, op, secret string, build func(context.Context) *http.Request) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel() // cancels the attempt that lost, if any
	results := make(chan result, 2)
	start := func(fresh bool) time.Time {
		at := time.Now()
		go func() {
			a, err := c.attempt(ctx, op, secret, build, fresh)
			results <- result{a, err, at}
		}()
		return at
	}
	first := start(false)
	var hedge <-chan time.Time
	if c.Hedge > 0 {
		t := time.NewTimer(c.Hedge)
		defer t.Stop()
		hedge = t.C
	}
	pending, other := 1, time.Time{}
	for {
		select {
		case <-hedge:
			hedge, pending, other = nil, pending+1, start(true)
		case r := <-results:
			pending--
			if r.err == nil || pending == 0 || ctx.Err() != nil || !worthWaiting(r, first, other, c.Hedge) {
				return r.a, r.err
			}
		}
	}
}

// worthWaiting reports whether, after r failed, the attempt still in flight
// may yet answer: it may unless it has gone unanswered for a hedge delay
// already, or r's failure is a definite answer from the server.
func worthWaiting(r result, first, second time.Time, hedge time.Duration) bool {
	if !Transient(r.err) || RetryAfter(r.err) > 0 {
		return false
	}
	inFlight := first
	if r.started.Equal(first) {
		inFlight = second
	}
	return time.Since(inFlight) < hedge
}

// attempt sends one request and reads its answer. A fresh attempt uses a
// connection of its own, since the one an unanswered call holds, or its
// siblings in the pool, may be dead.
func (c Call) attempt(ctx context.Context, op, secret string, build func(context.Context) *http.Request, fresh bool) (Answer, error) {
	hc, done := noRedirects(c.Client, fresh)
	defer done()
	req := build(ctx)
	sent := c.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("econnect: %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		return Answer{}, fmt.Errorf("econnect: %s: reading the answer: %w", op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Answer{}, refusal(op, resp, body, secret, c.Now())
	}
	if len(body) > MaxAnswer {
		return Answer{}, &AnswerError{Op: op, What: "larger than 1 MiB"}
	}
	return decode(op, body, sent, c.Now())
}

// noRedirects returns hc made to follow no redirect: a 307 or 308 would
// replay the password to wherever it points. When fresh, it also gets a
// connection pool of its own, closed by done.
func noRedirects(hc *http.Client, fresh bool) (*http.Client, func()) {
	nc := *hc
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if !fresh {
		return &nc, func() {}
	}
	base := nc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	t, ok := base.(*http.Transport)
	if !ok {
		return &nc, func() {}
	}
	ft := t.Clone()
	nc.Transport = ft
	return &nc, ft.CloseIdleConnections
}
