package econnect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/econnect-oss/econnect/internal/jwtclaims"
	"github.com/econnect-oss/econnect/internal/policy"
	"github.com/econnect-oss/econnect/internal/wire"
	"golang.org/x/oauth2"
)

// ErrBadCredentials is wrapped by the error of a login that the server
// refused with 400 Bad Request: the username or the password is wrong.
var ErrBadCredentials = wire.ErrBadCredentials

// ErrInsecureHTTP is wrapped by the refusal of a plain http:// BaseURL to a
// host that is not loopback, made before any network I/O, and by the
// refusal to send a token to such an origin, because the password and
// tokens would cross the network in clear text. Set
// [Config.AllowInsecureHTTP] to permit it.
var ErrInsecureHTTP = wire.ErrInsecureHTTP

// errNoPassword is returned when only a login could help and
// Config.Password is empty: no login is attempted.
var errNoPassword = errors.New("econnect: a login is needed and Config.Password is empty")

// Config describes how to reach an eConnect Identities server and whom to log
// in as. A Config is a plain value: build it as a literal. Its methods do not
// modify it, and sources made from it keep a copy, so later changes to the
// Config do not affect them.
type Config struct {
	// BaseURL is the service root, with or without a trailing slash:
	// "https://customer.econnectcloud.com/identities" in the cloud,
	// "https://host:5009" on premises. API paths are joined to it, keeping
	// its path. Tokens are sent only to its origin (scheme, host, port).
	BaseURL string

	// Username is the account to log in as.
	Username string

	// Password is the account's password. If empty, the Config is for
	// token-only use (see [Config.TokenSourceFrom]) and never logs in.
	Password string

	// EarlyExpiry is how long before a token expires the source renews it.
	// Tokens that live less than twice as long are renewed at half their
	// lifetime instead. Each source draws once where in the last quarter of
	// that window it renews, so that sources which logged in together do
	// not renew together; and never later than twice the safety margin
	// (min(10 s, lifetime/10)) before expiry. If zero or negative, 5 minutes.
	EarlyExpiry time.Duration

	// AllowInsecureHTTP permits a plain http:// BaseURL to a host that is
	// not loopback. Without it, such a BaseURL is refused before any
	// network I/O (see [ErrInsecureHTTP]).
	AllowInsecureHTTP bool

	// Logger optionally reports logins, renewals, fallbacks to a new login
	// and backoffs: one warning per failure streak, never one per call. It
	// never sees the password or a token, and is never called with a lock
	// held, so it may call back into the source. If nil, nothing is logged.
	Logger *slog.Logger

	// Store, if set, keeps the tokens of sources made from this Config
	// outside the process, so that they survive a restart and are shared
	// by the processes that use it (see [Store]). If nil, tokens live in
	// memory only.
	Store Store
}

// Token logs in once and returns the token the server issued. It does not
// cache: most callers want [Config.TokenSource] or [Config.Client].
//
// The provided context optionally controls which HTTP client is used; see
// [oauth2.HTTPClient]. It also bounds the call, which never lasts longer than
// 30 seconds.
func (c *Config) Token(ctx context.Context) (*oauth2.Token, error) {
	t, err := c.login(ctx, systemClock, hedgeDelay, rand.Float64())
	if err != nil {
		return nil, err
	}
	return t.oauth2Token(map[string]any{"username": t.name}), nil
}

// Renew makes one renewal call: it sends t, which must still be valid, to
// the server and returns the new token it issued. It does not log in; a
// refused renewal is an error whose [oauth2.RetrieveError] has status 401.
//
// The provided context optionally controls which HTTP client is used; see
// [oauth2.HTTPClient]. It also bounds the call, which never lasts longer than
// 30 seconds.
func (c *Config) Renew(ctx context.Context, t *oauth2.Token) (*oauth2.Token, error) {
	if t == nil || t.AccessToken == "" {
		return nil, errors.New("econnect: renewal: no token to renew")
	}
	old := fromOAuth2(t, systemClock.wall(), c.EarlyExpiry, 0.5)
	nt, err := c.renew(ctx, old, systemClock, hedgeDelay, 0.5)
	if err != nil {
		return nil, err
	}
	return nt.oauth2Token(map[string]any{"username": nt.name}), nil
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
// attempt starts on a fresh connection. Logins and renewals answer in
// milliseconds on loopback and well under a second on the vendor's cloud;
// two seconds is far in the tail of a healthy server yet leaves a caller
// with a ten-second deadline time for the hedge to answer.
const hedgeDelay = 2 * time.Second

// login makes one login call.
func (c *Config) login(ctx context.Context, clk *clock, hedge time.Duration, draw float64) (*token, error) {
	if c.Password == "" {
		return nil, errNoPassword
	}
	call, err := c.call(ctx, clk, hedge)
	if err != nil {
		return nil, err
	}
	a, err := call.Login(ctx, c.Username, c.Password)
	if err != nil {
		return nil, err
	}
	return newToken(a, nil, c.EarlyExpiry, draw)
}

// renew makes one renewal call with old, hedged after hedge. draw places
// the new token's renewal point in its window.
func (c *Config) renew(ctx context.Context, old *token, clk *clock, hedge time.Duration, draw float64) (*token, error) {
	call, err := c.call(ctx, clk, hedge)
	if err != nil {
		return nil, err
	}
	a, err := call.Renew(ctx, old.raw())
	if err != nil {
		return nil, err
	}
	return newToken(a, old, c.EarlyExpiry, draw)
}

func (c *Config) call(ctx context.Context, clk *clock, hedge time.Duration) (wire.Call, error) {
	base, err := wire.ParseBase(c.BaseURL, c.AllowInsecureHTTP)
	if err != nil {
		return wire.Call{}, err
	}
	return wire.Call{Client: contextClient(ctx), Base: base, Now: clk.wall, Hedge: hedge}, nil
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
func newToken(a wire.Answer, old *token, early time.Duration, r float64) (*token, error) {
	if old != nil && a.Token == old.raw() {
		return old, nil
	}
	cl := a.Claims
	expiry, life := cl.Exp, cl.Exp.Sub(a.Sent)
	switch {
	case cl.Exp.IsZero():
		life = 0
	case !cl.Iat.IsZero() && cl.Iat.Sub(a.Sent).Abs() <= maxIatSkew:
		life = cl.Exp.Sub(cl.Iat)
		if cl.Iat.Nanosecond() == 0 {
			life -= min(time.Second, life/2)
		}
		expiry = a.Sent.Add(life)
	}
	if !expiry.IsZero() && (life <= 0 || !expiry.After(a.Received)) {
		return nil, &wire.AnswerError{Op: opName(old), What: "token expired on arrival"}
	}
	return makeToken(a.Token, a.Username, policy.NewTiming(expiry, life, early, r)), nil
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
	name    string // the user name
	timing  policy.Timing
	renewAt time.Time // timing.RenewAt(), for the lock-free read
}

const bearer = "Bearer "

// never is a renewal point for tokens that never expire.
var never = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

func makeToken(raw, name string, tm policy.Timing) *token {
	t := &token{header: bearer + raw, name: name, timing: tm, renewAt: tm.RenewAt()}
	if tm.Expiry.IsZero() {
		t.renewAt = never
	}
	return t
}

func (t *token) raw() string { return t.header[len(bearer):] }

// oauth2Token returns a new value each call, because oauth2.ReuseTokenSource
// writes into the tokens it receives. extra is shared, never written.
func (t *token) oauth2Token(extra map[string]any) *oauth2.Token {
	o := &oauth2.Token{AccessToken: t.raw(), TokenType: "Bearer", Expiry: t.timing.Expiry}
	return o.WithExtra(extra)
}

// fromOAuth2 turns a saved token into a token, or nil when it has no access
// token. Its lifetime comes from the JWT when it carries exp and iat, else
// it is taken as the time left.
func fromOAuth2(t *oauth2.Token, now time.Time, early time.Duration, r float64) *token {
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
	return makeToken(t.AccessToken, name, policy.NewTiming(expiry, life, early, r))
}

// Format writes the Config with its Password redacted, whatever the verb, so
// that no fmt call can print the password.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

// String returns the Config with its Password redacted.
func (c Config) String() string {
	return fmt.Sprintf("{BaseURL:%s Username:%s Password:%s EarlyExpiry:%s AllowInsecureHTTP:%t}",
		redactURL(c.BaseURL), c.Username, redacted(c.Password), c.EarlyExpiry, c.AllowInsecureHTTP)
}

// GoString returns the Config as Go syntax, with its Password redacted.
func (c Config) GoString() string {
	return fmt.Sprintf("econnect.Config{BaseURL:%q, Username:%q, Password:%q, EarlyExpiry:%d, AllowInsecureHTTP:%t}",
		redactURL(c.BaseURL), c.Username, redacted(c.Password), c.EarlyExpiry, c.AllowInsecureHTTP)
}

// LogValue returns the Config for [log/slog], with its Password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", redactURL(c.BaseURL)),
		slog.String("username", c.Username),
		slog.String("password", redacted(c.Password)),
		slog.Duration("early_expiry", c.EarlyExpiry),
		slog.Bool("allow_insecure_http", c.AllowInsecureHTTP),
	)
}

// MarshalJSON returns the Config as JSON, with its Password redacted, so
// that a Config inside a logged or stored struct never spills it.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BaseURL           string
		Username          string
		Password          string `json:",omitempty"`
		EarlyExpiry       time.Duration
		AllowInsecureHTTP bool
	}{redactURL(c.BaseURL), c.Username, redacted(c.Password), c.EarlyExpiry, c.AllowInsecureHTTP})
}

func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "[redacted]"
}

// redactURL returns s without a password in its user information.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "[unparsable URL]"
		}
		return s
	}
	return u.Redacted()
}

// clock is where a source reads time. Expiry follows the wall clock, so a
// host that wakes from sleep sees its token expired; backoffs run on the
// monotonic clock, so a wall clock step does not stretch them.
type clock struct {
	wall func() time.Time     // monotonic reading stripped
	mono func() time.Duration // since an arbitrary fixed point
	rand func() float64       // in [0, 1), for jitter
	// sleep waits d on the monotonic clock, or until ctx ends.
	sleep func(ctx context.Context, d time.Duration) error
	// hedge is how long an auth call may go unanswered before a second
	// attempt starts; see hedgeDelay.
	hedge time.Duration
}

var processStart = time.Now()

var systemClock = &clock{
	wall:  func() time.Time { return time.Now().Round(0) },
	mono:  func() time.Duration { return time.Since(processStart) },
	rand:  rand.Float64,
	sleep: sleep,
	hedge: hedgeDelay,
}

// allows reports whether ctx leaves time to wait d.
func allows(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("econnect: waiting for a token: %w", ctx.Err())
	}
}

// extras holds the Extra of the oauth2 tokens handed out: one map per user
// name, shared and never written, since a map per source would be a third
// of an idle source's memory. Past maxExtras names (a server answering a
// new one each time), maps are no longer kept.
var (
	extras    sync.Map // user name → map[string]any
	extrasLen atomic.Int32
)

const maxExtras = 1024

func extraFor(name string) map[string]any {
	if m, ok := extras.Load(name); ok {
		return m.(map[string]any)
	}
	m := map[string]any{"username": name}
	if extrasLen.Load() < maxExtras {
		if _, loaded := extras.LoadOrStore(name, m); !loaded {
			extrasLen.Add(1)
		}
	}
	return m
}
