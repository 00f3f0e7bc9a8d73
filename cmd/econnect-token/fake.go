package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/econnect-oss/econnect/econnecttest"
)

// fakeUser is the account of econnect-token fake.
const fakeUser = "camera-1"

// runFake is econnect-token fake: an econnecttest server on -listen until
// SIGINT or SIGTERM.
func runFake(ctx context.Context, o *options, p *process) error {
	ln, where, err := listen(o.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	srv := econnecttest.NewServer()
	defer srv.Close()
	password := rand.Text() // base32: A-Z and 2-7
	srv.AddUser(fakeUser, password)
	srv.SetLifetime(o.lifetime)
	// One write: a script reads the three lines as soon as they are out.
	if _, err := fmt.Fprintf(p.stdout, "ECONNECT_URL=%s%s\nECONNECT_USERNAME=%s\nECONNECT_PASSWORD=%s\n",
		where, srv.Prefix, fakeUser, password); err != nil {
		return fmt.Errorf("writing the server's settings: %w", err)
	}
	p.say("fake: an eConnect server at %s%s, user %s, tokens live %s; stop it with SIGINT or SIGTERM",
		where, srv.Prefix, fakeUser, o.lifetime)
	return serve(ctx, ln, forwarder(srv), "fake", p)
}

// forwarder passes requests on to srv, which listens on a port of its own:
// econnecttest chooses where its servers listen.
func forwarder(srv *econnecttest.Server) http.Handler {
	target, _ := url.Parse(srv.URL)
	target.Path = ""
	return &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport:     srv.Client().Transport,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0), // a client that gave up
	}
}
