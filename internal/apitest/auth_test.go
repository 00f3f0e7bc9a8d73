package apitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/testkit"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// TestRequests checks the whole login and renewal requests for every
// spelling of BaseURL, and the token a login hands out: the JWT, Bearer,
// the username, and an Expiry counted from the send time, a second short
// for the server's truncated iat.
func TestRequests(t *testing.T) {
	tests := []struct {
		name, prefix, base string
	}{
		{"cloud", "/identities", "/identities"},
		{"cloud with slash", "/identities", "/identities/"},
		{"on premise", "", ""},
		{"on premise with slash", "", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jwt := hourJWT()
			var logins, renewals atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case tt.prefix + "/api/v1/authenticate":
					logins.Add(1)
					checkLoginRequest(t, r)
				case tt.prefix + "/api/v1/renewToken":
					renewals.Add(1)
					if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer "+jwt {
						t.Errorf("renewal request %s with Authorization %q, want GET with the current token", r.Method, r.Header.Get("Authorization"))
					}
				default:
					t.Errorf("request to %s, want %s/api/v1/…", r.URL.Path, tt.prefix)
				}
				fmt.Fprint(w, answer(jwt))
			}))
			defer srv.Close()
			cfg := econnect.Config{BaseURL: srv.URL + tt.base, Username: testUser, Password: testPassword}
			before := time.Now()
			tok, err := cfg.Token(context.Background())
			after := time.Now()
			if err != nil {
				t.Fatalf("Token() error = %v", err)
			}
			checkToken(t, tok, jwt, before, after)
			if _, err := cfg.Renew(context.Background(), tok); err != nil {
				t.Fatalf("Renew() error = %v", err)
			}
			if logins.Load() != 1 || renewals.Load() != 1 {
				t.Errorf("server saw %d logins and %d renewals, want 1 and 1", logins.Load(), renewals.Load())
			}
		})
	}
}

func checkLoginRequest(t *testing.T, r *http.Request) {
	t.Helper()
	if r.Method != http.MethodPost {
		t.Errorf("login method = %s, want POST", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("login Content-Type = %q, want application/json", ct)
	}
	if a := r.Header.Get("Authorization"); a != "" {
		t.Errorf("login carries Authorization %q, want none", a)
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		t.Errorf("login body is not JSON: %v", err)
	}
	want := map[string]any{"username": testUser, "password": testPassword}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("login body mismatch (-want +got):\n%s", diff)
	}
}

// checkToken checks a token logged in for between before and after with an
// hour-long jwt.
func checkToken(t *testing.T, tok *oauth2.Token, jwt string, before, after time.Time) {
	t.Helper()
	if tok.AccessToken != jwt || tok.TokenType != "Bearer" || tok.Extra("username") != testUser {
		t.Errorf("Token() = {AccessToken: the JWT %t, TokenType: %q, username: %v}, want the JWT, Bearer, %s",
			tok.AccessToken == jwt, tok.TokenType, tok.Extra("username"), testUser)
	}
	const life = time.Hour - time.Second // exp − iat, less the second iat was truncated by
	if lo, hi := before.Add(life), after.Add(life); tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
		t.Errorf("Expiry = %v, want the send time + 1 h − 1 s, between %v and %v", tok.Expiry, lo, hi)
	}
}

// TestBadAnswers feeds a login every kind of malformed 200 answer: each is
// an error that says what was wrong, short, and without the token.
func TestBadAnswers(t *testing.T) {
	now := time.Now().Unix()
	tests := []struct {
		name, body, want string
	}{
		{"html", "<html>proxy error</html>", "not a JSON token answer"},
		{"blank", " ", "not a JSON token answer"},
		{"null", "null", "no token"},
		{"no token", `{"username":"camera-1"}`, "no token"},
		{"empty token", `{"token":""}`, "no token"},
		{"number token", `{"token":42}`, "not a JSON token answer"},
		{"opaque token", `{"token":"SECRET-opaque-value"}`, "token is not a JWT"},
		{"two parts", `{"token":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9"}`, "token is not a JWT"},
		{"payload not JSON", `{"token":"eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"}`, "token is not a JWT"},
		{"exp a string", answer(testkit.FakeJWT(map[string]any{"exp": "tomorrow"})), "exp is not a time"},
		{"iat a string", answer(testkit.FakeJWT(map[string]any{"exp": now + 60, "iat": "now"})), "iat is not a time"},
		{"exp negative", answer(testkit.FakeJWT(map[string]any{"exp": -5})), "exp is not a time"},
		{"exp huge", answer(testkit.FakeJWT(map[string]any{"exp": 1e300})), "exp is not a time"},
		{"exp before iat", answer(testkit.FakeJWT(map[string]any{"exp": now, "iat": now + 60})), "expired on arrival"},
		{"exp in the past", answer(testkit.FakeJWT(map[string]any{"exp": now - 1})), "expired on arrival"},
		{"oversized", `{"token":"` + strings.Repeat("a", 1<<20) + `"}`, "larger than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.FailLogin(1, econnecttest.Fault{Body: tt.body})
			_, err := f.cfg.Token(f.ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Token() error = %v, want one saying %q", err, tt.want)
			}
			var re *oauth2.RetrieveError
			if errors.As(err, &re) {
				t.Errorf("Token() error = %v, a RetrieveError; want none for a 200 answer", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "econnect: ") || len(msg) > 200 || strings.Contains(msg, "SECRET") {
				t.Errorf("Token() error = %q, want short, prefixed and without the token", msg)
			}
		})
	}
}

// TestRefusals checks the errors of non-2xx login answers: a RetrieveError
// with the status and at most 512 bytes of body, ErrBadCredentials for 400.
func TestRefusals(t *testing.T) {
	tests := []struct {
		name           string
		fault          econnecttest.Fault
		password       string
		wantStatus     int
		wantBadCreds   bool
		wantBodyPrefix string
	}{
		{"wrong password", econnecttest.Fault{}, "wrong", 400, true, "invalid username or password"},
		{"unavailable", econnecttest.Fault{Status: 503, Body: "down for maintenance"}, testPassword, 503, false, "down for"},
		{"long body", econnecttest.Fault{Status: 500, Body: strings.Repeat("x", 5000)}, testPassword, 500, false, "xxx"},
		{"echoed password", econnecttest.Fault{Status: 502, Body: "bad gateway: " + testPassword}, testPassword, 502, false, "bad gateway: [redacted]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.fault.Status != 0 {
				f.srv.FailLogin(1, tt.fault)
			}
			f.cfg.Password = tt.password
			_, err := f.cfg.Token(f.ctx)
			if got := errors.Is(err, econnect.ErrBadCredentials); got != tt.wantBadCreds {
				t.Errorf("errors.Is(%v, ErrBadCredentials) = %t, want %t", err, got, tt.wantBadCreds)
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("Token() error = %v, want an *oauth2.RetrieveError", err)
			}
			if re.Response == nil || re.Response.StatusCode != tt.wantStatus {
				t.Errorf("RetrieveError.Response = %v, want status %d", re.Response, tt.wantStatus)
			}
			if len(re.Body) > 512 || !bytes.HasPrefix(re.Body, []byte(tt.wantBodyPrefix)) {
				t.Errorf("RetrieveError.Body = %.40q (%d bytes), want ≤ 512 bytes starting %q", re.Body, len(re.Body), tt.wantBodyPrefix)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "econnect: login refused: ") || len(msg) > 120 || strings.Contains(msg, testPassword) {
				t.Errorf("Token() error = %q, want short, prefixed, without the password", msg)
			}
		})
	}
}

// TestRedirectsNotFollowed: a login follows no redirect, since a 307 would
// replay the password elsewhere; the error names where it pointed, without
// the query.
func TestRedirectsNotFollowed(t *testing.T) {
	other, requests, _ := otherOrigin(t)
	f := newFixture(t)
	f.srv.FailLogin(1, econnecttest.Fault{Status: http.StatusTemporaryRedirect,
		Header: http.Header{"Location": {other.URL + "/steal?x=1"}}})
	_, err := f.cfg.Token(f.ctx)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("Token() error = %v, want a RetrieveError with status 307", err)
	}
	if !strings.Contains(err.Error(), other.URL+"/steal") || strings.Contains(err.Error(), "x=1") {
		t.Errorf("Token() error = %q, want it to name %s/steal without the query", err, other.URL)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
}

// deadlineRecorder records the deadline of each request's context.
type deadlineRecorder struct {
	base      http.RoundTripper
	deadlines chan time.Time
}

func (d *deadlineRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	dl, _ := req.Context().Deadline()
	d.deadlines <- dl
	return d.base.RoundTrip(req)
}

// TestAuthCallDeadline: every auth call ends by the earlier of the ctx
// deadline and 30 s, and a hung login ends with the ctx.
func TestAuthCallDeadline(t *testing.T) {
	f := newFixture(t)
	rec := &deadlineRecorder{base: f.srv.Client().Transport, deadlines: make(chan time.Time, 2)}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rec})
	before := time.Now()
	if _, err := f.cfg.Token(ctx); err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	if dl := <-rec.deadlines; dl.Before(before.Add(30*time.Second)) || dl.After(time.Now().Add(30*time.Second)) {
		t.Errorf("login deadline %v from the start, want 30 s", dl.Sub(before))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	if _, err := f.cfg.Token(ctx); err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	if dl := <-rec.deadlines; !dl.Equal(want) {
		t.Errorf("login deadline = %v, want the ctx deadline %v", dl, want)
	}

	f.srv.FailLogin(1, econnecttest.Fault{Hang: true})
	ctx, cancel = context.WithTimeout(f.ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := f.cfg.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Token() against a hung server: error = %v, want context.DeadlineExceeded", err)
	}
}

// TestCancelledContext: Config.Token and Config.Renew with a cancelled ctx
// fail with context.Canceled and make no call.
func TestCancelledContext(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if _, err := f.cfg.Token(ctx); !errors.Is(err, context.Canceled) || f.logins() != 0 {
		t.Errorf("Token() = %v after %d logins, want context.Canceled and no login", err, f.logins())
	}
	if _, err := f.cfg.Renew(ctx, &oauth2.Token{AccessToken: "x"}); !errors.Is(err, context.Canceled) || f.srv.Stats().Renewals != 0 {
		t.Errorf("Renew() = %v after %d renewals, want context.Canceled and no renewal", err, f.srv.Stats().Renewals)
	}
}

// TestExpiryWithoutIat: without iat, Expiry is the server's exp as it is,
// whatever the clocks say.
func TestExpiryWithoutIat(t *testing.T) {
	f := newFixture(t)
	f.srv.SetClockOffset(3 * time.Minute)
	f.srv.OmitClaims("iat")
	tok, err := f.cfg.TokenSource(f.ctx).Token()
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	claims, err := econnect.ParseToken(tok.AccessToken)
	if err != nil || !tok.Expiry.Equal(claims.Expiry) {
		t.Errorf("Expiry = %v, want the JWT's exp %v", tok.Expiry, claims.Expiry)
	}
}
