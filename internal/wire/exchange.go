package wire

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/econnect-oss/econnect/internal/secret"
)

// A result is what one attempt of an auth call came to.
type result struct {
	a       Answer
	err     error
	started time.Time
}

// exchange makes the auth call that build describes, within Timeout. If an
// attempt has not answered within c.Hedge, one more starts on a connection
// of its own: the first good answer wins and the other is cancelled. At
// most two attempts are ever in flight. A failed attempt ends the call
// unless the other one is still young enough to be worth waiting for. The
// call ends as soon as ctx does. secret is the password or token the
// request carries, kept out of every error.
func (c Call) exchange(ctx context.Context, op, secret string, build func(context.Context) *http.Request) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel() // cancels the attempt that lost, if any
	results := make(chan result, 2)
	start := func(hc *http.Client, done func()) time.Time {
		at := time.Now()
		go func() {
			defer done()
			a, err := c.attempt(ctx, op, secret, build, hc)
			results <- result{a, err, at}
		}()
		return at
	}
	first := start(noRedirects(c.Client), func() {})
	hedge, stop := c.hedgeTimer()
	defer stop()
	pending, other := 1, time.Time{}
	for {
		select {
		case <-hedge:
			hc, done, _ := freshClient(c.Client)
			hedge, pending, other = nil, pending+1, start(hc, done)
		case r := <-results:
			pending--
			if r.err == nil || pending == 0 || ctx.Err() != nil || !worthWaiting(r, first, other, c.Hedge) {
				return r.a, r.err
			}
		case <-ctx.Done():
			return Answer{}, fmt.Errorf("econnect: %s: %w", op, ctx.Err())
		}
	}
}

// hedgeTimer returns a channel that fires when the call is to be hedged,
// or nil when it is not to be: no hedge delay, or a client that cannot give
// an attempt a connection of its own.
func (c Call) hedgeTimer() (<-chan time.Time, func()) {
	if c.Hedge <= 0 || !canHedge(c.Client) {
		return nil, func() {}
	}
	t := time.NewTimer(c.Hedge)
	return t.C, func() { t.Stop() }
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

// attempt sends one request with hc and reads its answer.
func (c Call) attempt(ctx context.Context, op, secret string, build func(context.Context) *http.Request, hc *http.Client) (Answer, error) {
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
		return Answer{}, c.refusal(op, resp, body, secret)
	}
	if len(body) > MaxAnswer {
		return Answer{}, &AnswerError{Op: op, What: "larger than 1 MiB"}
	}
	return decode(op, body, sent, c.Now())
}

// noRedirects returns a copy of hc that follows no redirect: a 307 or 308
// would replay the password to wherever it points.
func noRedirects(hc *http.Client) *http.Client {
	nc := *hc
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// redactedBody is the refusal body kept for a RetrieveError.
func redactedBody(body []byte, s string) []byte {
	return secret.Redact(body, MaxErrorBody, s)
}
