package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/policy"
	"golang.org/x/oauth2"
)

// printToken obtains a token as o asks, from the cache, a renewal or a
// login, and prints it.
func printToken(ctx context.Context, o *options, p *process) error {
	hc, err := newHTTPClient(o, p.stderr)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	g := newGetter(o, p)
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	var tok *oauth2.Token
	if o.renew {
		tok, err = g.renewGiven(ctx)
	} else {
		tok, err = g.get(ctx)
	}
	if err != nil {
		return err
	}
	return writeToken(p.stdout, tok, o.json)
}

// newHTTPClient returns the client for the auth calls: http.DefaultTransport's
// settings, with the roots of -cacert or no check at all with
// -insecure-skip-verify, which it warns about on stderr.
func newHTTPClient(o *options, stderr io.Writer) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	switch {
	case o.cacert != "":
		pool, err := loadRoots(o.cacert)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig.RootCAs = pool
	case o.insecure:
		fmt.Fprintln(stderr, "econnect-token: warning: -insecure-skip-verify: the server's certificate is not checked, "+
			"so anyone on the network path could read the password and the token; use -cacert FILE instead")
		tr.TLSClientConfig.InsecureSkipVerify = true
	}
	return &http.Client{Transport: tr}, nil
}

// loadRoots reads the PEM certificates in file into a new pool.
func loadRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("-cacert: %v; give a PEM file with the server's CA certificate", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, usagef("-cacert: %s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", file)
	}
	return pool, nil
}

// A getter obtains the token of one run, through the cache unless
// -no-cache.
type getter struct {
	o     *options
	p     *process
	cfg   *econnect.Config
	cache *tokenCache // nil with -no-cache
	now   func() time.Time
	rand  func() float64 // draws each new token's renewal threshold
}

func newGetter(o *options, p *process) *getter {
	g := &getter{o: o, p: p, cfg: newConfig(o), now: time.Now, rand: rand.Float64}
	if o.noCache {
		return g
	}
	dir, err := cacheDir(p.getenv)
	if err != nil {
		p.warn("no token cache: %v; set ECONNECT_CACHE_DIR, or use -no-cache", err)
		return g
	}
	g.cache = &tokenCache{dir: dir, warn: p.warn}
	return g
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

// get is a run without -renew: the cached token while it is fresh, else a
// renewal of it when it is due, else a login.
func (g *getter) get(ctx context.Context) (*oauth2.Token, error) {
	var e *cacheEntry
	if !g.o.fresh {
		e = g.load(g.o.user)
	}
	switch state := entryState(e, g.now()); state {
	case policy.Fresh:
		return e.oauth2Token(), nil
	case policy.Due, policy.Unsafe:
		tok, err := g.renew(ctx, e, g.o.user)
		if err == nil || ctx.Err() != nil || refusedHTTP(err) {
			return tok, g.explain(err)
		}
		if now := g.now(); !refused(err) && e.timing().State(now).Usable() {
			g.p.warn("could not renew the cached token (%s); printing it, good for another %s",
				trimLib(err), e.Expiry.Sub(now).Round(time.Second))
			return e.oauth2Token(), nil
		}
	}
	return g.login(ctx)
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

// renewGiven is a run with -renew: it renews the token given in
// ECONNECT_TOKEN or on stdin, else the cached one of -user.
func (g *getter) renewGiven(ctx context.Context) (*oauth2.Token, error) {
	raw, cached, err := g.tokenToRenew(ctx)
	if err != nil {
		return nil, err
	}
	old, err := econnect.ParseToken(raw)
	if err != nil {
		return nil, usagef("-renew: the token to renew is not usable (%s): give the JWT that econnect-token printed", trimLib(err))
	}
	user, _ := old.Extra("username").(string)
	switch {
	case g.o.user != "" && user != "" && !strings.EqualFold(user, g.o.user):
		return nil, usagef("-renew: the token belongs to another user than -user (or ECONNECT_USERNAME) says; drop -user, or give that user's token")
	case g.o.user != "":
		user = g.o.user
	}
	if cached == nil {
		cached = &cacheEntry{Token: raw, Expiry: old.Expiry}
	} else if cached.timing().State(g.now()) == policy.Expired {
		return nil, fmt.Errorf("-renew: the cached token has expired; log in again without -renew")
	}
	tok, err := g.renew(ctx, cached, user)
	if refused(err) && g.cache != nil && user != "" {
		g.cache.drop(g.key(user), raw)
	}
	return tok, g.explain(err)
}

// tokenToRenew returns the token -renew renews: $ECONNECT_TOKEN, else the
// first line of stdin (unless a terminal), else the cached token of -user
// (then returned as cached), else a line typed on the terminal.
func (g *getter) tokenToRenew(ctx context.Context) (raw string, cached *cacheEntry, err error) {
	if raw = strings.TrimSpace(g.p.getenv("ECONNECT_TOKEN")); raw != "" {
		return raw, nil, nil
	}
	if !g.p.stdinTerminal {
		if raw, err = firstLine(ctx, g.p.stdin); err != nil {
			return "", nil, stdinError("-renew", err)
		}
		if raw = strings.TrimSpace(raw); raw != "" {
			return raw, nil, nil
		}
	}
	if cached = g.load(g.o.user); cached != nil {
		return cached.Token, cached, nil
	}
	if g.p.stdinTerminal {
		g.p.say("-renew: paste the token to renew and press Enter (or set ECONNECT_TOKEN)")
		if raw, err = firstLine(ctx, g.p.stdin); err != nil {
			return "", nil, stdinError("-renew", err)
		}
		if raw = strings.TrimSpace(raw); raw != "" {
			return raw, nil, nil
		}
	}
	return "", nil, g.noTokenToRenew()
}

// noTokenToRenew says where -renew looked for a token.
func (g *getter) noTokenToRenew() error {
	switch {
	case g.cache == nil:
		return usagef("-renew: no token to renew: set ECONNECT_TOKEN or give the token on stdin")
	case g.o.user == "":
		return usagef("-renew: no token to renew: set ECONNECT_TOKEN, give the token on stdin, " +
			"or name the user whose cached token to renew with -user or ECONNECT_USERNAME")
	}
	return usagef("-renew: no token to renew: none in ECONNECT_TOKEN or on stdin, and none cached for this -user and -url; " +
		"log in first, without -renew")
}

// tokenJSON is the output of -json.
type tokenJSON struct {
	Token    string `json:"token"`
	Expiry   string `json:"expiry,omitempty"`
	Username string `json:"username"`
}

// writeToken prints tok alone on its line, or as JSON.
func writeToken(w io.Writer, tok *oauth2.Token, asJSON bool) error {
	var err error
	if asJSON {
		err = json.NewEncoder(w).Encode(newTokenJSON(tok))
	} else {
		_, err = fmt.Fprintln(w, tok.AccessToken)
	}
	if err != nil {
		return fmt.Errorf("writing the token: %w", err)
	}
	return nil
}

func newTokenJSON(tok *oauth2.Token) tokenJSON {
	j := tokenJSON{Token: tok.AccessToken}
	j.Username, _ = tok.Extra("username").(string)
	if !tok.Expiry.IsZero() {
		j.Expiry = tok.Expiry.UTC().Format(time.RFC3339)
	}
	return j
}
