package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"golang.org/x/oauth2"
)

// runPlain is a run without a subcommand: it prints a token, within
// -timeout.
func runPlain(ctx context.Context, o *options, p *process) error {
	if o.version {
		_, err := fmt.Fprintln(p.stdout, version())
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.demo {
		return runDemo(ctx, o, p.stdout, p.stderr)
	}
	g, err := startGetter(ctx, o, p)
	if err != nil {
		return err
	}
	defer g.hc.CloseIdleConnections()
	var tok *oauth2.Token
	if o.renew {
		tok, err = g.renewGiven(ctx)
	} else {
		tok, err = g.plain(ctx)
	}
	if err != nil {
		return err
	}
	return writeToken(p.stdout, tok, o)
}

// tokenJSON is the output of -json.
type tokenJSON struct {
	Token    string `json:"token"`
	Expiry   string `json:"expiry,omitempty"`
	Username string `json:"username"`
}

// writeToken prints tok as o asks: alone on its line, as a header line, or
// as JSON.
func writeToken(w io.Writer, tok *oauth2.Token, o *options) error {
	var err error
	switch {
	case o.json:
		err = json.NewEncoder(w).Encode(newTokenJSON(tok))
	case o.header:
		_, err = fmt.Fprintf(w, "Authorization: Bearer %s\n", tok.AccessToken)
	default:
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
