package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// A getter obtains the tokens of one run from the library's token sources,
// with the token cache as their Store unless -no-cache. The sources decide
// when the cached token will do, when to renew it and when to log in, and
// save every token they get, so that each mode only asks for tokens and
// says which one the server refused.
type getter struct {
	o     *options
	p     *process
	hc    *http.Client // for auth calls, and the proxy's requests
	cfg   *econnect.Config
	cache *cacheStore // cfg.Store; nil with -no-cache
	// life bounds the auth calls of the sources, renewals in the
	// background included: the run's, or the proxy's until it stops.
	life context.Context
}

// newGetter returns the getter of o's run, whose sources live as long as
// life.
func newGetter(life context.Context, o *options, p *process) (*getter, error) {
	hc, err := newHTTPClient(o)
	if err != nil {
		return nil, err
	}
	g := &getter{o: o, p: p, hc: hc, cfg: newConfig(o), life: life}
	g.cfg.Logger = slog.New(warnings{p: p, all: o.mode.name == "proxy"})
	if o.noCache {
		return g, nil
	}
	dir, err := cacheDir(p.getenv)
	if err != nil {
		p.warn("no token cache: %v; set ECONNECT_CACHE_DIR, or use -no-cache", err)
		return g, nil
	}
	g.cache = &cacheStore{DirStore: econnect.DirStore(dir)}
	g.cfg.Store = g.cache
	return g, nil
}

// startGetter reads the password as o asks, and returns the getter of the
// run, having warned of what o leaves unchecked. The caller closes its
// client's idle connections when done.
func startGetter(ctx context.Context, o *options, p *process) (*getter, error) {
	if err := o.readPassword(ctx, p); err != nil {
		return nil, err
	}
	g, err := newGetter(ctx, o, p)
	if err != nil {
		return nil, err
	}
	o.warnInsecure(p)
	return g, nil
}

// newConfig returns the library's Config for o, without a Store.
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

// source returns a new token source of the run. With the cache, it starts
// from the cached token, and saves every token it gets from the server.
func (g *getter) source() oauth2.TokenSource {
	return g.cfg.TokenSource(g.withClient(g.life))
}

// transport returns an HTTP transport that adds ts's token to requests and
// heals refusals, as Config.Client does, around the run's own source.
func (g *getter) transport(ts oauth2.TokenSource) http.RoundTripper {
	return &econnect.Transport{Source: ts, Base: g.hc.Transport}
}

// obtain returns the run's source and its first token: the cached token
// while it is usable (when it is due, its renewal starts in the
// background), else one from the server; with -fresh, a login's whatever
// the cache holds.
func (g *getter) obtain(ctx context.Context) (oauth2.TokenSource, *oauth2.Token, error) {
	if g.o.fresh {
		return g.login(ctx)
	}
	ts := g.source()
	tok, err := econnect.TokenContext(ctx, ts)
	return ts, tok, g.explain(err)
}

// login logs in and returns a source started from the new token, which
// saves it in the cache. A login that fails leaves the cache as it was.
func (g *getter) login(ctx context.Context) (oauth2.TokenSource, *oauth2.Token, error) {
	tok, err := g.cfg.Token(g.withClient(ctx))
	if err != nil {
		return nil, nil, g.explain(err)
	}
	return g.cfg.TokenSourceFrom(g.withClient(g.life), tok), tok, nil
}

// replace returns a source told that the server refused tok, and the token
// it takes instead: a newer one that another run saved in the cache, else
// a login's, one for all the runs that need it at once (the others wait
// for its token through the cache's lock). A login that fails deletes tok
// from the cache, so that no later run hands it out.
//
// The source is a new one, which holds no token: a source that held tok
// would hand it out again, with no error, once the login failed (see
// TestInvalidatedTokenIsNotHandedOutAgain).
func (g *getter) replace(ctx context.Context, tok *oauth2.Token) (oauth2.TokenSource, *oauth2.Token, error) {
	ts := g.source()
	econnect.Invalidate(ts, tok)
	t, err := econnect.TokenContext(ctx, ts)
	return ts, t, g.explain(err)
}

// finish waits for what ts has left to do, a renewal under way and the
// saves to the cache, and returns its freshest token: the renewed one, or
// the one in hand while it is usable, with a warning if its renewal
// failed. A run that exits right after its token calls it, so that the
// next run finds what this one got.
func (g *getter) finish(ctx context.Context, ts oauth2.TokenSource) (*oauth2.Token, error) {
	if err := econnect.Flush(ctx, ts); errors.Is(err, context.Canceled) {
		return nil, err // interrupted; past -timeout, the token in hand will do
	}
	tok, err := econnect.TokenContext(ctx, ts)
	if err != nil {
		return nil, g.explain(err)
	}
	// With a token in hand, an error is that of renewals failing.
	if st, _ := econnect.StatusOf(ts); st.Error != "" {
		g.p.warn("could not renew the cached token (%s); printing it, good for another %s",
			st.Error, time.Until(tok.Expiry).Round(time.Second))
	}
	return tok, nil
}

// flushWithin waits, for d at most, for what ts has left to do.
func flushWithin(ctx context.Context, ts oauth2.TokenSource, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	econnect.Flush(ctx, ts)
}

// obtainWithin is obtain within -timeout.
func (g *getter) obtainWithin(ctx context.Context) (oauth2.TokenSource, *oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, g.o.timeout)
	defer cancel()
	return g.obtain(ctx)
}

// replaceWithin is replace within -timeout.
func (g *getter) replaceWithin(ctx context.Context, tok *oauth2.Token) (oauth2.TokenSource, *oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, g.o.timeout)
	defer cancel()
	return g.replace(ctx, tok)
}
