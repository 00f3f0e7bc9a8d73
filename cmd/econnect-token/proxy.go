package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// maxReplay is the largest request body the proxy holds in memory, so that
// a request refused with 401 can be sent once more with a new token.
const maxReplay = 16 << 20

// flushGrace is how long a stopping proxy waits for the cache to be
// written: a save takes milliseconds, and a renewal under way is not worth
// waiting for.
const flushGrace = 2 * time.Second

// runProxy is econnect-token proxy: a reverse proxy to -url that adds the
// token to every request, on -listen, until SIGINT or SIGTERM.
func runProxy(ctx context.Context, o *options, p *process) error {
	ln, where, err := listen(o.listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if err := o.readPassword(ctx, p); err != nil {
		return err
	}
	// A login whatever the cache holds: a wrong password must end the
	// proxy now, not at its first login hours later.
	o.fresh = true
	// The sources outlive the signal, for the requests still in flight.
	life, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	g, err := newGetter(life, o, p)
	if err != nil {
		return err
	}
	defer g.hc.CloseIdleConnections()
	// The source shares the cache with the runs of scripts: the tokens it
	// renews or gets after a 401 are theirs too.
	ts, _, err := g.obtainWithin(ctx)
	if err != nil {
		return err
	}
	flushWithin(ctx, ts, o.timeout) // the token is cached by the time the proxy listens
	h := newProxy(o.base, g.transport(ts), p)
	p.say("proxy listening on %s", where)
	p.warn("any local process that can connect to %s calls the API as %s through it", where, o.user)
	o.warnInsecure(p)
	err = serve(ctx, ln, h, "proxy", p)
	flushWithin(life, ts, flushGrace) // a save under way, for the next run
	return err
}

// newProxy returns the proxy's handler: requests go to base through rt,
// which adds the token.
func newProxy(base *url.URL, rt http.RoundTripper, p *process) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.Header.Del("Authorization") // rt sets the proxy's own
		},
		Transport:     rt,
		FlushInterval: -1, // a slow or streamed answer goes out as it comes
		ErrorHandler:  proxyError(p),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := holdBody(r); err != nil {
			http.Error(w, "econnect-token proxy: could not read the request's body", http.StatusBadRequest)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// holdBody reads r's body into memory if its length is known and at most
// maxReplay, and sets GetBody, so that the transport can send it again
// after a 401. Any other body streams.
func holdBody(r *http.Request) error {
	if r.ContentLength <= 0 || r.ContentLength > maxReplay {
		return nil
	}
	body := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return err
	}
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.Body, _ = r.GetBody()
	return nil
}

// proxyError answers a request that could not be sent: 503 while the
// server is unavailable, else 502, with a short text that holds no secret
// (the library's errors hold none either; they go to stderr).
func proxyError(p *process) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() != nil {
			return // the client went away
		}
		code, what := http.StatusBadGateway, "the server refused the proxy's login or request"
		if exitCode(err) == exitUnavailable {
			code, what = http.StatusServiceUnavailable, "the server is unavailable; try again later"
		}
		p.say("proxy: %s %s: answered %d: %v", r.Method, r.URL.Path, code, err)
		http.Error(w, "econnect-token proxy: "+what, code)
	}
}
