// Package econnect lets Go programs call an eConnect Identities server with a
// username and password through the standard [golang.org/x/oauth2] interfaces.
//
// A [Config] logs in with POST {BaseURL}/api/v1/authenticate, which answers a
// JWT, and renews that JWT with GET {BaseURL}/api/v1/renewToken before it
// expires. The expiry comes from the JWT itself, counted on the local clock,
// so a server whose clock is off changes nothing. When a renewal is refused,
// or the token has expired, the source logs in again with the password;
// transient failures are absorbed while the current token is still usable,
// and failed logins back off so that a wrong password cannot lock the account.
//
// Most programs want [Config.Client]. Programs that hand tokens to an
// oauth2-aware library want [Config.TokenSource].
package econnect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/econnect-oss/econnect/internal/jwtclaims"
	"golang.org/x/oauth2"
)

// ErrBadCredentials is wrapped by the error of a login that the server
// refused with 400 Bad Request: the username or the password is wrong.
var ErrBadCredentials = errors.New("econnect: wrong username or password")

// ErrInsecureHTTP is wrapped by the refusal of a plain http:// BaseURL to a
// host that is not loopback, made before any network I/O because the
// password and tokens would cross the network in clear text. Set
// [Config.AllowInsecureHTTP] to permit it.
var ErrInsecureHTTP = errors.New("econnect: plain http to a host that is not loopback")

// errNoPassword is returned when a login is needed and Config.Password is empty.
var errNoPassword = errors.New("econnect: a login is needed and Config.Password is empty")

const (
	defaultEarlyExpiry = 5 * time.Minute
	maxSafetyMargin    = 10 * time.Second
)

// Config describes how to reach an eConnect Identities server and whom to log
// in as. A Config is a plain value: build it as a literal. Its methods do not
// modify it, and sources made from it keep a copy, so later changes to the
// Config do not affect them.
type Config struct {
	// BaseURL is the service root, with or without a trailing slash:
	// "https://customer.econnectcloud.com/identities" in the cloud,
	// "https://host:5009" on premises. API paths are joined to it, keeping
	// its path.
	BaseURL string

	// Username is the account to log in as.
	Username string

	// Password is the account's password. If empty, the Config is for
	// token-only use (see [Config.TokenSourceFrom]) and never logs in.
	Password string

	// EarlyExpiry is how long before a token expires the source renews it.
	// Tokens that live less than twice as long are renewed at half their
	// lifetime instead. If zero or negative, 5 minutes.
	EarlyExpiry time.Duration

	// AllowInsecureHTTP permits a plain http:// BaseURL to a host that is
	// not loopback. Without it, such a BaseURL is refused before any
	// network I/O, because the password and tokens would cross the network
	// in clear text.
	AllowInsecureHTTP bool

	// Logger optionally reports logins, renewals, fallbacks to a new login
	// and backoffs: one warning per failure streak, never one per call.
	// It never sees the password or a token. If nil, nothing is logged.
	Logger *slog.Logger
}

// Token logs in once and returns the token the server issued. It does not
// cache: most callers want [Config.TokenSource] or [Config.Client].
//
// The provided context optionally controls which HTTP client is used; see
// [oauth2.HTTPClient]. It also bounds the call, which never lasts longer than
// 30 seconds.
func (c *Config) Token(ctx context.Context) (*oauth2.Token, error) {
	t, err := c.login(ctx, wallClock)
	if err != nil {
		return nil, err
	}
	return t.oauth2Token(), nil
}

// TokenSource returns a [oauth2.TokenSource] that logs in on first use,
// renews the token before it expires, and logs in again when a renewal is
// refused or the token has expired. While the current token is usable,
// renewals run in the background and callers never wait for them.
//
// The returned value is the one [oauth2.ReuseTokenSourceWithExpiry] made, so
// [oauth2.NewClient] uses it as it is and keeps its renewal point.
//
// The provided context optionally controls which HTTP client is used (see
// [oauth2.HTTPClient]) and bounds every later login and renewal, so it must
// outlive the source. Make one source and share it; each call starts a new
// one, which logs in again. Most users will use [Config.Client] instead.
func (c *Config) TokenSource(ctx context.Context) oauth2.TokenSource {
	return newSource(ctx, c, nil).reuse()
}

// TokenSourceFrom is like [Config.TokenSource] but starts from t, a token
// saved earlier (for example by [Config.Token] or [ParseToken]): it hands out
// t while t is usable, renews it at the renewal point, and logs in only when
// t is refused or has expired. With an empty Password it never logs in and
// returns an error once t can no longer be renewed. t is not modified.
func (c *Config) TokenSourceFrom(ctx context.Context, t *oauth2.Token) oauth2.TokenSource {
	return newSource(ctx, c, fromOAuth2(t, wallClock())).reuse()
}

// earlyExpiry is EarlyExpiry with its default applied.
func (c *Config) earlyExpiry() time.Duration {
	if c.EarlyExpiry <= 0 {
		return defaultEarlyExpiry
	}
	return c.EarlyExpiry
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

func redacted(secret string) string {
	if secret == "" {
		return ""
	}
	return "[redacted]"
}

// ParseToken returns the raw JWT s as an [oauth2.Token]: AccessToken s,
// TokenType "Bearer", Expiry the JWT's exp claim as it is (zero when absent),
// and the JWT's unique_name claim as Extra("username"). The signature is not
// verified: the server signs with a key clients do not have.
func ParseToken(s string) (*oauth2.Token, error) {
	cl, err := jwtclaims.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("econnect: %w", err)
	}
	return newTemplate(s, cl.Name, cl.Exp), nil
}

// token is a JWT with what the source needs to know about it. It is never
// modified once made; callers get copies of tmpl.
type token struct {
	raw      string
	header   string        // "Bearer " + raw
	expiry   time.Time     // local time; zero: never expires
	lifetime time.Duration // from the send time to expiry; zero when expiry is zero
	tmpl     *oauth2.Token
}

func newToken(raw, username string, expiry time.Time, lifetime time.Duration) *token {
	return &token{
		raw:      raw,
		header:   "Bearer " + raw,
		expiry:   expiry,
		lifetime: lifetime,
		tmpl:     newTemplate(raw, username, expiry),
	}
}

func newTemplate(raw, username string, expiry time.Time) *oauth2.Token {
	t := &oauth2.Token{AccessToken: raw, TokenType: "Bearer", Expiry: expiry}
	return t.WithExtra(map[string]any{"username": username})
}

// oauth2Token returns a new value each call, because oauth2.ReuseTokenSource
// writes into the tokens it receives.
func (t *token) oauth2Token() *oauth2.Token {
	c := *t.tmpl
	return &c
}

// fromOAuth2 turns a saved token into a token, or nil when it has no access
// token. Its lifetime comes from the JWT when it carries exp and iat, else it
// is taken as the time left.
func fromOAuth2(t *oauth2.Token, now time.Time) *token {
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
	return newToken(t.AccessToken, name, expiry, life)
}

// wallClock is the default clock. It drops the monotonic reading so that
// expiry checks follow the wall clock across a suspend of the host.
func wallClock() time.Time { return time.Now().Round(0) }

// authError is a non-2xx answer from the login or renewal endpoint. Its text
// never holds the answer's body, which might echo a secret.
type authError struct {
	op       string // "login" or "renewal"
	code     int
	location string // where a 3xx pointed, if it did
	kind     error  // ErrBadCredentials, or nil
	re       *oauth2.RetrieveError
}

func (e *authError) Error() string {
	s := "econnect: " + e.op + " refused: " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
	switch {
	case e.kind != nil:
		s += " (wrong username or password)"
	case e.location != "":
		s += " to " + e.location + " (auth calls follow no redirects)"
	}
	return s
}

func (e *authError) Unwrap() []error {
	if e.kind != nil {
		return []error{e.kind, e.re}
	}
	return []error{e.re}
}

// answerError is a 2xx answer that is not a valid token answer.
type answerError struct {
	op, what string
	err      error
}

func (e *answerError) Error() string {
	s := "econnect: " + e.op + ": bad answer: " + e.what
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *answerError) Unwrap() error { return e.err }

const (
	authTimeout  = 30 * time.Second
	maxAnswer    = 1 << 20 // bytes of an auth answer read at most
	maxErrorBody = 512     // bytes of a refusal kept in oauth2.RetrieveError.Body
)

// login makes one login call.
func (c *Config) login(ctx context.Context, now func() time.Time) (*token, error) {
	if c.Password == "" {
		return nil, errNoPassword
	}
	body, err := json.Marshal(struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}{c.Username, c.Password})
	if err != nil {
		return nil, fmt.Errorf("econnect: login: %w", err)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "api/v1/authenticate", body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.exchange(req, "login", c.Password, now)
}

// newRequest builds an auth request to path below BaseURL, refusing an
// insecure BaseURL before any network I/O.
func (c *Config) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	u, err := c.endpoint(path)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("econnect: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// endpoint joins path to BaseURL, keeping BaseURL's own path.
func (c *Config) endpoint(path string) (*url.URL, error) {
	u, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	return u.JoinPath(path), nil
}

// baseURL parses and checks BaseURL.
func (c *Config) baseURL() (*url.URL, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		// The url.Error would repeat BaseURL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("econnect: BaseURL is not a URL: %w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return nil, errors.New("econnect: BaseURL must be an absolute http or https URL")
	case u.User != nil:
		return nil, errors.New("econnect: BaseURL must not hold credentials; use Username and Password")
	case u.Scheme == "http" && !c.AllowInsecureHTTP && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("%w (%s) would expose the password and tokens; use https, or set Config.AllowInsecureHTTP",
			ErrInsecureHTTP, u.Host)
	}
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
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

// exchange sends an auth request and decodes the answer. secret is the
// password or token the request carries, removed from any refusal body kept.
func (c *Config) exchange(req *http.Request, op, secret string, now func() time.Time) (*token, error) {
	ctx, cancel := context.WithTimeout(req.Context(), authTimeout)
	defer cancel()
	sent := now()
	resp, err := noRedirects(ctx).Do(req.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("econnect: %s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("econnect: %s: reading the answer: %w", op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, refusal(op, resp, body, secret)
	}
	if len(body) > maxAnswer {
		return nil, &answerError{op: op, what: "larger than 1 MiB"}
	}
	return decodeAnswer(op, body, sent, now())
}

// noRedirects returns the context's HTTP client made to follow no redirect:
// a 307 or 308 would replay the password to wherever it points.
func noRedirects(ctx context.Context) *http.Client {
	hc := http.DefaultClient
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		hc = c
	}
	nc := *hc
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// refusal builds the error for a non-2xx answer.
func refusal(op string, resp *http.Response, body []byte, secret string) error {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	if secret != "" {
		body = bytes.ReplaceAll(body, []byte(secret), []byte("[redacted]"))
	}
	e := &authError{op: op, code: resp.StatusCode, re: &oauth2.RetrieveError{Response: resp, Body: body}}
	if op == "login" && resp.StatusCode == http.StatusBadRequest {
		e.kind = ErrBadCredentials
	}
	if loc, err := resp.Location(); err == nil {
		loc.User, loc.RawQuery, loc.Fragment = nil, "", ""
		e.location = loc.String()
	} else if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.location = "nowhere"
	}
	return e
}

// decodeAnswer reads a 2xx answer: JSON {"username": …, "token": "<JWT>"}.
// The lifetime exp − iat is counted from sent, the local time the request
// left, so that a server clock minutes off the local one changes nothing.
func decodeAnswer(op string, body []byte, sent, received time.Time) (*token, error) {
	var a struct {
		Username *string `json:"username"`
		Token    *string `json:"token"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, &answerError{op: op, what: "not a JSON token answer", err: err}
	}
	if a.Token == nil || *a.Token == "" {
		return nil, &answerError{op: op, what: "no token"}
	}
	cl, err := jwtclaims.Parse(*a.Token)
	if err != nil {
		return nil, &answerError{op: op, what: "token is not a JWT", err: err}
	}
	expiry, life := cl.Exp, time.Duration(0)
	switch {
	case cl.Exp.IsZero():
	case !cl.Iat.IsZero():
		life = cl.Exp.Sub(cl.Iat)
		expiry = sent.Add(life)
	default:
		life = cl.Exp.Sub(sent)
	}
	if !expiry.IsZero() && (life <= 0 || !expiry.After(received)) {
		return nil, &answerError{op: op, what: "token expired on arrival"}
	}
	name := cl.Name
	if a.Username != nil && *a.Username != "" {
		name = *a.Username
	}
	return newToken(*a.Token, name, expiry, life), nil
}
