package econnect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/econnect-oss/econnect/internal/jwtclaims"
	"github.com/econnect-oss/econnect/internal/policy"
	"github.com/econnect-oss/econnect/internal/wire"
	"golang.org/x/oauth2"
)

// This file makes the auth calls, one at a time, and turns their answers
// into tokens. When to make them is the token source's business (source.go).

// ErrBadCredentials is wrapped by the error of a login that the server
// refused with 400 Bad Request: the username or the password is wrong.
var ErrBadCredentials = errors.New("econnect: wrong username or password")

// ErrNoPassword is returned when only a login could give a token and
// [Config.Password] is empty: no login is attempted.
var ErrNoPassword = errors.New("econnect: a login is needed and Config.Password is empty")

// errPasswordNotUTF8 refuses a password that JSON would change on its way:
// the server would refuse it for certain, and count it toward the lockout.
var errPasswordNotUTF8 = configError{errors.New("econnect: Config.Password is not valid UTF-8; it would reach the server altered")}

// A configError is a Config that cannot be used as it is: no wait heals it,
// so callers do not wait for it and logins back off as after a refusal.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// Token logs in once and returns the token the server issued. It does not
// cache: most callers want [Config.TokenSource] or [Config.Client]. It
// ignores [Config.Store].
//
// The provided context optionally controls which HTTP client is used; see
// [oauth2.HTTPClient]. It also bounds the call, which never lasts longer than
// 30 seconds. The login is not hedged: nothing yet says the server accepts
// these credentials, and a second attempt would count a wrong password
// twice toward the account's lockout.
func (c *Config) Token(ctx context.Context) (*oauth2.Token, error) {
	end, _ := endpointOf(c)
	t, err := c.login(ctx, authCall{end: &end, now: wallNow, draw: rand.Float64()})
	if err != nil {
		return nil, err
	}
	return t.oauth2Token(), nil
}

// Renew makes one renewal call: it sends t, which must still be valid, to
// the server and returns the new token it issued. It does not log in; a
// refused renewal is an error whose [oauth2.RetrieveError] has status 401.
// It ignores [Config.Store].
//
// The provided context optionally controls which HTTP client is used; see
// [oauth2.HTTPClient]. It also bounds the call, which never lasts longer than
// 30 seconds.
func (c *Config) Renew(ctx context.Context, t *oauth2.Token) (*oauth2.Token, error) {
	if t == nil || t.AccessToken == "" {
		return nil, errors.New("econnect: renewal: no token to renew")
	}
	end, _ := endpointOf(c)
	old := fromOAuth2(t, wallNow(), c.EarlyExpiry, 0.5)
	nt, err := c.renew(ctx, authCall{end: &end, now: wallNow, hedge: hedgeDelay, draw: 0.5}, old)
	if err != nil {
		return nil, err
	}
	return nt.oauth2Token(), nil
}

// ParseToken returns the raw JWT s, less any white space around it, as an
// [oauth2.Token]: AccessToken the JWT, TokenType "Bearer", Expiry the JWT's
// exp claim as it is (zero when absent), and the JWT's unique_name claim as
// Extra("username"). Any character that cannot be in a JWT is an error. The
// signature is not verified: the server signs with a key clients do not
// have.
func ParseToken(s string) (*oauth2.Token, error) {
	s = strings.TrimSpace(s)
	cl, err := jwtclaims.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("econnect: %w", err)
	}
	t := &oauth2.Token{AccessToken: s, TokenType: "Bearer", Expiry: cl.Exp}
	return t.WithExtra(map[string]any{"username": cl.Name}), nil
}

// hedgeDelay is how long an auth call may go unanswered before one more
// attempt starts on a connection of its own. Logins and renewals answer in
// milliseconds on loopback and well under a second on the vendor's cloud;
// two seconds is far in the tail of a healthy server yet leaves a caller
// with a ten-second deadline time for the hedge to answer.
const hedgeDelay = 2 * time.Second

// An authCall says how one login or renewal is made: to which endpoint, on
// which clock, hedged after how long (zero: never), and where the new
// token's renewal point falls in its window (the source's draw).
type authCall struct {
	end   *endpoint
	now   func() time.Time
	hedge time.Duration
	draw  float64
}

// wire returns the exchange of a to baseURL, which a.end has checked, on
// the context's HTTP client.
func (a authCall) wire(ctx context.Context, baseURL string) wire.Call {
	base, _ := url.Parse(baseURL) // parsed again, rather than kept by every idle source
	return wire.Call{Client: contextClient(ctx), Base: base, Now: a.now, Hedge: a.hedge,
		BadCredentials: ErrBadCredentials}
}

// login makes one login call.
func (c *Config) login(ctx context.Context, a authCall) (*token, error) {
	switch {
	case a.end.err != nil:
		return nil, a.end.err
	case c.Password == "":
		return nil, ErrNoPassword
	case !utf8.ValidString(c.Password):
		return nil, errPasswordNotUTF8
	}
	ans, err := a.wire(ctx, c.BaseURL).Login(ctx, c.Username, c.Password)
	if err != nil {
		return nil, err
	}
	return newToken(ans, nil, c.EarlyExpiry, a.draw)
}

// renew makes one renewal call with old.
func (c *Config) renew(ctx context.Context, a authCall, old *token) (*token, error) {
	if a.end.err != nil {
		return nil, a.end.err
	}
	ans, err := a.wire(ctx, c.BaseURL).Renew(ctx, old.raw())
	if err != nil {
		return nil, err
	}
	return newToken(ans, old, c.EarlyExpiry, a.draw)
}

// maxIatSkew is how far from the local clock an iat claim may be before it
// is ignored: past it, the claim is not a time this server issued the token
// at (iat = 0 would make a one-hour token last decades).
const maxIatSkew = 24 * time.Hour

// newToken turns an answer into a token. The lifetime exp − iat is counted
// from the local time the request was sent, so that a server clock minutes
// off the local one changes nothing. The server truncates iat to the second,
// so the token may have been issued up to a second after iat: the lifetime
// is shortened by that second (by half for tokens of two seconds or less),
// so that no token is handed out after a strict server considers it expired.
// An answer that repeats old's JWT keeps old's expiry: counting it again
// from now would extend its life.
func newToken(a wire.Answer, old *token, early time.Duration, draw float64) (*token, error) {
	if old != nil && a.Token == old.raw() {
		return old, nil
	}
	expiry, life := lifeOf(a)
	if !expiry.IsZero() && (life <= 0 || !expiry.After(a.Received)) {
		return nil, &wire.AnswerError{Op: opName(old), What: "token expired on arrival"}
	}
	return makeToken(a.Token, a.Username, policy.NewTiming(expiry, life, early, draw)), nil
}

// lifeOf returns when the token of a expires on the local clock, and its
// lifetime counted from the send time (see newToken).
func lifeOf(a wire.Answer) (expiry time.Time, life time.Duration) {
	cl := a.Claims
	switch {
	case cl.Exp.IsZero():
		return time.Time{}, 0
	case cl.Iat.IsZero() || cl.Iat.Sub(a.Sent).Abs() > maxIatSkew:
		return cl.Exp, cl.Exp.Sub(a.Sent)
	}
	life = cl.Exp.Sub(cl.Iat)
	if cl.Iat.Nanosecond() == 0 {
		life -= min(time.Second, life/2)
	}
	return a.Sent.Add(life), life
}

func opName(old *token) string {
	if old == nil {
		return "login"
	}
	return "renewal"
}

// token is a JWT with what the source needs to know about it. It is never
// modified once made, so that readers need no lock.
type token struct {
	header  string // "Bearer " + the JWT: the JWT is its suffix, held once
	timing  policy.Timing
	renewAt int64          // timing.RenewAt() in Unix nanoseconds, for the lock-free read
	extra   map[string]any // the Extra of every oauth2.Token made from it, the user name; never written
}

const bearer = "Bearer "

func makeToken(raw, name string, tm policy.Timing) *token {
	t := &token{header: bearer + raw, timing: tm, renewAt: math.MaxInt64, // never, without an expiry
		extra: map[string]any{"username": name}}
	if !tm.Expiry.IsZero() {
		t.renewAt = tm.RenewAt().UnixNano()
	}
	return t
}

func (t *token) raw() string { return t.header[len(bearer):] }

// claims returns the JWT's claims; zero for a token that is not a JWT.
func (t *token) claims() jwtclaims.Claims {
	cl, _ := jwtclaims.Parse(t.raw())
	return cl
}

// username is the name the server gave with the token.
func (t *token) username() string {
	name, _ := t.extra["username"].(string)
	return name
}

// oauth2Token returns a new value each call, because oauth2.ReuseTokenSource
// writes into the tokens it receives.
func (t *token) oauth2Token() *oauth2.Token {
	o := &oauth2.Token{AccessToken: t.raw(), TokenType: "Bearer", Expiry: t.timing.Expiry}
	return o.WithExtra(t.extra)
}

// fromOAuth2 turns a saved token into a token, or nil when it has no access
// token. Its lifetime comes from the JWT when it carries exp and iat, else
// it is taken as the time left.
func fromOAuth2(t *oauth2.Token, now time.Time, early time.Duration, draw float64) *token {
	if t == nil || t.AccessToken == "" {
		return nil
	}
	cl, _ := jwtclaims.Parse(t.AccessToken) // a saved token need not be a JWT
	expiry := t.Expiry.Round(0)
	if expiry.IsZero() {
		expiry = cl.Exp
	}
	var life time.Duration
	switch {
	case expiry.IsZero():
	case !cl.Exp.IsZero() && !cl.Iat.IsZero() && cl.Exp.After(cl.Iat):
		life = cl.Exp.Sub(cl.Iat)
	default:
		life = expiry.Sub(now)
	}
	name, _ := t.Extra("username").(string)
	if name == "" {
		name = cl.Name
	}
	return makeToken(t.AccessToken, name, policy.NewTiming(expiry, life, early, draw))
}
