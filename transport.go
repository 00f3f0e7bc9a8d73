package econnect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/econnect-oss/econnect/internal/policy"
	"github.com/econnect-oss/econnect/internal/wire"
	"golang.org/x/oauth2"
)

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
// allows, also through failed logins' backoffs and further transient
// failures; one whose deadline comes before the next attempt fails at once
// with the last error, and after wrong credentials the attempt's error
// comes back as soon as it is known.
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
	if t.Source == nil {
		closeBody(req)
		return nil, errors.New("econnect: Transport's Source is nil")
	}
	if s := sourceOf(t.Source); s != nil {
		return s.roundTrip(t.base(), req)
	}
	tok, err := t.Source.Token()
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r := req.Clone(req.Context())
	tok.SetAuthHeader(r)
	return t.base().RoundTrip(r)
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

// Format prints only the username, for every verb: the source holds the
// password and tokens, and is reachable from a Client's Transport.
func (s *source) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "econnect.TokenSource{Username:%q}", s.cfg.Username)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// reuse wraps s for callers. Its margin, at least the renewal window and
// twice the safety margin (the latest a renewal point can be), makes the
// wrapper ask s again from the renewal point on, so that s decides when to
// renew and what to hand out.
func (s *source) reuse() oauth2.TokenSource {
	early := s.cfg.EarlyExpiry
	if early <= 0 {
		early = policy.DefaultEarlyExpiry
	}
	return oauth2.ReuseTokenSourceWithExpiry(nil, s, max(early, 2*policy.MaxMargin))
}

// Token returns a new copy of a usable token; see current. It has no
// context to bound a wait, so it waits out only short backoffs after a
// transient failure (tokenPatience): long enough to ride out a blip, short
// enough not to hold up an oauth2 caller that cannot cancel it.
func (s *source) Token() (*oauth2.Token, error) {
	t, err := s.current(s.ctx, tokenPatience)
	if err != nil {
		return nil, err
	}
	return t.oauth2Token(extraFor(t.name)), nil
}

// sourceOf returns the source of this package behind ts, without asking ts
// for a token (that could wait for a login, or log in for a request to
// another origin): ts itself, as in Client, or the source that oauth2's
// reuse wrapper, what TokenSource returns, holds in its field "new", read
// by reflection because oauth2 exports no way to unwrap it. A test pins
// that field, so an oauth2 that renames it fails the build's tests rather
// than quietly turning hand-built Transports into plain oauth2 ones.
func sourceOf(ts oauth2.TokenSource) *source {
	if s, ok := ts.(*source); ok {
		return s // Client's: a check cheap enough to inline
	}
	return wrapped(ts)
}

// wrapped is sourceOf for a Source that is not the source itself.
func wrapped(ts oauth2.TokenSource) *source {
	v := reflect.ValueOf(ts)
	for range 4 { // a reuse wrapper around a reuse wrapper, and so on
		if reuseNew < 0 || v.Type() != reuseType || v.IsNil() {
			return nil
		}
		if v = v.Elem().Field(reuseNew); v.IsNil() {
			return nil
		}
		if v = v.Elem(); v.Type() == sourceType && !v.IsNil() {
			return (*source)(v.UnsafePointer())
		}
	}
	return nil
}

var (
	sourceType          = reflect.TypeFor[*source]()
	reuseType, reuseNew = reuseField()
)

// reuseField finds oauth2's reuse wrapper type and the index of the field
// that holds the source it wraps, or -1.
func reuseField() (reflect.Type, int) {
	rt := reflect.TypeOf(oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(&oauth2.Token{})))
	if rt.Kind() != reflect.Pointer || rt.Elem().Kind() != reflect.Struct {
		return rt, -1
	}
	f, ok := rt.Elem().FieldByName("new")
	if !ok || f.Type != reflect.TypeFor[oauth2.TokenSource]() || len(f.Index) != 1 {
		return rt, -1
	}
	return rt, f.Index[0]
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
	if !s.origin.matches(req.URL) {
		return base.RoundTrip(req) // the token stays on its origin
	}
	if s.origin.err != nil {
		closeBody(req)
		return nil, s.origin.err
	}
	tok, err := s.current(req.Context(), patient)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := base.RoundTrip(authorized(req, tok, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !s.refused(tok) {
		return resp, err
	}
	body, ok := replayBody(req)
	if !ok {
		return resp, nil
	}
	next, err := s.current(req.Context(), patient)
	if err != nil || next == tok {
		if body != nil {
			body.Close()
		}
		return resp, nil // the 401 says more than a failed login would
	}
	discard(resp)
	resp, err = base.RoundTrip(authorized(req, next, body))
	if err == nil {
		s.retried(resp.StatusCode != http.StatusUnauthorized)
	}
	return resp, err
}

// refused handles a 401 on a request that carried t, and reports whether
// the request may be retried with another token. The first 401 on the
// current token marks it unsafe, so that the next caller replaces it (one
// login however many requests saw it), unless such a replacement happened
// less than its spacing ago: then the 401 goes back as it is.
func (s *source) refused(t *token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != t || s.suspect {
		return true // replaced, or being replaced: retry with the next token
	}
	now := s.clock.mono()
	if s.relogin.Active(now) {
		return false
	}
	s.suspect = true
	s.relogin.Until = now + policy.Jitter(policy.Doubling(s.relogin.Fails+1, policy.TransientCeiling), s.clock.rand())
	s.publishLocked()
	return true
}

// retried records whether a retry after a 401 was accepted. While even fresh
// tokens are refused, the spacing of 401-driven logins doubles.
func (s *source) retried(accepted bool) {
	s.mu.Lock()
	if accepted {
		s.relogin.Fails = 0
		s.mu.Unlock()
		return
	}
	s.relogin.Fails++
	first := s.relogin.Fails == 1
	wait := policy.Jitter(policy.Doubling(s.relogin.Fails+1, policy.TransientCeiling), s.clock.rand())
	s.relogin.Hold(s.clock.mono() + wait)
	s.mu.Unlock()
	if first {
		s.log(slog.LevelWarn, "econnect: the server refused a fresh token; spacing out logins on 401", nil)
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

// discard drains a little of resp's body, so its connection can be reused,
// and closes it.
func discard(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// origin is where a source's tokens may go: BaseURL's scheme, host and
// port. The zero origin matches nothing: with a BaseURL that has no origin,
// no token is sent anywhere.
type origin struct {
	scheme, host string // as BaseURL spells them
	err          error  // non-nil: plain http the Config does not allow
}

func originOf(c *Config) origin {
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.User != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return origin{}
	}
	o := origin{scheme: u.Scheme, host: u.Host}
	if _, err := wire.ParseBase(c.BaseURL, c.AllowInsecureHTTP); errors.Is(err, ErrInsecureHTTP) {
		o.err = err
	}
	return o
}

// matches reports whether u has the origin's scheme, host and port. It runs
// on every request: the spelling of BaseURL is compared first; only another
// spelling (case, a default port written out) takes the full comparison.
// Neither allocates.
func (o *origin) matches(u *url.URL) bool {
	return o.host != "" && (u.Scheme == o.scheme && u.Host == o.host || o.respelled(u))
}

// respelled reports whether u names the origin in another spelling.
func (o *origin) respelled(u *url.URL) bool {
	ou := url.URL{Scheme: o.scheme, Host: o.host}
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
