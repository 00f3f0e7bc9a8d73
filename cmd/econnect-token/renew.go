package main

import (
	"context"
	"strings"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/policy"
	"golang.org/x/oauth2"
)

// renewGiven is a run with -renew: it renews the token given in
// ECONNECT_TOKEN or on stdin, else the cached one of -user.
func (g *getter) renewGiven(ctx context.Context) (*oauth2.Token, error) {
	raw, cached, err := g.tokenToRenew(ctx)
	if err != nil {
		return nil, err
	}
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
	if cached == nil {
		cached = &cacheEntry{Token: raw, Expiry: old.Expiry}
	} else if cached.timing().State(g.now()) == policy.Expired {
		return nil, errExpired
	}
	tok, err := g.renew(g.withClient(ctx), cached, user)
	if err != nil && exitCode(err) == exitRefused && g.cache != nil && user != "" {
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
