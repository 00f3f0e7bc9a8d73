package main

import (
	"context"
	"strings"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// A run with -renew has no password: it renews the token it is given, or
// the cached one of -user, and never logs in.

// renewGiven is a run with -renew: it renews the token in ECONNECT_TOKEN
// or on stdin (unless a terminal), else the cached token of -user, else a
// token typed on the terminal.
func (g *getter) renewGiven(ctx context.Context) (*oauth2.Token, error) {
	raw := g.p.envToken()
	if raw == "" && !g.p.stdinTerminal {
		var err error
		if raw, err = g.p.readToken(ctx, "-renew", ""); err != nil {
			return nil, err
		}
	}
	if raw != "" {
		return g.renewRaw(ctx, raw)
	}
	if tok, cached, err := g.renewCached(ctx); cached || err != nil {
		return tok, err
	}
	if g.p.stdinTerminal {
		var err error
		if raw, err = g.p.readToken(ctx, "-renew", "paste the token to renew"); err != nil {
			return nil, err
		}
	}
	if raw == "" {
		return nil, g.noTokenToRenew()
	}
	return g.renewRaw(ctx, raw)
}

// renewRaw renews raw, a JWT, and caches the new token as its user's.
func (g *getter) renewRaw(ctx context.Context, raw string) (*oauth2.Token, error) {
	old, err := econnect.ParseToken(raw)
	if err != nil {
		return nil, usagef("-renew: the token to renew is not usable (%v): give the JWT that econnect-token printed", err)
	}
	user, _ := old.Extra("username").(string)
	switch {
	case g.o.user != "" && user != "" && !strings.EqualFold(user, g.o.user):
		return nil, usagef("-renew: the token belongs to another user than -user (or ECONNECT_USERNAME) says; drop -user, or give that user's token")
	case g.o.user != "":
		user = g.o.user
	}
	tok, err := g.cfg.Renew(g.withClient(ctx), old)
	if err != nil {
		return nil, g.explain(err)
	}
	g.keep(ctx, user, tok)
	return tok, nil
}

// keep caches tok, renewed by hand, as user's: a source started from it
// saves it, unless the cache holds a newer token.
func (g *getter) keep(ctx context.Context, user string, tok *oauth2.Token) {
	if g.cache == nil || user == "" {
		return
	}
	cfg := *g.cfg
	cfg.Username = user
	econnect.Flush(ctx, cfg.TokenSourceFrom(g.withClient(ctx), tok))
}

// renewCached renews the cached token of -user, if the cache holds one;
// cached says whether it held any. It renews through a source over the
// cache, told that the token was refused: without a password, such a
// source renews it, saves the new token, and drops from the cache a token
// whose renewal the server refuses.
func (g *getter) renewCached(ctx context.Context) (tok *oauth2.Token, cached bool, err error) {
	if g.cache == nil || g.o.user == "" {
		return nil, false, nil
	}
	// A source started from no token starts from the cached one, if usable.
	ts := g.cfg.TokenSourceFrom(g.withClient(ctx), nil)
	if st, _ := econnect.StatusOf(ts); st.Adopted == 0 {
		if g.cache.found.Load() {
			return nil, true, errExpired
		}
		return nil, false, nil
	}
	defer econnect.Flush(ctx, ts)
	old, err := econnect.TokenContext(ctx, ts)
	if err == nil {
		econnect.Invalidate(ts, old)
		tok, err = econnect.TokenContext(ctx, ts)
	}
	if err != nil {
		return nil, true, g.explain(err)
	}
	if tok.AccessToken == old.AccessToken {
		// The renewal failed, not refused: the source keeps its token and
		// tells no caller why. A renewal by hand says why, or succeeds.
		tok, err = g.renewRaw(ctx, old.AccessToken)
	}
	return tok, true, err
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
