package apitest_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

// fmtVerbs are every verb a value may be printed with. %T and %p print a
// type or an address, but are checked too: none may print a secret.
var fmtVerbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T", "%p"}

// checkNoSecret fails the test if out holds a secret, raw or in the hex
// that %x and %X print for a string. The message shows where, masked.
func checkNoSecret(t *testing.T, what, out string, secrets []string) {
	t.Helper()
	var spellings []string
	for _, s := range secrets {
		h := hex.EncodeToString([]byte(s))
		spellings = append(spellings, s, h, strings.ToUpper(h))
	}
	masked := out
	for _, s := range spellings {
		masked = strings.ReplaceAll(masked, s, "<SECRET>")
	}
	if masked != out {
		t.Errorf("%s prints a secret:\n%s", what, masked)
	}
}

// TestFmtPrintsNoSecret prints every value the package returns with every
// fmt verb, once its sources hold tokens: neither the password nor a token
// may show.
func TestFmtPrintsNoSecret(t *testing.T) {
	f := newFixture(t)
	// fmt prints a pointer that a verb does not fit by walking what it points
	// to: %s of an *http.Transport with live connections reads its fields
	// while they change, a data race that says nothing of secrets. The
	// server's transport goes behind a pointer that fmt prints as an address.
	f.ctx = context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: &opaque{f.srv.Client().Transport}})
	ts := f.cfg.TokenSource(f.ctx)
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	from := f.cfg.TokenSourceFrom(f.ctx, tok)
	if _, err := from.Token(); err != nil {
		t.Fatalf("TokenSourceFrom().Token() error = %v", err)
	}
	hc := f.cfg.Client(f.ctx)
	_, clientJWT := get(t, hc, f.srv.URL+"/api/v1/whoami")
	hand := &econnect.Transport{Source: f.cfg.TokenSource(f.ctx), Base: &opaque{f.srv.Client().Transport}}
	_, handJWT := get(t, &http.Client{Transport: hand}, f.srv.URL+"/api/v1/whoami")
	if clientJWT == "" || handJWT == "" {
		t.Fatal("the Client or the hand-built Transport sent no token")
	}
	values := []namedValue{
		{"Config", f.cfg},
		{"*Config", &f.cfg},
		{"struct holding a Config", struct{ C econnect.Config }{f.cfg}},
		{"TokenSource", ts},
		{"TokenSourceFrom", from},
		{"Client", hc},
		{"Client().Transport", hc.Transport},
		{"hand-built Transport", hand},
		{"Extra(username)", tok.Extra("username")},
		{"Client().Transport's Source", hc.Transport.(*econnect.Transport).Source},
	}
	values = append(values, authErrors(t, f, tok)...)
	secrets := []string{testPassword, tok.AccessToken, clientJWT, handJWT}
	for _, val := range values {
		t.Run(val.name, func(t *testing.T) {
			for _, verb := range fmtVerbs {
				if val.name == "Config" || val.name == "struct holding a Config" {
					if verb == "%p" {
						// fmt prints a non-pointer for %p with its methods off, and
						// Password is a plain string field: print a *Config.
						continue
					}
				}
				want := secrets
				if (val.name == "TokenSource" || val.name == "TokenSourceFrom") && (verb == "%s" || verb == "%q") {
					// These values are oauth2's own cache, which %s and %q print
					// whole, the *oauth2.Token it holds included, as for any
					// oauth2.ReuseTokenSource; the password never shows.
					want = secrets[:1]
				}
				checkNoSecret(t, fmt.Sprintf("fmt %s of %s", verb, val.name), fmt.Sprintf(verb, val.v), want)
			}
		})
	}
	if s := fmt.Sprint(f.cfg); !strings.Contains(s, "[redacted]") {
		t.Errorf("fmt of Config = %s, want the password shown as [redacted]", s)
	}
}

// opaque is a RoundTripper that fmt prints as an address.
type opaque struct{ rt http.RoundTripper }

func (o *opaque) RoundTrip(r *http.Request) (*http.Response, error) { return o.rt.RoundTrip(r) }

// namedValue is a value to print, and what it is.
type namedValue struct {
	name string
	v    any
}

// authErrors returns the errors of auth calls and of Client requests whose
// answers echo the password or the token.
func authErrors(t *testing.T, f *fixture, tok *oauth2.Token) []namedValue {
	t.Helper()
	other, _, _ := otherOrigin(t)
	faults := []struct {
		name  string
		fault econnecttest.Fault
	}{
		{"400", econnecttest.Fault{Status: 400, Body: "no user with password " + testPassword}},
		{"503", econnecttest.Fault{Status: 503, Body: "upstream down; request was " + testPassword}},
		{"redirect", econnecttest.Fault{Status: http.StatusTemporaryRedirect,
			Header: http.Header{"Location": {other.URL + "/" + testPassword + "?p=" + testPassword}}}},
	}
	var errs []namedValue
	for _, ft := range faults {
		f.srv.FailLogin(1, ft.fault)
		_, err := f.cfg.Token(f.ctx)
		f.srv.FailLogin(1, ft.fault)
		// The deadline ends the request before the backoff after a 503 does.
		_, reqErr := getWithin(f.cfg.Client(f.ctx), f.srv.URL+"/api/v1/whoami", 100*time.Millisecond)
		if err == nil || reqErr == nil {
			t.Fatalf("login answered %s: Token() error = %v, Client request error = %v; want errors", ft.name, err, reqErr)
		}
		errs = append(errs, namedValue{"error of Token, login " + ft.name, err},
			namedValue{"error of a Client request, login " + ft.name, reqErr})
	}
	f.srv.FailRenew(1, econnecttest.Fault{Status: 401, Body: "token " + tok.AccessToken + " refused"})
	_, err := f.cfg.Renew(f.ctx, tok)
	if err == nil {
		t.Fatal("Renew() error = nil, want the 401")
	}
	return append(errs, namedValue{"error of Renew, 401", err})
}

// TestJSONAndSlogRedactConfig: json.Marshal and slog's text and JSON
// handlers show a Config, alone or inside a struct, without its password,
// and the package's other values without a secret.
func TestJSONAndSlogRedactConfig(t *testing.T) {
	f := newFixture(t)
	ts := f.cfg.TokenSource(f.ctx)
	tok, err := ts.Token()
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	secrets := []string{testPassword, tok.AccessToken}
	holder := struct{ C econnect.Config }{f.cfg}
	for _, v := range []any{f.cfg, &f.cfg, holder, &holder} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T) error = %v", v, err)
		}
		checkNoSecret(t, fmt.Sprintf("json.Marshal(%T)", v), string(b), secrets)
		if bytes.Contains(b, []byte(`"Password"`)) {
			t.Errorf(`json.Marshal(%T) = %s, want no Password at all`, v, b)
		}
	}
	var text, js bytes.Buffer
	for _, l := range []*slog.Logger{slog.New(slog.NewTextHandler(&text, nil)), slog.New(slog.NewJSONHandler(&js, nil))} {
		l.Info("values", "cfg", f.cfg, "ptr", &f.cfg, "holder", holder, "source", ts,
			"client", f.cfg.Client(f.ctx), "username", tok.Extra("username"))
	}
	for name, out := range map[string]string{"text": text.String(), "JSON": js.String()} {
		checkNoSecret(t, "slog's "+name+" handler", out, secrets)
		// The text handler prints the holder with fmt (Config.Format); the JSON
		// one with json.Marshal, which leaves the password out altogether.
		want := map[string]int{"text": 3, "JSON": 2}[name]
		if n := strings.Count(out, "[redacted]"); n != want {
			t.Errorf("slog's %s handler shows [redacted] %d times, want %d (cfg, ptr, and holder in text)", name, n, want)
		}
	}
}

// TestJSONRoundTrip: a Config marshalled and read back has no password, so
// it fails with ErrNoPassword rather than log in with a placeholder (which
// would count toward the account's lockout).
func TestJSONRoundTrip(t *testing.T) {
	f := newFixture(t)
	b, err := json.Marshal(f.cfg)
	if err != nil {
		t.Fatalf("json.Marshal() error = %v", err)
	}
	var back econnect.Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal(%s) error = %v", b, err)
	}
	if back.BaseURL != f.cfg.BaseURL || back.Username != f.cfg.Username || back.Password != "" {
		t.Errorf("read back %+v, want the BaseURL and Username and no password", back)
	}
	if _, err := back.Token(f.ctx); !errors.Is(err, econnect.ErrNoPassword) {
		t.Errorf("Token() of the Config read back: error = %v, want ErrNoPassword", err)
	}
	if _, err := back.TokenSource(f.ctx).Token(); !errors.Is(err, econnect.ErrNoPassword) {
		t.Errorf("TokenSource().Token() of the Config read back: error = %v, want ErrNoPassword", err)
	}
	if n := f.logins(); n != 0 {
		t.Errorf("the server saw %d logins, want 0", n)
	}
}
