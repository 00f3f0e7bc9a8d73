package econnecttest

import (
	"context"
	"fmt"
	"sync"
)

// Stats counts what a [Server] has seen. Every counter of requests counts
// the requests received, injected faults included, except Refused.
type Stats struct {
	// Logins counts requests to POST {Prefix}/api/v1/authenticate.
	Logins int
	// Renewals counts requests to GET {Prefix}/api/v1/renewToken.
	Renewals int
	// Refused counts the answers 400 for a wrong username or password and
	// 401 for a missing, invalid or expired token, given by the server's own
	// checks; injected faults and malformed requests are not counted.
	Refused int
	// APICalls counts requests to protected endpoints: the publish endpoint
	// and handlers mounted with [Server.Handle].
	APICalls int
	// Connections counts the connections the server accepted, whatever
	// came of them: a client that made a fresh connection shows here.
	Connections int
}

// Stats returns the counts of what the server has seen so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// WaitFor blocks until cond holds for the server's [Stats], or ctx ends;
// then it returns an error wrapping ctx.Err(). It checks cond at once and
// after every change of a counter, with no lock of the server held, so
// cond may call the server's methods. Tests use it to wait for a request
// to arrive, instead of polling Stats.
func (s *Server) WaitFor(ctx context.Context, cond func(Stats) bool) error {
	return waitFor(ctx, &s.mu, &s.changed, func() Stats { return s.stats }, cond)
}

// waitFor blocks until cond holds for what read returns, checked at once
// and after every broadcast of sg, or until ctx ends. read runs with mu
// held, cond without, so that it may call methods that lock mu.
func waitFor[T any](ctx context.Context, mu *sync.Mutex, sg *signal, read func() T, cond func(T) bool) error {
	for {
		mu.Lock()
		v := read()
		changed := sg.wait()
		mu.Unlock()
		if cond(v) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("econnecttest: WaitFor: %w", ctx.Err())
		}
	}
}

// count adds one to a counter of s.stats.
func (s *Server) count(counter *int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bump(counter)
}

// bump adds one to a counter of s.stats and wakes WaitFor. s.mu must be
// held.
func (s *Server) bump(counter *int) {
	*counter++
	s.changed.broadcast()
}

// signal wakes the goroutines waiting for a change. Its zero value is
// ready to use; whoever uses it guards it with a mutex of theirs.
type signal struct {
	ch chan struct{} // closed by broadcast; nil until someone waits
}

// wait returns a channel that the next broadcast closes.
func (sg *signal) wait() <-chan struct{} {
	if sg.ch == nil {
		sg.ch = make(chan struct{})
	}
	return sg.ch
}

// broadcast closes the channel of wait, if anyone took it.
func (sg *signal) broadcast() {
	if sg.ch != nil {
		close(sg.ch)
		sg.ch = nil
	}
}
