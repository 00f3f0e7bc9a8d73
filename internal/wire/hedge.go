package wire

import (
	"crypto/tls"
	"net/http"
	"slices"
)

// A hedge is only worth making on a connection of its own: the connection
// an unanswered attempt holds, or its siblings in the pool, may be dead. So
// the hedge gets a transport of its own, cloned from the client's, that
// speaks HTTP/1.1 on one new connection without keep-alives, so that the
// connection closes with the attempt, won, lost or cancelled. HTTP/1.1, because an HTTP/2 transport may hand the request to a pool
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

// freshClient returns hc, following no redirect, on a transport of its own
// that sends its request on a new connection (dialled as hc's transport
// dials, the clone keeping its dialers) and keeps none open after it, and
// a func that closes what it may still hold; false where canHedge is
// false.
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
	nc := noRedirects(hc)
	nc.Transport = ft
	return nc, ft.CloseIdleConnections, true
}
