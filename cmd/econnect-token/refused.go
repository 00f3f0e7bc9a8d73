package main

import (
	"context"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// plain returns the token a plain run prints: the cached token while it is
// usable, renewed when it is due, else a login's; with -refused, another
// token than the one the server refused.
func (g *getter) plain(ctx context.Context) (*oauth2.Token, error) {
	var ts oauth2.TokenSource
	var err error
	if g.o.refused {
		ts, err = g.refuse(ctx)
	} else {
		ts, _, err = g.obtain(ctx)
	}
	if err != nil {
		if ts != nil {
			econnect.Flush(ctx, ts) // a refused token dropped from the cache
		}
		return nil, err
	}
	return g.finish(ctx, ts)
}

// refuse returns a source that takes another token than the one in
// ECONNECT_TOKEN or on stdin, which the server refused: the cached token
// if it is another one and not older, with no network call; else a login,
// which replaces the refused token in the cache. Of the runs that saw the
// same refusal at the same time, one logs in and the others take its
// token through the cache's lock.
func (g *getter) refuse(ctx context.Context) (oauth2.TokenSource, error) {
	raw := g.p.envToken()
	if raw == "" && !g.o.passwordStdin { // else stdin held the password
		var err error
		if raw, err = g.p.readToken(ctx, "-refused", "paste the token the server refused"); err != nil {
			return nil, err
		}
	}
	if raw == "" {
		return nil, usagef("-refused: no token: set ECONNECT_TOKEN to the token the server refused, or give it on stdin")
	}
	refused, err := econnect.ParseToken(raw)
	if err != nil {
		return nil, usagef("-refused: the refused token is not usable (%v): give the JWT that econnect-token printed", err)
	}
	ts, _, err := g.replace(ctx, refused)
	return ts, err
}
