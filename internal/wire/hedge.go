package wire

//lint:file-ignore SA1019 a user's transport may still set the deprecated Dial and DialTLS: the hedge dials as that transport would, and closes what they dialled

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// A hedge is only worth making on a connection of its own: the connection
// an unanswered attempt holds, or its siblings in the pool, may be dead. So
// the hedge gets a transport of its own, cloned from the client's, that
// speaks HTTP/1.1 on one new connection and closes it when the attempt is
// over. HTTP/1.1, because an HTTP/2 transport may hand the request to a pool
// it shares with the first attempt (x/net/http2's ConfigureTransport
// registers the clone's connections in the original's pool). A client
// whose transport is not an *http.Transport (a tracing or retrying wrapper)
// cannot be given a new connection below its wrapper: its calls are not
// hedged. The hedge heals the auth call, not the pool: a request sent after
// it on an HTTP/2 connection that stopped answering can still ride that
// connection, until the transport's own HTTP/2 health check
// (http.HTTP2Config.SendPingTimeout) closes it.

// canHedge reports whether an attempt through hc can be given a connection
// of its own.
func canHedge(hc *http.Client) bool {
	_, ok := transportOf(hc)
	return ok
}

func transportOf(hc *http.Client) (*http.Transport, bool) {
	if hc.Transport == nil {
		t, ok := http.DefaultTransport.(*http.Transport)
		return t, ok
	}
	t, ok := hc.Transport.(*http.Transport)
	return t, ok
}

// freshClient returns hc, following no redirect, on a transport that sends
// its request on a new connection, and a func that closes every connection
// that transport opened; false where canHedge is false.
func freshClient(hc *http.Client) (*http.Client, func(), bool) {
	t, ok := transportOf(hc)
	if !ok {
		return nil, nil, false
	}
	ft := t.Clone()
	ft.DisableKeepAlives = true
	ft.ForceAttemptHTTP2 = false
	ft.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
	var p http.Protocols
	p.SetHTTP1(true)
	ft.Protocols = &p
	if ft.TLSClientConfig != nil {
		ft.TLSClientConfig.NextProtos = slices.DeleteFunc(slices.Clone(ft.TLSClientConfig.NextProtos),
			func(proto string) bool { return proto == "h2" })
	}
	var conns opened
	ft.DialContext, ft.Dial = conns.track(dialerOf(t)), nil
	if dialTLS := tlsDialerOf(t); dialTLS != nil {
		ft.DialTLSContext, ft.DialTLS = conns.track(dialTLS), nil
	}
	nc := noRedirects(hc)
	nc.Transport = ft
	return nc, func() { ft.CloseIdleConnections(); conns.closeAll() }, true
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// dialerOf returns how t dials, as http.Transport itself would choose.
func dialerOf(t *http.Transport) dialFunc {
	switch {
	case t.DialContext != nil:
		return t.DialContext
	case t.Dial != nil:
		return func(_ context.Context, network, addr string) (net.Conn, error) { return t.Dial(network, addr) }
	}
	return (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
}

// tlsDialerOf returns t's own TLS dialer, or nil when t does TLS itself.
func tlsDialerOf(t *http.Transport) dialFunc {
	switch {
	case t.DialTLSContext != nil:
		return t.DialTLSContext
	case t.DialTLS != nil:
		return func(_ context.Context, network, addr string) (net.Conn, error) { return t.DialTLS(network, addr) }
	}
	return nil
}

// opened records the connections a hedge's transport dials, so that none
// outlives the attempt, whether it won, lost or was cancelled mid-answer.
type opened struct {
	mu    sync.Mutex // guards conns and done
	conns []net.Conn
	done  bool
}

func (o *opened) track(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.done { // dialled after the attempt was over
			c.Close()
			return nil, net.ErrClosed
		}
		o.conns = append(o.conns, c)
		return c, nil
	}
}

func (o *opened) closeAll() {
	o.mu.Lock()
	conns := o.conns
	o.conns, o.done = nil, true
	o.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
