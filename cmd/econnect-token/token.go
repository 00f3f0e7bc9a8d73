package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

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

// fetchToken logs in, or renews o.token with -renew, through hc.
func fetchToken(ctx context.Context, o *options, hc *http.Client) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	cfg := newConfig(o)
	if !o.renew {
		tok, err := cfg.Token(ctx)
		return tok, explain(err, o)
	}
	old, err := econnect.ParseToken(o.token)
	if err != nil {
		return nil, usagef("-renew: the token to renew is not usable (%s): give the JWT that econnect-token printed", trimLib(err))
	}
	tok, err := cfg.Renew(ctx, old)
	return tok, explain(err, o)
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

// authError is a failed login or renewal, with what to do about it.
type authError struct {
	err  error
	hint string
}

func (e *authError) Error() string { return trimLib(e.err) + "; " + e.hint }
func (e *authError) Unwrap() error { return e.err }

// trimLib returns err's text without the library's "econnect: " prefix,
// which would only repeat the command's name.
func trimLib(err error) string {
	return strings.TrimPrefix(err.Error(), "econnect: ")
}

// explain adds to err, if not nil, what the user can do next.
func explain(err error, o *options) error {
	if err == nil {
		return nil
	}
	return &authError{err: err, hint: hint(err, o)}
}

// hint says what to do about a failed login or renewal.
func hint(err error, o *options) string {
	var cv *tls.CertificateVerificationError
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, econnect.ErrBadCredentials):
		return "check the username (-user or ECONNECT_USERNAME) and the password"
	case errors.As(err, &cv) && o.cacert != "":
		return "the server's certificate is not signed by a certificate in the -cacert file"
	case errors.As(err, &cv):
		return "the server's certificate is not trusted: give its CA certificate with -cacert FILE"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within -timeout: check -url and the network, or raise -timeout"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &re) && re.Response != nil:
		return statusHint(re.Response.StatusCode, o)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "check -url and that the server is reachable"
	}
	return "check -url: it must be the service root, such as https://customer.econnectcloud.com/identities"
}

// statusHint says what to do about an auth answer with status code.
func statusHint(code int, o *options) string {
	switch {
	case o.renew && code == http.StatusUnauthorized:
		return "the token has expired or was revoked: log in again without -renew"
	case code == http.StatusNotFound:
		return "check -url: it must be the service root, such as https://customer.econnectcloud.com/identities or https://host:5009"
	case code == http.StatusTooManyRequests, code >= 500:
		return "the server is busy or failing: try again later"
	}
	return "check -url and the account"
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
