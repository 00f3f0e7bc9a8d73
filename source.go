// Package econnect lets Go programs call an eConnect Identities server with a
// username and password through the standard [golang.org/x/oauth2] interfaces.
//
// A [Config] logs in with POST {BaseURL}/api/v1/authenticate, which answers a
// JWT, and renews that JWT with GET {BaseURL}/api/v1/renewToken before it
// expires. The expiry comes from the JWT itself, counted on the local clock,
// so a server whose clock is off changes nothing. When a renewal is refused,
// or the token can no longer be used, the source logs in again with the
// password; transient failures are absorbed while the current token is still
// usable, and failed logins back off so that a wrong password cannot lock
// the account. With a [Store], tokens outlive the process and are shared by
// the processes that log in as the same user.
//
// Most programs want [Config.Client]. Programs that hand tokens to an
// oauth2-aware library want [Config.TokenSource].
package econnect

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/econnect-oss/econnect/internal/dirstore"
	"github.com/econnect-oss/econnect/internal/policy"
	"github.com/econnect-oss/econnect/internal/secret"
	"github.com/econnect-oss/econnect/internal/tokenstore"
	"github.com/econnect-oss/econnect/internal/wire"
	"golang.org/x/oauth2"
)

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

	// Logger optionally reports logins, renewals, fallbacks to a new login,
	// backoffs and store failures: one warning per failure streak, never
	// one per call. It never sees the password or a token, and is never
	// called with a lock held, so it may call back into the source. If nil,
	// nothing is logged.
	Logger *slog.Logger

	// Store, if set, keeps the tokens of sources made from this Config
	// outside the process, so that they survive a restart and are shared
	// by the processes that use it (see [Store]). If nil, tokens live in
	// memory only.
	Store Store
}

// TokenSource returns an [oauth2.TokenSource] that logs in on first use,
// renews the token before it expires, and logs in again when a renewal is
// refused or the token can no longer be used. While the current token is
// usable, renewals run in the background and callers never wait for them.
//
// The returned value is the one [oauth2.ReuseTokenSourceWithExpiry] made, so
// [oauth2.NewClient] uses it as it is and keeps its renewal point. Through
// it, every caller gets the same *oauth2.Token until the next renewal:
// that is oauth2's design, so treat the token as read-only. (Should the
// oauth2 in your build hold its source in a way this package cannot verify,
// TokenSource returns its own source instead: oauth2.NewClient then caches
// its tokens once more, and everything else works the same.)
//
// Its Token method has no context: while logins back off, it waits for the
// next attempt only after failures that waiting may heal, and 2 seconds in
// all, then returns the last error. [TokenContext], a request through
// [Config.Client] or a [Transport] around this source wait as long as their
// own context allows.
//
// The provided context optionally controls which HTTP client is used (see
// [oauth2.HTTPClient]) and bounds every later login and renewal, so it must
// outlive the source. Make one source and share it; each call starts a new
// one, which logs in again (unless [Config.Store] holds a token).
func (c *Config) TokenSource(ctx context.Context) oauth2.TokenSource {
	return newSource(ctx, c, nil).reuse(reuseLayout)
}

// TokenSourceFrom is like [Config.TokenSource] but starts from t, a token
// saved earlier (for example by [Config.Token] or [ParseToken]), or from the
// token [Config.Store] holds if that one is newer (it reads the store once,
// waiting a second at most, and saves t there if t is the newer): it hands
// out the token while it is usable, renews it at the renewal point, and
// logs in only when it is refused or can no longer be used. With an empty
// Password it never logs in and returns an error once the token can no
// longer be renewed. t is not modified.
func (c *Config) TokenSourceFrom(ctx context.Context, t *oauth2.Token) oauth2.TokenSource {
	s := newSource(ctx, c, t)
	s.startFromShelf()
	return s.reuse(reuseLayout)
}

// Format writes the Config with its Password redacted and only the type of
// its Store, whatever the verb, so that no fmt call can print a secret.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprintf(f, "econnect.Config{BaseURL:%q, Username:%q, Password:%q, EarlyExpiry:%d, AllowInsecureHTTP:%t, Store:%T}",
			secret.URL(c.BaseURL), c.Username, secret.Mark(c.Password), c.EarlyExpiry, c.AllowInsecureHTTP, c.Store)
		return
	}
	fmt.Fprint(f, c.String())
}

// String returns the Config with its Password redacted and only the type of
// its Store.
func (c Config) String() string {
	return fmt.Sprintf("{BaseURL:%s Username:%s Password:%s EarlyExpiry:%s AllowInsecureHTTP:%t Store:%T}",
		secret.URL(c.BaseURL), c.Username, secret.Mark(c.Password), c.EarlyExpiry, c.AllowInsecureHTTP, c.Store)
}

// LogValue returns the Config for [log/slog], with its Password redacted
// and only the type of its Store.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", secret.URL(c.BaseURL)),
		slog.String("username", c.Username),
		slog.String("password", secret.Mark(c.Password)),
		slog.Duration("early_expiry", c.EarlyExpiry),
		slog.Bool("allow_insecure_http", c.AllowInsecureHTTP),
		slog.String("store", storeType(c.Store)),
	)
}

// MarshalJSON returns the Config as JSON without its Password, and with
// only the type of its Store, so that a Config inside a logged or stored
// struct spills neither. A Config read back from it has no password: it
// fails with [ErrNoPassword] rather than log in with a placeholder.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BaseURL           string
		Username          string
		EarlyExpiry       time.Duration
		AllowInsecureHTTP bool
		StoreType         string `json:",omitempty"`
	}{secret.URL(c.BaseURL), c.Username, c.EarlyExpiry, c.AllowInsecureHTTP, storeType(c.Store)})
}

func storeType(s Store) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("%T", s)
}

// A Store keeps tokens outside the process, so that they survive a restart
// and can be shared by processes that log in as the same user to the same
// server (see [Config.Store]). Values are opaque bytes of the package's own
// format, at most 64 KiB, never holding the password; the package computes
// the keys, printable strings without path separators. A Store must be safe
// for concurrent use and return by the deadline of the context it is given.
//
// A source loads from its store only before an auth call it would make,
// and takes the stored token instead when it is newer than its own by the
// JWT's claims: machines that share a store must keep their clocks in sync,
// since the stored expiry is the writer's. It saves every token it gets
// from the server, after handing it out. A store that fails, hangs or holds
// garbage costs no request and no token: about a second's wait at most, and
// one Logger warning per failure streak. (A call that does not return by its
// deadline is abandoned: its goroutine is left to the store, to end when the
// call does.)
type Store interface {
	// Load returns the value saved under key: an error for which
	// errors.Is(err, ErrNotStored) holds when there is none.
	Load(ctx context.Context, key string) ([]byte, error)
	// Save replaces the value under key. The value is of no use after
	// ttl, which is zero for a token that never expires; the store may
	// drop it then.
	Save(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes the value under key; a missing value is not an error.
	Delete(ctx context.Context, key string) error
}

// A Locker is a [Store] that can keep processes sharing it from calling the
// server at the same time: the source locks around each login or renewal,
// loads again once it holds the lock, and takes a peer's token if one came
// meanwhile. Lock blocks until it holds the lock on key or ctx is done; the
// lock lapses after ttl even if unlock is never called, and unlock may be
// called more than once. A Store that wraps another must implement Locker
// itself to forward it, or the lease is lost.
type Locker interface {
	Lock(ctx context.Context, key string, ttl time.Duration) (unlock func(), err error)
}

// ErrNotStored is what a [Store]'s Load returns, wrapped or not, when it
// holds no value under the key. It is [fs.ErrNotExist], as for certmagic's
// storage, so that a store over files reports a missing file as it is.
var ErrNotStored = fs.ErrNotExist

// DirStore is a [Store] and a [Locker] that keeps each token in a file of
// the directory it names, for the processes of one user on one host: a
// camera that must not log in again after a power cut, or the runs of a
// command. The directory is made with mode 0700 and the files 0600; each
// save goes to a temporary file that is synced, then renamed over the old
// one, so that a power cut leaves the old token or the new one, never an
// empty file, and a Load during a Save sees one or the other. A file other
// users may read or write, or that is not a regular file (a symbolic link,
// a FIFO), is not followed nor opened for a blocking read: Load refuses it
// with an error the source logs once, and the next save replaces it. The
// lock is a separate file per key that is never deleted (flock(2) on Unix,
// LockFileEx on Windows; where neither exists, Lock fails and sources go on
// unlocked). Printing a Config shows a DirStore's type, not its path.
type DirStore string

// Load returns the value saved under key; see [Store].
func (d DirStore) Load(ctx context.Context, key string) ([]byte, error) {
	return dirstore.Dir(d).Load(ctx, key)
}

// Save replaces the value under key; a file has no use for ttl.
func (d DirStore) Save(ctx context.Context, key string, value []byte, _ time.Duration) error {
	return dirstore.Dir(d).Save(ctx, key, value)
}

// Delete removes the value under key.
func (d DirStore) Delete(ctx context.Context, key string) error {
	return dirstore.Dir(d).Delete(ctx, key)
}

// Lock takes the lock of key across the processes of the host; see
// [Locker].
func (d DirStore) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	return dirstore.Dir(d).Lock(ctx, key, ttl)
}

// leaseTTL is how long a store's lock is held at most: the bound of one
// auth call, and a little more for the save after it.
const leaseTTL = wire.Timeout + 5*time.Second

// Invalidate tells ts, a source of this package, that the server refused t
// where the source cannot see it (a gRPC call answered Unauthenticated, a
// script's curl answered 401), and reports whether ts is one. The source
// then does what [Config.Client] does after a 401: it drops t if t is still
// its token, under the same limits (one login a second at most, however
// many callers report it; without a Password, a renewal instead), and never
// takes t from its store again. For any other source it does nothing.
func Invalidate(ts oauth2.TokenSource, t *oauth2.Token) bool {
	s := sourceOf(ts)
	if s == nil {
		return false
	}
	if t != nil && t.AccessToken != "" {
		s.invalidate(t.AccessToken)
	}
	return true
}

// TokenContext returns a usable token from ts, waiting for one as long as
// ctx allows, and 30 seconds at most if ctx has no deadline, exactly as a
// request through [Config.Client] does: the vendor SDK's
// GetValidAccessToken. For a source of another package, it returns
// ts.Token().
func TokenContext(ctx context.Context, ts oauth2.TokenSource) (*oauth2.Token, error) {
	s := sourceOf(ts)
	if s == nil {
		return ts.Token()
	}
	t, err := s.handOut(ctx, untilDeadline)
	if err != nil {
		return nil, err
	}
	return t.oauth2Token(), nil
}

// Flush waits until ts, a source of this package, has done what it has
// left to do: the login or renewal under way, if any, the saves to
// [Config.Store] after it, and the Logger's lines about them. A program
// that exits right after its first token (a command) calls it so that the
// token is there for the next run and no warning is lost. It returns an
// error wrapping ctx.Err() if ctx ends first, and nil at once for any
// other source.
func Flush(ctx context.Context, ts oauth2.TokenSource) error {
	s := sourceOf(ts)
	if s == nil {
		return nil
	}
	return s.flush(ctx)
}

// Status is a snapshot of a token source, for health checks and metrics. It
// holds no secret.
type Status struct {
	// State is where the source's token stands: "none" (no token yet),
	// "fresh", "due" (its renewal is due, or under way), "unsafe" (too
	// close to expiry, or refused: the next caller waits for a new one) or
	// "expired".
	State string `json:"state"`
	// Expiry is when the token expires, and RenewAt its renewal point; zero
	// without a token, or for one that never expires.
	Expiry  time.Time `json:"expiry,omitzero"`
	RenewAt time.Time `json:"renew_at,omitzero"`
	// Error is the error of the failure streak under way, failed logins or
	// renewals failing while the token is kept; "" when there is none.
	Error string `json:"error,omitempty"`
	// Logins and Renewals count the calls the source made, Failures those
	// that failed, and Adopted the tokens it took from Config.Store.
	Logins   int `json:"logins"`
	Renewals int `json:"renewals"`
	Failures int `json:"failures"`
	Adopted  int `json:"adopted"`
}

// StatusOf returns the status of ts, a source of this package, and whether
// it is one. It is cheap (a lock held for a few reads, no I/O) and safe to
// call from a health endpoint as often as it is polled. The source of a
// [Config.Client] is its Transport's Source.
func StatusOf(ts oauth2.TokenSource) (Status, bool) {
	s := sourceOf(ts)
	if s == nil {
		return Status{}, false
	}
	return s.status(), true
}

// source is the token source behind TokenSource, TokenSourceFrom and Client.
// It is safe for concurrent use by multiple goroutines.
//
// What a caller gets is decided in one place, [source.stepLocked], by the
// state of the token (see [policy.State]):
//
//	fresh    hand out the token
//	due      hand out the token; start a renewal in the background, unless one
//	         runs or the last one failed less than its retry delay ago
//	unsafe   wait for a new token: log in (without a password: renew)
//	expired  wait for a login (without a password: fail)
//	none     wait for a login (without a password: fail)
//
// A token that a request saw refused (401) counts as unsafe. Waiting means
// joining the one flight under way, or starting it; while failed logins back
// off, callers wait for the next attempt as their patience allows, or fail
// at once with the last error. What a flight does is [source.fetch]; what its
// outcome changes is decided in one place too, [source.applyLocked].
//
// Secrets sit behind pointers (cfg, tok), which fmt prints as addresses,
// and Format prints only the username: fmt walks the fields of a value
// whose Format it does not call.
type source struct {
	cfg   *Config // a copy
	ctx   context.Context
	clock *clock
	end   endpoint
	// draw places each token's renewal point in its window: once per
	// source, not per token, so that sources that logged in together drift
	// apart with every lifetime instead of meeting again mid-window.
	draw  float64
	hedge time.Duration     // how long an auth call goes unanswered before it is hedged
	shelf *tokenstore.Shelf // the source's place in Config.Store; nil without one

	// snap is tok unless a request saw it refused; current reads it
	// without the lock until its renewal point.
	snap atomic.Pointer[token]

	mu      sync.Mutex // guards the fields below
	tok     *token     // the current token, or nil
	suspect bool       // a request with tok was refused: tok is unsafe
	// accepted is set once the server accepted these credentials: from
	// then on a login may be hedged without counting a wrong password
	// twice toward the account's lockout.
	accepted bool
	// declined is set when a Token call found the next login attempt
	// (login.Until) too far away to wait for: later Token calls fail at
	// once rather than wait for it, until another attempt is set. oauth2's
	// cache calls Token under its mutex, one caller after another, so that
	// each waiting its own 2 s would hold the last of N callers N times as
	// long.
	declined bool
	flight   *flight // the login or renewal under way, or nil; at most one runs
	// renewal is the streak of background renewals that failed while tok
	// was usable; the next waits for its retry delay.
	renewal policy.Backoff
	// login is the streak of failed logins (and renewals that callers
	// waited for); callers that cannot wait fail fast until it ends.
	login policy.Backoff
	// relogin spaces 401-driven logins: one a second at most, doubling
	// for each fresh token the server refuses in turn.
	relogin policy.Backoff
	refusal *refusal      // what the source knows of refusals; nil until the first
	saved   chan struct{} // closed when the store work queued last is done; nil: none queued
	counts  counts

	wg sync.WaitGroup // flights under way, so tests can wait for them
}

// counts are the calls behind Status.
type counts struct{ logins, renewals, failures, adopted int32 }

// A refusal is what a source knows once the server refused a token. It is
// allocated then, so that an idle source that never saw one is smaller.
type refusal struct {
	jwt         string        // the last JWT seen refused: never taken from the store
	replacement *token        // the token a 401-driven call brought, while it is current
	at          time.Duration // when it came, a monotonic reading
	life        time.Duration // the usable lifetime of the token dropped last
}

// refusedLocked records that the server refused the token jwt. s.mu is
// held.
func (s *source) refusedLocked(jwt string) {
	if s.refusal == nil {
		s.refusal = &refusal{}
	}
	s.refusal.jwt = jwt
}

// refusedJWTLocked is the last JWT seen refused, or "". s.mu is held.
func (s *source) refusedJWTLocked() string {
	if s.refusal == nil {
		return ""
	}
	return s.refusal.jwt
}

// lifeLocked is the usable lifetime of the last token the source held
// (zero: it never held one), which scales the login backoff. s.mu is held.
func (s *source) lifeLocked() time.Duration {
	switch {
	case s.tok != nil:
		return s.tok.timing.Lifetime
	case s.refusal != nil:
		return s.refusal.life
	}
	return 0
}

// replacementLocked reports whether t came from a 401-driven call to the
// server less than d ago (at now). s.mu is held.
func (s *source) replacementLocked(t *token, now, d time.Duration) bool {
	return s.refusal != nil && t == s.refusal.replacement && now-s.refusal.at < d
}

// newSource returns a source for c, starting from saved if it is not nil.
func newSource(ctx context.Context, c *Config, saved *oauth2.Token) *source {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg := *c
	end, base := endpointOf(c)
	s := &source{cfg: &cfg, ctx: ctx, clock: systemClock, end: end, draw: rand.Float64(), hedge: hedgeDelay}
	if c.Store != nil && base != nil {
		key := tokenstore.Key(base, c.Username, c.AllowInsecureHTTP)
		s.shelf = tokenstore.NewShelf(c.Store, key, func() time.Time { return s.clock.wall() }, s.storeWarning)
	}
	s.tok = fromOAuth2(saved, s.clock.wall(), c.EarlyExpiry, s.draw)
	s.publishLocked()
	return s
}

// startFromShelf starts the source from the newer of its token and the
// stored one (TokenSourceFrom): one bounded load, before the source is
// handed out. A starting token newer than what the store holds is saved,
// as every new token of a source is, so that a token handed in from
// elsewhere (a renewal made by hand) is shared too.
func (s *source) startFromShelf() {
	if s.shelf == nil {
		return
	}
	e, err := s.shelf.Load(s.ctx)
	if err != nil {
		return
	}
	if t := s.adoptable(e, plan{old: s.tok}); e.Token != "" && t != nil {
		s.tok = t
		s.counts.adopted++
		s.publishLocked()
		return
	}
	if t := s.tok; t != nil && t.timing.State(s.clock.wall()).Usable() &&
		(e.Token == "" || tokenstore.Adopts(tokenstore.Entry{Token: t.raw(), Claims: t.claims()}, tokenstore.Held{Token: e.Token})) {
		o := outcome{tok: t}
		w := s.queueLocked(o)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.settle(o, w)
		}()
	}
}

// reuse wraps s for callers in oauth2's cache, if l, the cache's layout, is
// known (else s goes unwrapped; see layout). Its margin, at least the
// renewal window and twice the safety margin (the latest a renewal point
// can be), makes the wrapper ask s again from the renewal point on, so that
// s decides when to renew and what to hand out.
func (s *source) reuse(l layout) oauth2.TokenSource {
	if !l.known() {
		return s
	}
	early := s.cfg.EarlyExpiry
	if early <= 0 {
		early = policy.DefaultEarlyExpiry
	}
	return oauth2.ReuseTokenSourceWithExpiry(nil, s, max(early, 2*policy.MaxMargin))
}

// Token returns a new copy of a usable token; see current. It has no
// context to bound a wait: it waits out backoffs within 2 seconds of the
// call, after failures that waiting may heal, and one auth call at most.
func (s *source) Token() (*oauth2.Token, error) {
	t, err := s.handOut(s.ctx, briefly)
	if err != nil {
		return nil, err
	}
	return t.oauth2Token(), nil
}

// Format prints only the username, for every verb: the source holds the
// password and tokens, and is a Client's Transport's Source.
func (s *source) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "econnect.TokenSource{Username:%q}", s.cfg.Username)
}

// handOut is current for callers that take the token elsewhere (Token,
// TokenContext): none is handed out for an origin that refuses tokens.
func (s *source) handOut(ctx context.Context, p patience) (*token, error) {
	if s.end.err != nil {
		return nil, s.end.err
	}
	return s.current(ctx, p)
}

// A patience says how long a caller may wait while no token is usable.
type patience int8

const (
	// untilDeadline is a request's (Client, Transport, TokenContext): as
	// long as its context allows, requestWait at most without a deadline.
	untilDeadline patience = iota
	// briefly is Token's, which has no context: backoffs that end within
	// tokenWait of the call, and one auth call.
	briefly
	// failFast fails at once with the last error while logins back off,
	// whatever the failure: the tests drive the backoffs with it.
	failFast
)

const (
	// requestWait bounds the wait of a request without a deadline: the
	// bound of one auth call.
	requestWait = wire.Timeout
	// tokenWait is how long Token waits out backoffs in all.
	tokenWait = 2 * time.Second
)

// A wait is one caller's bound: ctx ends every wait, and a backoff is
// waited out only if it ends by until, a monotonic reading. A brief wait
// is Token's (see source.declined).
type wait struct {
	ctx   context.Context
	until time.Duration
	brief bool
}

// waitOf returns the bound of a caller with patience p and context ctx.
func (s *source) waitOf(ctx context.Context, p patience) (wait, context.CancelFunc) {
	now := s.clock.mono()
	switch p {
	case briefly:
		ctx, cancel := context.WithTimeout(s.ctx, tokenWait+wire.Timeout)
		return wait{ctx, now + tokenWait, true}, cancel
	case untilDeadline:
		if deadline, ok := ctx.Deadline(); ok {
			return wait{ctx, now + time.Until(deadline), false}, func() {}
		}
		ctx, cancel := context.WithTimeout(ctx, requestWait)
		return wait{ctx, now + requestWait, false}, cancel
	}
	return wait{ctx, now, false}, func() {}
}

// current returns a usable token. While one exists it never waits: a due
// renewal starts in the background. Otherwise it waits, as p allows, for
// the flight under way, starting one if none is, so that any number of
// concurrent callers cause a single call.
func (s *source) current(ctx context.Context, p patience) (*token, error) {
	if t := s.snap.Load(); t != nil && s.readNow().UnixNano() < t.renewAt {
		return t, nil // fresh: the common case, without the lock
	}
	return s.decide(ctx, p)
}

// readNow is the wall clock for current's lock-free read: with the system
// clock, time.Now itself, without the indirect call.
func (s *source) readNow() time.Time {
	if s.clock == systemClock {
		return time.Now()
	}
	return s.clock.wall()
}

// decide is current past its lock-free read: it takes the steps stepLocked
// gives until one gives a token or an error.
func (s *source) decide(ctx context.Context, p patience) (*token, error) {
	w, cancel := s.waitOf(ctx, p)
	defer cancel()
	for {
		s.mu.Lock()
		next := s.stepLocked(w)
		s.mu.Unlock()
		switch {
		case next.tok != nil || next.err != nil:
			return next.tok, next.err
		case next.join != nil:
			if err := awaitFlight(w.ctx, next.join); err != nil {
				return nil, err
			}
		default:
			if err := s.clock.sleep(w.ctx, next.sleep); err != nil {
				return nil, err
			}
		}
	}
}

// A step is what a caller does next: take tok, fail with err, join a
// flight, or sleep until the next attempt.
type step struct {
	tok   *token
	err   error
	join  *flight
	sleep time.Duration
}

// stepLocked is the one switch on the state: what a caller bound by w does
// next. s.mu is held.
func (s *source) stepLocked(w wait) step {
	mono := s.clock.mono()
	st := s.stateLocked(s.clock.wall())
	switch {
	case st.Usable():
		s.renewInBackgroundLocked(st, mono)
		return step{tok: s.tok}
	case s.flight != nil:
		return step{join: s.flight}
	case s.cfg.Password == "" && needsLogin(st) && s.shelf == nil:
		return step{err: ErrNoPassword}
	case s.login.Active(mono):
		return s.backingOffLocked(w, mono)
	case s.ctx.Err() != nil:
		return step{err: fmt.Errorf("econnect: %w", s.ctx.Err())}
	}
	return step{join: s.startLocked(st)}
}

// needsLogin reports whether only a login (or a token from the store) can
// replace a token in state st: there is none, or it has expired.
func needsLogin(st policy.State) bool { return st == policy.None || st == policy.Expired }

// renewInBackgroundLocked starts the renewal of a due token, unless one
// runs, the last failed less than its retry delay ago, or the source's
// context has ended. s.mu is held.
func (s *source) renewInBackgroundLocked(st policy.State, mono time.Duration) {
	if st == policy.Due && s.flight == nil && !s.renewal.Active(mono) && s.ctx.Err() == nil {
		s.startLocked(st)
	}
}

// backingOffLocked is the step of a caller that finds logins backing off:
// it sleeps until the next attempt if waiting may heal the last failure and
// the attempt comes within its wait; else it fails at once with the last
// error. The attempts are the backoff's: waiting adds none. s.mu is held.
func (s *source) backingOffLocked(w wait, mono time.Duration) step {
	err := s.lastErrLocked()
	switch {
	case !healable(err), w.brief && s.declined:
		return step{err: err}
	case s.login.Until > w.until:
		s.declined = s.declined || w.brief
		return step{err: err}
	}
	return step{sleep: s.login.Until - mono}
}

// healable reports whether waiting may heal err, so that callers wait for
// the next attempt: not after wrong credentials or another refusal, a
// certificate that fails verification, or a Config that cannot be used (no
// password, plain http refused, a bad BaseURL).
func healable(err error) bool {
	var ce configError
	return wire.Transient(err) && !errors.Is(err, ErrNoPassword) && !errors.As(err, &ce)
}

// awaitFlight waits for f to end, or for ctx.
func awaitFlight(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("econnect: waiting for a token: %w", ctx.Err())
	}
}

// stateLocked is the state of s.tok at now. s.mu is held.
func (s *source) stateLocked(now time.Time) policy.State {
	if s.tok == nil {
		return policy.None
	}
	st := s.tok.timing.State(now)
	if s.suspect && st.Usable() {
		return policy.Unsafe
	}
	return st
}

// lastErrLocked is the error to fail fast with while logins back off.
func (s *source) lastErrLocked() error {
	return cmp.Or(s.login.Err, s.renewal.Err, errHeld)
}

var errHeld = errors.New("econnect: no token yet; auth calls are held by the server's Retry-After")

// A flight is one login or renewal, shared by every caller waiting for it.
type flight struct {
	done chan struct{} // closed when the flight ends
	err  error         // set before done is closed
}

// A plan is what a flight sets out with, read under the lock when it
// starts: the state of old, the token in hand, and what the source knows of
// refusals and of the server.
type plan struct {
	state        policy.State
	old          *token
	afterRefusal bool   // old, or the token before it, was seen refused
	refused      string // the last JWT seen refused, never to be adopted
	hedgeLogin   bool   // a login may be hedged
}

// An outcome is what a flight came back with, and the calls it made.
type outcome struct {
	tok     *token
	err     error
	adopted bool   // tok came from the store
	forget  string // a refused JWT to delete from the store if no token came
	unlock  func() // the store's lease, released once tok is saved
	calls   counts
}

// startLocked starts a flight that gets a token for a source in state st.
// The flight runs on its own goroutine, so that a caller that stops waiting
// does not cancel it for the others. s.mu is held.
func (s *source) startLocked(st policy.State) *flight {
	f := &flight{done: make(chan struct{})}
	s.flight = f
	refused := s.refusedJWTLocked()
	p := plan{state: st, old: s.tok, refused: refused, hedgeLogin: s.accepted,
		afterRefusal: s.suspect || s.tok == nil && refused != ""}
	s.wg.Add(1)
	go s.fly(f, p)
	return f
}

// fly is a flight: it fetches a token, records the outcome, releases the
// waiters, then does the store work the outcome leaves.
func (s *source) fly(f *flight, p plan) {
	defer s.wg.Done()
	o := s.fetch(p)
	ev, work := s.finish(f, p, o)
	s.log(ev)
	s.settle(o, work)
}

// fetch gets the token a flight set out for: a newer one a peer saved in
// the store, else one from the server, under the store's lease when it has
// one (loading once more once the lease is held).
func (s *source) fetch(p plan) outcome {
	if s.shelf == nil {
		return s.ask(p)
	}
	t, err := s.fromShelf(p)
	switch {
	case t != nil:
		return outcome{tok: t, adopted: true, calls: counts{adopted: 1}}
	case s.cfg.Password == "" && needsLogin(p.state):
		return outcome{err: ErrNoPassword}
	case err != nil:
		return s.ask(p) // a store that fails is not worth waiting for its lock
	}
	var adopted *token
	unlock, ok := s.shelf.Lease(s.ctx, leaseTTL, func(e tokenstore.Entry) bool {
		adopted = s.adoptable(e, p)
		return adopted != nil
	})
	if ok {
		return outcome{tok: adopted, adopted: true, calls: counts{adopted: 1}}
	}
	o := s.ask(p)
	o.unlock = unlock
	return o
}

// ask gets a token from the server for a source whose token p.old is in
// state p.state. A due token is renewed, within its usable life; a
// refusal, or the end of that life, leads to a login. A token no longer
// usable is replaced by a login, or renewed while valid when there is no
// password.
func (s *source) ask(p plan) outcome {
	o := outcome{}
	if p.afterRefusal && s.cfg.Password != "" { // without a password, the token is kept: the store's copy too
		o.forget = p.refused
	}
	if renewing := p.state == policy.Due || p.state == policy.Unsafe && s.cfg.Password == ""; renewing &&
		renewalEnd(p).After(s.clock.wall()) { // else no time is left to renew (a slow store took it): log in
		t, err := s.renewUntil(p.old, renewalEnd(p))
		o.calls.renewals++
		if wire.Refused(err) {
			o.forget = p.old.raw() // the server refused it: no peer is to take it from the store
		}
		if err == nil || s.cfg.Password == "" || !s.replaceable(p.old, err) {
			return o.with(t, err)
		}
		s.log(event{slog.LevelInfo, "econnect: renewal failed; logging in again", err})
	}
	t, err := s.cfg.login(s.ctx, s.authCall(p.hedgeLogin))
	if !madeNoCall(err) {
		o.calls.logins++
	}
	return o.with(t, err)
}

// with returns o with the token t or the error err of its last call.
func (o outcome) with(t *token, err error) outcome {
	o.tok, o.err = t, err
	if err != nil && !madeNoCall(err) {
		o.calls.failures++
	}
	return o
}

// madeNoCall reports whether err refused a login before any network I/O.
func madeNoCall(err error) bool {
	var ce configError
	return errors.Is(err, ErrNoPassword) || errors.As(err, &ce)
}

// authCall returns how the source makes an auth call: logins hedged only if
// hedgeLogin, renewals always.
func (s *source) authCall(hedgeLogin bool) authCall {
	a := authCall{end: &s.end, now: s.clock.wall, draw: s.draw}
	if hedgeLogin {
		a.hedge = s.hedge
	}
	return a
}

// renewalEnd is when the renewal of p.old gives up: when it can no longer
// be handed out, or, for an unsafe token renewed without a password, when
// it expires.
func renewalEnd(p plan) time.Time {
	if p.state == policy.Unsafe {
		return p.old.timing.Expiry
	}
	return p.old.timing.UnusableAt()
}

// renewUntil renews old, giving up at until (wall clock) with errUnusable:
// past it, a renewal would keep callers waiting that a login can serve.
func (s *source) renewUntil(old *token, until time.Time) (*token, error) {
	left := until.Sub(s.clock.wall())
	if left <= 0 {
		return nil, errUnusable
	}
	ctx, cancel := context.WithTimeout(s.ctx, left)
	defer cancel()
	a := s.authCall(false)
	a.hedge = min(s.hedge, left/2)
	t, err := s.cfg.renew(ctx, a, old)
	switch {
	case err != nil && ctx.Err() == context.DeadlineExceeded && s.ctx.Err() == nil:
		return nil, errUnusable
	case err == nil && t == old:
		return nil, errSameToken // its expiry stands; try again later
	}
	return t, err
}

var (
	// errSameToken is a renewal answered with the token it renewed.
	errSameToken = errors.New("econnect: renewal: the server answered the same token")
	// errUnusable ends a renewal that lasted until its token could no
	// longer be handed out.
	errUnusable = errors.New("econnect: renewal: no answer while the token was usable")
)

// replaceable reports whether old, whose renewal failed with err, is to be
// replaced by a login now: the server refused it (then it is dropped, so
// that nobody gets it while the login runs), or it can no longer be used.
func (s *source) replaceable(old *token, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wire.Refused(err) && s.tok == old {
		s.dropLocked()
	}
	return s.tok != old || err == errUnusable || !s.stateLocked(s.clock.wall()).Usable()
}

// dropLocked drops the current token, which the auth server itself refused,
// so that it is never handed out again. s.mu is held.
func (s *source) dropLocked() {
	s.refusedLocked(s.tok.raw())
	s.refusal.life, s.refusal.replacement = s.tok.timing.Lifetime, nil
	s.tok = nil
	s.publishLocked()
}

// finish records the outcome of a flight, releases its waiters, and
// returns the log line and the work left to do after (see settle), once
// the lock is released. A token that comes in already due (one taken from
// the store) is renewed at once.
func (s *source) finish(f *flight, p plan, o outcome) (event, storeWork) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := s.applyLocked(p, o)
	s.publishLocked()
	work := s.queueLocked(o)
	s.flight, f.err = nil, o.err
	close(f.done)
	s.renewInBackgroundLocked(s.stateLocked(s.clock.wall()), s.clock.mono())
	return ev, work
}

// applyLocked makes the change a flight's outcome brings, and returns the
// log line it calls for. Every change an outcome makes is here:
//
//	new token               it becomes current; every failure streak ends
//	failure, old usable     old stays; the renewal retry waits
//	                        clamp(remaining/4, 1 s, 30 s), or the server's
//	                        Retry-After if longer
//	refusal of old          old is dropped, so it is not handed out again
//	failure, none usable    logins back off: 1 s doubling to
//	                        min(30 s, max(1 s, lifetime/4)), or to 5 minutes
//	                        when waiting cannot heal the failure; the
//	                        server's Retry-After if any
//
// s.mu is held.
func (s *source) applyLocked(p plan, o outcome) event {
	s.counts.add(o.calls)
	defer s.holdLocked(wire.RetryAfter(o.err))
	switch {
	case o.err == nil:
		return s.acceptLocked(p, o)
	case errors.Is(o.err, context.Canceled):
		return event{}
	case s.tok == p.old && !wire.Refused(o.err) && s.stateLocked(s.clock.wall()).Usable():
		return s.keepLocked(o.err)
	}
	return s.backOffLocked(p, o.err)
}

func (c *counts) add(d counts) {
	c.logins += d.logins
	c.renewals += d.renewals
	c.failures += d.failures
	c.adopted += d.adopted
}

// acceptLocked makes o's token current. s.mu is held.
func (s *source) acceptLocked(p plan, o outcome) event {
	ev := event{slog.LevelDebug, "econnect: new token", nil}
	switch {
	case s.login.Fails > 0 || s.renewal.Fails > 0:
		ev.level, ev.msg = slog.LevelInfo, "econnect: recovered"
	case o.adopted:
		ev.msg = "econnect: took a newer token from Config.Store"
	}
	s.tok, s.suspect, s.declined = o.tok, false, false
	if s.refusal != nil {
		s.refusal.replacement = nil
	}
	if p.afterRefusal && !o.adopted && s.refusal != nil { // a 401-driven call to the server: the next waits its spacing
		now := s.clock.mono()
		s.refusal.replacement, s.refusal.at = o.tok, now
		s.relogin.Until = now + policy.Jitter(policy.Doubling(s.relogin.Fails+1, policy.MaxTransient), s.clock.rand())
	}
	if o.calls.logins > 0 && !o.adopted {
		s.accepted = true
	}
	s.login.Reset()
	s.renewal.Reset()
	return ev
}

// keepLocked keeps the current token after its renewal failed while it is
// usable, and sets when the renewal is tried again. s.mu is held.
func (s *source) keepLocked(err error) event {
	left := s.tok.timing.Expiry.Sub(s.clock.wall())
	wait := max(policy.Jitter(policy.RetryDelay(left), s.clock.rand()), wire.RetryAfter(err))
	s.renewal.Fail(s.clock.mono(), wait, err)
	if s.renewal.Fails == 1 {
		return event{slog.LevelWarn, "econnect: renewal failed; keeping the current token", err}
	}
	return event{}
}

// backOffLocked records a failure that left no usable token: logins back
// off. s.mu is held.
func (s *source) backOffLocked(p plan, err error) event {
	switch {
	case s.tok == nil || s.tok != p.old:
	case wire.Refused(err):
		s.dropLocked() // refused by the auth server itself: never hand it out again
	case s.suspect && s.cfg.Password != "":
		// A request saw it refused and the login after failed: it is
		// dropped all the same. Without a password it is kept, being the
		// only token (its renewal failed for a passing reason).
		s.dropLocked()
	}
	s.suspect, s.declined = false, false // the refusal a request saw was answered: by a login, or a renewal
	ceiling := policy.TransientCeiling(s.lifeLocked())
	if !healable(err) {
		ceiling = policy.RefusalCeiling
	}
	wait := cmp.Or(wire.RetryAfter(err), policy.Doubling(s.login.Fails+1, ceiling))
	s.login.Fail(s.clock.mono(), policy.Jitter(wait, s.clock.rand()), err)
	if s.login.Fails == 1 {
		return event{slog.LevelWarn, "econnect: no usable token; backing off", err}
	}
	return event{}
}

// holdLocked holds every auth call for a server's Retry-After, ra: no
// login or renewal inside the window. s.mu is held.
func (s *source) holdLocked(ra time.Duration) {
	if ra > 0 {
		until := s.clock.mono() + ra
		s.login.Hold(until)
		s.renewal.Hold(until)
		s.declined = false
	}
}

// refused handles a refusal of t seen on a request (a 401) or reported by
// Invalidate, and reports whether the request may be retried with another
// token. The first refusal of the current token marks it unsafe, so that
// the next caller replaces it (one login however many requests saw it),
// unless a 401-driven login or renewal brought a token less than its
// spacing ago: then the refusal goes back as it is. The spacing is a
// second, doubled for each fresh token the server refuses in turn, up to
// 30 s: per refused token, however many requests saw it. A token is fresh
// for 30 s after the 401-driven call that brought it; the refusal of any
// other token starts the spacing again from a second. A token taken from
// the store after a refusal is no login: its own refusal is not held back.
func (s *source) refused(t *token) bool {
	s.mu.Lock()
	if s.tok != t || s.suspect {
		s.mu.Unlock()
		return true // replaced, or being replaced: retry with the next token
	}
	now := s.clock.mono()
	if s.relogin.Active(now) {
		s.mu.Unlock()
		return false
	}
	var ev event
	switch {
	case s.replacementLocked(t, now, policy.MaxTransient):
		s.relogin.Fails++ // the server refused a fresh token too
		if s.relogin.Fails == 1 {
			ev = event{slog.LevelWarn, "econnect: the server refused a fresh token; spacing out logins on 401", nil}
		}
	default:
		s.relogin.Fails = 0
	}
	s.suspect = true
	s.refusedLocked(t.raw())
	s.publishLocked()
	s.mu.Unlock()
	s.log(ev)
	return true
}

// fromServer reports whether t came from a 401-driven call to the server,
// rather than from the store: a refusal of such a token is final for the
// request that carried it.
func (s *source) fromServer(t *token) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusal != nil && t == s.refusal.replacement
}

// healed records that a retry after a 401 was accepted: the spacing of
// 401-driven logins is back to a second.
func (s *source) healed() {
	s.mu.Lock()
	s.relogin.Fails = 0
	s.mu.Unlock()
}

// invalidate is Invalidate for a source: a refusal of jwt, seen elsewhere.
// A JWT that is not the current token is only remembered, so that the
// store's copy of it is not adopted.
func (s *source) invalidate(jwt string) {
	s.mu.Lock()
	t := s.tok
	if t == nil || t.raw() != jwt {
		if t == nil {
			s.refusedLocked(jwt)
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.refused(t)
}

// fromShelf returns the token the store holds if the source adopts it (see
// adoptable), or nil: the load a flight makes before any auth call. Its
// error is the store's failure, if it failed.
func (s *source) fromShelf(p plan) (*token, error) {
	e, err := s.shelf.Load(s.ctx)
	if err != nil || e.Token == "" {
		return nil, err
	}
	return s.adoptable(e, p), nil
}

// adoptable returns the token of e, a valid entry for the source's key, if
// the source takes it instead of calling the server (see
// tokenstore.Adopts) and it is usable.
func (s *source) adoptable(e tokenstore.Entry, p plan) *token {
	held := tokenstore.Held{Refused: p.refused}
	if p.old != nil {
		held.Token = p.old.raw()
	}
	if !tokenstore.Adopts(e, held) {
		return nil
	}
	t := makeToken(e.Token, e.Username, policy.NewTiming(e.Expiry, e.Lifetime, s.cfg.EarlyExpiry, s.draw))
	if !t.timing.State(s.clock.wall()).Usable() {
		return nil
	}
	return t
}

// storeWork is what a flight leaves for after its waiters are released,
// in the order flights finished: it waits for prev, the work queued before
// it, then does its store work, if any, and closes done, which Flush waits
// for (the flight's log line is written by then too).
type storeWork struct {
	prev, done chan struct{}
	store      bool // a token to save, or a refused one to delete
}

// queueLocked queues the work o leaves: saving a token from the server, or
// deleting a refused one no token replaced. s.mu is held.
func (s *source) queueLocked(o outcome) storeWork {
	w := storeWork{prev: s.saved, done: make(chan struct{}),
		store: s.shelf != nil && !o.adopted && (o.err == nil || o.forget != "")}
	s.saved = w.done
	return w
}

// settle does the store work a flight leaves, then releases the store's
// lease, so that peers waiting for it find the new token saved.
func (s *source) settle(o outcome, w storeWork) {
	if o.unlock != nil {
		defer o.unlock()
	}
	defer close(w.done)
	if !w.store {
		return
	}
	if w.prev != nil {
		<-w.prev
	}
	if o.err != nil {
		s.shelf.Forget(s.ctx, o.forget)
		return
	}
	s.shelf.Save(s.ctx, entryOf(o.tok, s.clock.wall()), ttlOf(o.tok, s.clock.wall()))
}

// entryOf returns t as stored at now.
func entryOf(t *token, now time.Time) tokenstore.Entry {
	return tokenstore.Entry{Token: t.raw(), Username: t.username(), Expiry: t.timing.Expiry,
		Lifetime: t.timing.Lifetime, SavedAt: now}
}

// ttlOf is how long a store may keep t: its remaining life, zero (no
// limit) for a token that never expires.
func ttlOf(t *token, now time.Time) time.Duration {
	if t.timing.Expiry.IsZero() {
		return 0
	}
	return max(t.timing.Expiry.Sub(now), time.Millisecond)
}

// flush is Flush for a source.
func (s *source) flush(ctx context.Context) error {
	for {
		s.mu.Lock()
		f, saved := s.flight, s.saved
		s.mu.Unlock()
		ch := saved
		if f != nil {
			ch = f.done
		} else if ch == nil || isClosed(ch) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("econnect: waiting for the store: %w", ctx.Err())
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// status is StatusOf for a source.
func (s *source) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	st := Status{State: s.stateLocked(s.clock.wall()).String(), Logins: int(c.logins),
		Renewals: int(c.renewals), Failures: int(c.failures), Adopted: int(c.adopted)}
	if s.tok != nil {
		st.Expiry, st.RenewAt = s.tok.timing.Expiry, s.tok.timing.RenewAt()
	}
	switch {
	case s.login.Fails > 0:
		st.Error = s.login.Err.Error()
	case s.renewal.Fails > 0:
		st.Error = s.renewal.Err.Error()
	}
	return st
}

// publishLocked makes the current token readable without the lock, unless a
// request saw it refused. s.mu is held.
func (s *source) publishLocked() {
	if s.tok == nil || s.suspect {
		s.snap.Store(nil)
		return
	}
	s.snap.Store(s.tok)
}

// An event is a log line decided under the lock and written after it.
type event struct {
	level slog.Level
	msg   string
	err   error
}

// log reports an event to the configured logger, if any. Errors are logged
// by their text, which never holds a secret. s.mu must not be held: the
// logger may call back into the source.
func (s *source) log(ev event, attrs ...slog.Attr) {
	l := s.cfg.Logger
	if l == nil || ev.msg == "" || !l.Enabled(s.ctx, ev.level) {
		return
	}
	attrs = append(attrs, slog.String("username", s.cfg.Username))
	if ev.err != nil {
		attrs = append(attrs, slog.String("error", ev.err.Error()))
	}
	l.LogAttrs(context.WithoutCancel(s.ctx), ev.level, ev.msg, attrs...)
}

// storeWarning reports the first failure of a store streak, naming the
// store's type, never a token.
func (s *source) storeWarning(msg string) {
	s.log(event{level: slog.LevelWarn, msg: msg}, slog.String("store", storeType(s.cfg.Store)))
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
}

var processStart = time.Now()

var systemClock = &clock{
	wall:  wallNow,
	mono:  func() time.Duration { return time.Since(processStart) },
	rand:  rand.Float64,
	sleep: sleep,
}

// wallNow is the system's wall clock without its monotonic reading.
func wallNow() time.Time { return time.Now().Round(0) }

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
