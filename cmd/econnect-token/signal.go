package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// interruption is the cause of a context cancelled by a signal.
type interruption struct {
	sig  os.Signal
	name string
	num  int
}

func (s *interruption) Error() string { return "interrupted by " + s.name }
func (s *interruption) code() int     { return exitSignal + s.num }

// notifySignals returns a context cancelled, with an *interruption as its
// cause, by the first SIGINT or SIGTERM. Catching the signal rather than
// dying of it lets a cache write under way finish or clean up, the proxy
// finish the requests in flight, and exec pass the signal on to its
// command. A second signal kills the process.
func notifySignals(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			signal.Stop(ch)
			cancel(newInterruption(sig))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

func newInterruption(sig os.Signal) *interruption {
	if sig == syscall.SIGTERM {
		return &interruption{sig: sig, name: "SIGTERM", num: int(syscall.SIGTERM)}
	}
	return &interruption{sig: os.Interrupt, name: "SIGINT", num: int(syscall.SIGINT)}
}

// signalOf returns the signal that cancelled ctx, or nil.
func signalOf(ctx context.Context) *interruption {
	var s *interruption
	if errors.As(context.Cause(ctx), &s) {
		return s
	}
	return nil
}
