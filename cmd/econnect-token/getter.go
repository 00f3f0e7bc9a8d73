package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/policy"
	"golang.org/x/oauth2"
)

// A getter obtains the tokens of one run, through the cache unless
// -no-cache. Every mode gets its tokens from obtain and replace, so that
// the cache behind them can change without the modes knowing.
type getter struct {
	o     *options
	p     *process
	hc    *http.Client // for auth calls, and the proxy's requests
	cfg   *econnect.Config
	cache *tokenCache // nil with -no-cache
	now   func() time.Time
	rand  func() float64 // draws each new token's renewal threshold
}

// newGetter returns the getter of o's run.
func newGetter(o *options, p *process) (*getter, error) {
	hc, err := newHTTPClient(o)
	if err != nil {
		return nil, err
	}
	g := &getter{o: o, p: p, hc: hc, cfg: newConfig(o), now: time.Now, rand: rand.Float64}
	if o.noCache {
		return g, nil
	}
	dir, err := cacheDir(p.getenv)
	if err != nil {
		p.warn("no token cache: %v; set ECONNECT_CACHE_DIR, or use -no-cache", err)
		return g, nil
	}
	g.cache = &tokenCache{dir: dir, warn: p.warn}
	return g, nil
}

// newConfig returns the library's Config for o.
func newConfig(o *options) *econnect.Config {
	return &econnect.Config{
		BaseURL:           o.url,
		Username:          o.user,
		Password:          o.password,
		AllowInsecureHTTP: o.allowHTTP,
	}
}

// withClient returns ctx carrying the getter's HTTP client, for the
// library's auth calls.
func (g *getter) withClient(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, g.hc)
}

// obtain returns the token of a run without -renew: the cached token while
// it is fresh, else a renewal of it when it is due, else a login.
func (g *getter) obtain(ctx context.Context) (*oauth2.Token, error) {
	ctx = g.withClient(ctx)
	var e *cacheEntry
	if !g.o.fresh {
		e = g.load(g.o.user)
	}
	switch state := entryState(e, g.now()); state {
	case policy.Fresh:
		return e.oauth2Token(), nil
	case policy.Due, policy.Unsafe:
		tok, err := g.renew(ctx, e, g.o.user)
		if err == nil || ctx.Err() != nil || exitCode(err) == exitUsage {
			return tok, g.explain(err)
		}
		if now := g.now(); exitCode(err) == exitUnavailable && e.timing().State(now).Usable() {
			g.p.warn("could not renew the cached token (%s); printing it, good for another %s",
				err, e.Expiry.Sub(now).Round(time.Second))
			return e.oauth2Token(), nil
		}
	}
	return g.login(ctx)
}

// replace returns a new token after the server refused tok: a login,
// whose token replaces tok in the cache.
func (g *getter) replace(ctx context.Context, tok *oauth2.Token) (*oauth2.Token, error) {
	return g.login(g.withClient(ctx))
}

// source returns a token source that starts from tok and renews it, and an
// HTTP transport that adds its token to requests and heals refusals. Both
// live as long as ctx.
func (g *getter) source(ctx context.Context, tok *oauth2.Token) http.RoundTripper {
	ts := g.cfg.TokenSourceFrom(g.withClient(ctx), tok)
	return &econnect.Transport{Source: ts, Base: g.hc.Transport}
}

// entryState is where e's token stands at now; None without one.
func entryState(e *cacheEntry, now time.Time) policy.State {
	if e == nil {
		return policy.None
	}
	return e.timing().State(now)
}

// login logs in and caches the token.
func (g *getter) login(ctx context.Context) (*oauth2.Token, error) {
	tok, err := g.cfg.Token(ctx)
	if err != nil {
		return nil, g.explain(err)
	}
	g.store(g.o.user, tok, nil, g.now())
	return tok, nil
}

// renew renews e's token and caches the new one as user's.
func (g *getter) renew(ctx context.Context, e *cacheEntry, user string) (*oauth2.Token, error) {
	tok, err := g.cfg.Renew(ctx, e.oauth2Token())
	if err != nil {
		return nil, err
	}
	g.store(user, tok, e, g.now())
	return tok, nil
}

// key is the cache key of user at o's server.
func (g *getter) key(user string) cacheKey {
	return newCacheKey(g.o.base, user, g.o.allowHTTP)
}

// load returns the cached entry of user, or nil.
func (g *getter) load(user string) *cacheEntry {
	if g.cache == nil || user == "" {
		return nil
	}
	return g.cache.load(g.key(user))
}

// store caches tok, received at now, as user's token; old is the entry tok
// renewed, if any.
func (g *getter) store(user string, tok *oauth2.Token, old *cacheEntry, now time.Time) {
	if g.cache == nil || user == "" {
		return
	}
	if old != nil && old.Token == tok.AccessToken {
		return // the server renewed with the same JWT: its timing stands
	}
	g.cache.store(g.key(user), newCacheEntry(g.key(user), tok, now, g.rand()))
}
