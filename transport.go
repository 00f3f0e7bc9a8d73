package econnect

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Client returns an HTTP client that authenticates requests to BaseURL's
// origin with a token it logs in for, renews and replaces as
// [Config.TokenSource] does. Requests to other origins, and redirects to
// them, carry no token. When the server answers 401 (after a restart, a key
// rotation or a revoked session), the client drops the refused token once,
// logs in again, and retries the request once if its body can be replayed.
// If the server refuses even the new token, later 401s come back as they are
// for a while (1 s doubling to 30 s), so that an endpoint refusing every
// token cannot cause a login per request.
//
// The client builds on the context's client (see [oauth2.HTTPClient]): its
// Transport is the base, and its Timeout, Jar and CheckRedirect are kept.
// The context also bounds every later login and renewal, so it must outlive
// the client. Make one client and share it: each call to Client starts a
// token source of its own, which logs in again. The returned client and its
// Transport should not be modified.
func (c *Config) Client(ctx context.Context) *http.Client {
	hc := contextClient(ctx)
	return &http.Client{
		Transport:     &Transport{Source: newSource(ctx, c, nil), Base: hc.Transport},
		CheckRedirect: hc.CheckRedirect,
		Jar:           hc.Jar,
		Timeout:       hc.Timeout,
	}
}

func contextClient(ctx context.Context) *http.Client {
	if ctx != nil {
		if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
			return hc
		}
	}
	return http.DefaultClient
}

// Transport is an [http.RoundTripper] that adds an Authorization header
// with a token from Source to each request, as [oauth2.Transport] does, and
// then sends it with Base. It never modifies the caller's request.
//
// When Source is one made by this package ([Config.TokenSource],
// [Config.TokenSourceFrom]), Transport also does what [Config.Client] does:
// it sends the token only to BaseURL's origin, and on a 401 it drops the
// refused token, gets a new one and retries the request once if its body can
// be replayed.
type Transport struct {
	// Source supplies the tokens. It must not be nil.
	Source oauth2.TokenSource

	// Base sends the requests. If nil, [http.DefaultTransport] is used.
	Base http.RoundTripper
}

// RoundTrip authorizes and sends req. It implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Source == nil {
		closeBody(req)
		return nil, errors.New("econnect: Transport's Source is nil")
	}
	s, ok := t.Source.(*source)
	if !ok {
		tok, err := t.Source.Token()
		if err != nil {
			closeBody(req)
			return nil, err
		}
		if s = ownerOf(tok); s == nil {
			r := req.Clone(req.Context())
			tok.SetAuthHeader(r)
			return t.base().RoundTrip(r)
		}
	}
	return s.roundTrip(t.base(), req)
}

// CloseIdleConnections closes the idle connections of Base, if it has a
// CloseIdleConnections method, so that [http.Client.CloseIdleConnections]
// reaches it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// closeBody closes the request body, as a RoundTripper must even when it
// fails before sending.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// roundTrip sends req with the current token if it goes to BaseURL's origin,
// and heals a 401 with one new token and at most one retry.
func (s *source) roundTrip(base http.RoundTripper, req *http.Request) (*http.Response, error) {
	if s.origin != nil && !sameOrigin(req.URL, s.origin) {
		return base.RoundTrip(req) // the token stays on its origin
	}
	tok, err := s.current(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := base.RoundTrip(authorized(req, tok, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !s.refused(tok.raw) {
		return resp, err
	}
	body, ok := replayBody(req)
	if !ok {
		return resp, nil
	}
	if tok, err = s.current(req.Context()); err != nil {
		if body != nil {
			body.Close()
		}
		return resp, nil // the 401 says more than a failed login would
	}
	discard(resp)
	resp, err = base.RoundTrip(authorized(req, tok, body))
	if err == nil {
		s.retried(resp.StatusCode != http.StatusUnauthorized)
	}
	return resp, err
}

// authorized returns a copy of req carrying tok and body.
func authorized(req *http.Request, tok *token, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", tok.header)
	return r
}

// replayBody returns a fresh copy of req's body, if it can be had.
func replayBody(req *http.Request) (io.ReadCloser, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req.Body, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	return body, err == nil
}

// discard drains a little of resp's body, so its connection can be reused,
// and closes it.
func discard(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// sameOrigin reports whether a and b have the same scheme, host and port,
// without allocating: it runs on every request.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b)
}

// port returns u's port, or the scheme's default one.
func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}
