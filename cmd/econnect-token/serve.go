package main

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"time"
)

// shutdownGrace is how long the requests in flight may take to finish
// after SIGINT or SIGTERM.
const shutdownGrace = 10 * time.Second

// serve serves h on ln until ctx ends, then lets the requests in flight
// finish, for up to shutdownGrace, and returns ctx's cause. what names the
// server in its messages.
func serve(ctx context.Context, ln net.Listener, h http.Handler, what string, p *process) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: time.Minute,
		ErrorLog:          log.New(p.stderr, "econnect-token: "+what+": ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	p.say("%s: stopping; letting the requests in flight finish (up to %s)", what, shutdownGrace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
		p.warn("%s: some requests had not finished after %s; cutting them off", what, shutdownGrace)
		srv.Close()
	}
	<-served
	return context.Cause(ctx)
}
