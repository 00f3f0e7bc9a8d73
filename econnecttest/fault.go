package econnecttest

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing/iotest"
	"time"
)

// Fault is an injected answer from the login or renewal endpoint, queued by
// [Server.FailLogin] or [Server.FailRenew], or drawn at random as
// [Server.SetChaos] says.
//
// The answer is first held as Delay, Wait, Hang and Freeze say; a held answer is
// dropped, the connection closed without a word, when the client gives up
// or the server closes. With Reset, the connection is then dropped anyway.
// Then, if Status and Body are both zero, the endpoint answers normally
// (with Header added), so a Fault of only Delay or Wait slows a real answer.
// Otherwise the answer is Status, Header and Body. Cut and Half spoil
// whichever answer it is on its way out.
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
	// Header holds extra answer headers, such as Location for a redirect or
	// Retry-After for a 429 or 503.
	Header http.Header
	// Body is the raw answer body: garbage, oversized, not JSON, anything.
	// If empty while Status is set, the body is a short text,
	// "injected fault". Its Content-Type is "application/json;
	// charset=utf-8", as the server's real answers have, unless Header sets
	// one.
	Body string
	// Reset drops the connection without an answer once the answer has
	// been held, as a crashed server or a proxy resetting the connection
	// would. Status, Header, Body, Cut and Half are then ignored.
	Reset bool
	// Cut sends the answer's headers, with a Content-Length that promises
	// its whole body, then the first half of the body, and drops the
	// connection: the client reads an unexpected EOF.
	Cut bool
	// Half sends the first half of the answer's body as if it were the
	// whole, with a Content-Length to match: a well-formed answer whose
	// JSON stops in the middle.
	Half bool
	// Freeze black-holes the connection the call arrived on, as a network
	// path that drops every packet would: from then on nothing more is
	// read from it or written to it, for any request on it (over HTTP/2,
	// every stream of the connection), until the client closes it or the
	// server closes. The call itself is never answered. A client that
	// tries again on the same connection waits in vain; one that makes a
	// fresh connection is answered normally, which [Stats].Connections
	// shows. Go's HTTP/1.1 client closes the connection of a request it
	// gives up on; its HTTP/2 client keeps the connection, and closes it
	// only through its health check (SendPingTimeout of
	// [http.HTTP2Config]). Every other field is then ignored.
	Freeze bool
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

// faults holds what goes wrong at the login or the renewal endpoint: the
// faults queued for its next calls, then the chaos it draws from.
type faults struct {
	queue faultQueue
	chaos chaos
}

// next returns the fault of the next call, if it has one.
func (fs *faults) next() (Fault, bool) {
	if f, ok := fs.queue.next(); ok {
		return f, true
	}
	return fs.chaos.draw()
}

// auth wraps h, the normal answer of an auth endpoint, in what comes before
// and after it: the call is counted in counter, waits the latency and gets
// the next fault of fs, if any, which answers instead of h or spoils its
// answer. An answer given up on while held aborts the handler. The counter
// and fs are guarded by s.mu.
func (s *Server) auth(fs *faults, counter *int, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Read the body before holding the answer: net/http notices that a
		// client gave up only once the request body has been read.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, authLimit))
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil { // the bytes read, then the error that ended the read
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), iotest.ErrReader(err)))
		}
		f, faulted := s.arrive(r.Context(), fs, counter)
		switch {
		case !faulted:
			h(w, r)
		case f.Reset:
			abort()
		case f.Cut || f.Half:
			spoil(w, r, f, answerOf(f, h))
		default:
			maps.Copy(w.Header(), f.Header.Clone())
			answerOf(f, h).ServeHTTP(w, r)
		}
	}
}

// arrive counts a call, takes its fault, if any, waits the latency, and
// holds the answer as the fault says. A wait given up on aborts the handler.
func (s *Server) arrive(ctx context.Context, fs *faults, counter *int) (Fault, bool) {
	s.mu.Lock()
	f, faulted := fs.next()
	if faulted && f.Freeze {
		// Before the count shows the call: a test that waited for the
		// count knows the connection is frozen.
		s.freeze(ctx)
	}
	s.bump(counter)
	latency := s.latency
	s.mu.Unlock()
	if !s.pause(ctx, latency) || faulted && !s.hold(ctx, f) {
		abort()
	}
	return f, faulted
}

// answerOf returns the handler of the answer f gives: h, the normal answer,
// when f has no Status or Body, else the fault's own answer.
func answerOf(f Fault, h http.HandlerFunc) http.Handler {
	if f.Status == 0 && f.Body == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeFault(w, f) })
}

// spoil records the answer of h to r with f's headers, and sends it cut or
// halved as f says.
func spoil(w http.ResponseWriter, r *http.Request, f Fault, h http.Handler) {
	rec := httptest.NewRecorder()
	maps.Copy(rec.Header(), f.Header.Clone())
	h.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	half := body[:len(body)/2]
	length := len(body) // Cut promises the whole body
	if f.Half {
		length = len(half)
	}
	maps.Copy(w.Header(), rec.Header())
	w.Header().Set("Content-Length", strconv.Itoa(length))
	w.WriteHeader(rec.Code)
	w.Write(half)
	if f.Cut {
		// Flush what was written, or net/http would drop it with the
		// connection.
		http.NewResponseController(w).Flush()
		abort()
	}
}

// hold holds the answer as f says, and reports false if it was abandoned.
func (s *Server) hold(ctx context.Context, f Fault) bool {
	switch {
	case f.Freeze: // nothing it answered would reach the client
		s.wait(ctx, nil)
		return false
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
