package econnecttest

import (
	"context"
	"io"
	"maps"
	"net/http"
	"time"
)

// Fault is an injected answer from the login or renewal endpoint, queued by
// [Server.FailLogin] or [Server.FailRenew].
//
// The answer is first held as Delay, Wait and Hang say; a held answer is
// dropped, the connection closed without a word, when the client gives up
// or the server closes. Then, if Status and Body are both zero, the endpoint
// answers normally (with Header added), so a Fault of only Delay or Wait
// slows a real answer. Otherwise the answer is Status, Header and Body.
type Fault struct {
	// Wait, if not nil, holds the answer until the channel is closed.
	Wait <-chan struct{}
	// Delay holds the answer this long.
	Delay time.Duration
	// Hang holds the answer for ever: only the client giving up or the
	// server closing ends it.
	Hang bool
	// Status is the status of the answer; if zero while Body is set, 200.
	Status int
	// Header holds extra answer headers, such as Location for a redirect.
	Header http.Header
	// Body is the raw answer body: garbage, oversized, not JSON, anything.
	// If empty while Status is set, the body is a short text,
	// "injected fault". Its Content-Type is "application/json;
	// charset=utf-8", as the server's real answers have, unless Header sets
	// one.
	Body string
}

// faultQueue is the fault of the next n calls to an endpoint.
type faultQueue struct {
	f Fault
	n int
}

func newFaultQueue(n int, f Fault) faultQueue {
	// Clone the header: the caller may change it while handlers read it.
	f.Header = f.Header.Clone()
	return faultQueue{f: f, n: n}
}

// next takes a fault from the queue, if any is left.
func (q *faultQueue) next() (Fault, bool) {
	if q.n <= 0 {
		return Fault{}, false
	}
	q.n--
	return q.f, true
}

// arrive does what comes before the normal answer of an auth endpoint: it
// adds one to counter, takes a fault from q, waits the latency and serves
// the fault. It reports whether the normal answer must follow; an answer
// given up on while held aborts the handler. The counter and q are guarded
// by s.mu.
func (s *Server) arrive(w http.ResponseWriter, r *http.Request, q *faultQueue, counter *int) bool {
	s.mu.Lock()
	*counter++
	f, faulted := q.next()
	latency := s.latency
	s.mu.Unlock()
	if !s.pause(r.Context(), latency) || faulted && !s.hold(r.Context(), f) {
		abort()
	}
	if !faulted {
		return true
	}
	maps.Copy(w.Header(), f.Header.Clone())
	if f.Status == 0 && f.Body == "" {
		return true
	}
	writeFault(w, f)
	return false
}

// hold holds the answer as f says, and reports false if it was abandoned.
func (s *Server) hold(ctx context.Context, f Fault) bool {
	switch {
	case !s.pause(ctx, f.Delay):
		return false
	case f.Wait != nil && !s.wait(ctx, f.Wait):
		return false
	case f.Hang:
		s.wait(ctx, nil)
		return false
	}
	return true
}

// pause waits d, and reports false if the request ended or the server
// closed first.
func (s *Server) pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	return wait(ctx, s.closed, t.C)
}

// wait waits for ch to be closed, and reports false if the request ended or
// the server closed first. A nil ch waits for those alone.
func (s *Server) wait(ctx context.Context, ch <-chan struct{}) bool {
	return wait(ctx, s.closed, ch)
}

func wait[T any](ctx context.Context, closed <-chan struct{}, ch <-chan T) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	case <-closed:
		return false
	}
}

// abort ends the handler without an answer. Returning would make net/http
// send a 200 with an empty body, which a held answer must never become;
// net/http recovers this panic silently and drops the connection.
func abort() {
	panic(http.ErrAbortHandler)
}

// writeFault writes the status and body of f.
func writeFault(w http.ResponseWriter, f Fault) {
	status, body, ctype := f.Status, f.Body, "application/json; charset=utf-8"
	if status == 0 {
		status = http.StatusOK
	}
	if body == "" {
		body, ctype = "injected fault\n", "text/plain; charset=utf-8"
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}
