package econnect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strings"

	"golang.org/x/oauth2"
)

// This file is where requests meet tokens: Client and Transport, the 401
// path that heals a refused token, and the endpoint, which says where the
// password and tokens may go.

// ErrInsecureHTTP is wrapped by the refusal of a plain http:// BaseURL to a
// host that is not loopback, made before any network I/O, and by the
// refusal to send a token to such an origin, because the password and
// tokens would cross the network in clear text. Set
// [Config.AllowInsecureHTTP] to permit it.
var ErrInsecureHTTP = errors.New("econnect: plain http to a host that is not loopback")

// Client returns an HTTP client that authenticates requests to BaseURL's
// origin with a token it logs in for, renews and replaces as
// [Config.TokenSource] does. Requests to other origins, and redirects to
// them, carry no token; with a BaseURL that has no origin, no request does.
// When the server answers 401 (after a restart, a key rotation or a revoked
// session), the client drops the refused token once, logs in again, and
// retries the request once if its body can be replayed; without a Password
// it renews the token instead. Such logins happen at most once a second, and
// less often while the server refuses even fresh tokens (1 s doubling to
// 30 s), so that no pattern of 401s can cause a login per request.
//
// A request that needs a token waits for it as long as its own context
// allows, and 30 seconds at most without a deadline, also through failed
// logins' backoffs; one whose deadline comes before the next attempt fails
// at once with the last error, and so does every request while the failure
// is one that waiting cannot heal (wrong credentials, an untrusted
// certificate, plain http refused).
//
// An auth call that has not answered within 2 seconds is hedged by one more
// attempt, over HTTP/1.1 on a connection of its own, cloned from the
// context client's Transport when that is an [*http.Transport]; behind any
// other (a tracing or retrying wrapper) no connection of its own can be
// had, and calls are not hedged. A login is hedged only once the server has
// accepted these credentials, so that a slow server never counts a wrong
// password twice toward the account's lockout.
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

// Transport is an [http.RoundTripper] that adds an Authorization header
// with a token from Source to each request, as [oauth2.Transport] does, and
// then sends it with Base. It never modifies the caller's request.
//
// When Source is one made by this package ([Config.TokenSource],
// [Config.TokenSourceFrom]), Transport does all that [Config.Client] does:
// it sends the token only to BaseURL's origin and never asks the source for
// a token for another origin, the request's context bounds the wait for a
// token, and on a 401 it drops the refused token, gets a new one and retries
// the request once if its body can be replayed.
type Transport struct {
	// Source supplies the tokens. It must not be nil.
	Source oauth2.TokenSource

	// Base sends the requests. If nil, [http.DefaultTransport] is used.
	Base http.RoundTripper
}

// RoundTrip authorizes and sends req. It implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if s := sourceOf(t.Source); s != nil {
		return s.roundTrip(t.base(), req)
	}
	return t.plain(req)
}

// plain is RoundTrip around a source of another kind, as oauth2.Transport
// does it. The body is closed unless Base took it, even when Source panics.
func (t *Transport) plain(req *http.Request) (*http.Response, error) {
	sent := false
	defer func() {
		if !sent {
			closeBody(req)
		}
	}()
	if t.Source == nil || isNilPointer(t.Source) {
		return nil, errors.New("econnect: Transport's Source is nil")
	}
	tok, err := t.Source.Token()
	if err != nil {
		return nil, err
	}
	r := req.Clone(req.Context())
	tok.SetAuthHeader(r)
	sent = true
	return t.base().RoundTrip(r)
}

// isNilPointer reports whether ts is a typed nil pointer: a source that
// cannot be asked for a token.
func isNilPointer(ts oauth2.TokenSource) bool {
	v := reflect.ValueOf(ts)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// CloseIdleConnections closes the idle connections of Base, if it has a
// CloseIdleConnections method, so that [http.Client.CloseIdleConnections]
// reaches it.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Format prints the Transport's field types only, for every verb: fmt
// would otherwise walk its Source, and a live Base's connections while they
// change.
func (t *Transport) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "&econnect.Transport{Source:%T, Base:%T}", t.Source, t.Base)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// roundTrip sends req with the current token if it goes to BaseURL's origin,
// and heals a 401 with one new token and at most one retry.
func (s *source) roundTrip(base http.RoundTripper, req *http.Request) (*http.Response, error) {
	if !s.end.matches(req.URL) {
		return base.RoundTrip(req) // the token stays on its origin
	}
	tok, err := s.forRequest(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := base.RoundTrip(authorized(req, tok, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !s.refused(tok) {
		return resp, err
	}
	return s.retry(base, req, resp, tok)
}

// forRequest returns a token for req, which goes to the origin: none if
// the origin refuses tokens (plain http not allowed).
func (s *source) forRequest(req *http.Request) (*token, error) {
	if s.end.err != nil {
		return nil, s.end.err
	}
	return s.current(req.Context(), untilDeadline)
}

// retry sends req again with the token that replaced refused, if its body
// can be replayed and one comes; else resp, the 401, goes back as it is:
// it says more than a failed login would. A 401 on the retry counts as a
// refusal of the new token and goes back, unless that token came from the
// store rather than the server (a peer's, which the server may refuse as
// it refused ours): then the request is retried once more, with the token
// the refusal brings.
func (s *source) retry(base http.RoundTripper, req *http.Request, resp *http.Response, refused *token) (*http.Response, error) {
	for range 2 {
		body, ok := replayBody(req)
		if !ok {
			return resp, nil
		}
		next, err := s.current(req.Context(), untilDeadline)
		if err != nil || next == refused {
			if body != nil {
				body.Close()
			}
			return resp, nil
		}
		// Closed, not drained: a server holding the refused body open would
		// stall the retry.
		resp.Body.Close()
		resp, err = base.RoundTrip(authorized(req, next, body))
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			if err == nil {
				s.healed()
			}
			return resp, err
		}
		if !s.refused(next) || s.fromServer(next) {
			return resp, nil
		}
		refused = next
	}
	return resp, nil
}

// closeBody closes the request body, as a RoundTripper must even when it
// fails before sending.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
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

// sourceOf returns the source of this package behind ts, without asking ts
// for a token (that could wait for a login, or log in for a request to
// another origin): ts itself, as in Client, or the source inside oauth2's
// reuse wrapper, what TokenSource returns. It is nil for any other source.
func sourceOf(ts oauth2.TokenSource) *source {
	if s, ok := ts.(*source); ok {
		return s // Client's, or nil for a typed nil: a check cheap enough to inline
	}
	return reuseLayout.unwrap(ts)
}

// A layout is how oauth2's reuse wrapper holds the source it wraps: its
// type and the index of the field. oauth2 exports no way to unwrap it, so
// the package reads that field by reflection, once it has verified at
// start-up where the field is: a wrapper made around a probe source must
// hold that very probe in exactly one field of the TokenSource type. When
// that cannot be verified (a newer oauth2 in the user's build holds it some
// other way), the layout is unknown and fails closed: TokenSource returns
// the package's own source unwrapped, and unwrap finds nothing.
type layout struct {
	typ   reflect.Type
	field int // -1: unknown
}

var reuseLayout = probeLayout(func(ts oauth2.TokenSource) oauth2.TokenSource {
	return oauth2.ReuseTokenSourceWithExpiry(nil, ts, 0)
})

// probeLayout finds where the wrappers that wrap makes hold their source.
func probeLayout(wrap func(oauth2.TokenSource) oauth2.TokenSource) layout {
	probe := &source{}
	v := reflect.ValueOf(wrap(probe))
	unknown := layout{field: -1}
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return unknown
	}
	found := unknown
	tsType := reflect.TypeFor[oauth2.TokenSource]()
	for i := range v.Elem().NumField() {
		f := v.Elem().Field(i)
		if f.Type() != tsType || f.IsNil() || f.Elem().Type() != sourceType {
			continue
		}
		if (*source)(f.Elem().UnsafePointer()) != probe || found.field >= 0 {
			return unknown // another value, or the probe twice: not the layout we know
		}
		found = layout{typ: v.Type(), field: i}
	}
	return found
}

var sourceType = reflect.TypeFor[*source]()

// known reports whether the layout was verified.
func (l layout) known() bool { return l.field >= 0 }

// unwrap returns the source of this package that ts, a wrapper of this
// layout, holds, or nil.
func (l layout) unwrap(ts oauth2.TokenSource) *source {
	v := reflect.ValueOf(ts)
	if !l.known() || !v.IsValid() || v.Type() != l.typ || v.IsNil() {
		return nil
	}
	f := v.Elem().Field(l.field)
	if f.IsNil() || f.Elem().Type() != sourceType {
		return nil
	}
	return (*source)(f.Elem().UnsafePointer())
}

// An endpoint is where a Config's auth calls go and its tokens may go,
// checked once: BaseURL parsed, its origin, and why it cannot be used, if
// it cannot. The zero origin matches nothing: with a BaseURL that has no
// origin, no token is sent anywhere.
type endpoint struct {
	scheme, host string // the origin, as BaseURL spells it; "" for none
	err          error  // non-nil: no auth call is made and no token sent
}

// endpointOf checks c's BaseURL: an absolute http or https URL without
// credentials, plain http only to loopback unless c allows it. Its errors
// never repeat the URL, nor url.Parse's, which quote the parts that might
// hold a password. It also returns BaseURL parsed, nil if it cannot be.
func endpointOf(c *Config) (endpoint, *url.URL) {
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil:
		return endpoint{err: configError{errors.New("econnect: BaseURL is not a URL")}}, nil
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return endpoint{err: configError{errors.New("econnect: BaseURL must be an absolute http or https URL")}}, nil
	case u.User != nil:
		return endpoint{err: configError{errors.New("econnect: BaseURL must not hold credentials; use Username and Password")}}, nil
	}
	e := endpoint{scheme: u.Scheme, host: u.Host}
	if u.Scheme == "http" && !c.AllowInsecureHTTP && !isLoopback(u.Hostname()) {
		e.err = configError{fmt.Errorf("%w (%s) would expose the password and tokens; use https, or set Config.AllowInsecureHTTP",
			ErrInsecureHTTP, u.Host)}
	}
	return e, u
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// matches reports whether u has the origin's scheme, host and port. It runs
// on every request: the spelling of BaseURL is compared first; only another
// spelling (case, a default port written out) takes the full comparison.
// Neither allocates.
func (e *endpoint) matches(u *url.URL) bool {
	return e.host != "" && (u.Scheme == e.scheme && u.Host == e.host || e.respelled(u))
}

// respelled reports whether u names the origin in another spelling.
func (e *endpoint) respelled(u *url.URL) bool {
	ou := url.URL{Scheme: e.scheme, Host: e.host}
	return strings.EqualFold(u.Scheme, ou.Scheme) &&
		strings.EqualFold(u.Hostname(), ou.Hostname()) &&
		port(u) == port(&ou)
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

func contextClient(ctx context.Context) *http.Client {
	if ctx != nil {
		if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
			return hc
		}
	}
	return http.DefaultClient
}
