package apitest_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/testkit"
	"golang.org/x/oauth2"
)

// These tests run in a testing/synctest bubble, where time passes only
// when every goroutine waits: the bounds on how long callers wait are
// checked on the package's own clock, in fake time, without waiting.

// canned is an auth server in process: each login gets what login returns;
// any other request is answered 200.
type canned struct {
	logins atomic.Int32
	login  func(r *http.Request) (*http.Response, error)
}

func (c *canned) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	if !strings.HasSuffix(r.URL.Path, "/api/v1/authenticate") {
		return respond(r, http.StatusOK, nil, ""), nil
	}
	c.logins.Add(1)
	return c.login(r)
}

func respond(r *http.Request, code int, h http.Header, body string) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: code, Header: h, Request: r, Body: io.NopCloser(strings.NewReader(body))}
}

// refuse answers every login with code and header.
func refuse(code int, h http.Header) func(*http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) { return respond(r, code, h, ""), nil }
}

// hang holds every login until the call gives up.
func hang(r *http.Request) (*http.Response, error) {
	<-r.Context().Done()
	return nil, r.Context().Err()
}

func cannedConfig(c *canned) (context.Context, *econnect.Config) {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: c})
	return ctx, &econnect.Config{BaseURL: "https://identities.example/identities", Username: testUser, Password: testPassword}
}

// TestTokenWaitsTwoSecondsInAll: Token, which has no context, waits out
// backoffs within 2 s of the call in all, however the server answers, and
// one auth call at most: 429s with Retry-After: 1 (which used to hold a
// Token call for ever), 503s with it, and logins that hang. (Many callers
// at once through oauth2's cache, which serialises them on a mutex that a
// synctest bubble cannot wait on, are in source_test.go, on a fake clock.)
func TestTokenWaitsTwoSecondsInAll(t *testing.T) {
	ra1 := http.Header{"Retry-After": {"1"}}
	for _, tt := range []struct {
		name      string
		login     func(*http.Request) (*http.Response, error)
		bound     time.Duration
		maxLogins int32
	}{
		{"429 with Retry-After: 1", refuse(http.StatusTooManyRequests, ra1), 2 * time.Second, 3},
		{"503 with Retry-After: 1", refuse(http.StatusServiceUnavailable, ra1), 2 * time.Second, 3},
		{"503", refuse(http.StatusServiceUnavailable, nil), 2 * time.Second, 2},
		{"hung logins", hang, 2*time.Second + 30*time.Second, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &canned{login: tt.login}
				ctx, cfg := cannedConfig(c)
				ts := cfg.TokenSource(ctx)
				for i := range 3 { // one after another, as oauth2's cache calls it
					start := time.Now()
					if _, err := ts.Token(); err == nil {
						t.Errorf("Token() %d: error = nil, want the last failure", i)
					}
					if d := time.Since(start); d > tt.bound {
						t.Errorf("Token() %d took %v, want at most %v", i, d, tt.bound)
					}
				}
				if n := c.logins.Load(); n > tt.maxLogins {
					t.Errorf("%d logins for 3 Token calls in a row, want at most %d", n, tt.maxLogins)
				}
			})
		})
	}
}

// TestRequestWithoutDeadlineWaits30s: a request with no deadline waits at
// most 30 s for a token (the bound of one auth call), through failed logins
// or a hung one, then fails with the last error.
func TestRequestWithoutDeadlineWaits30s(t *testing.T) {
	for _, tt := range []struct {
		name  string
		login func(*http.Request) (*http.Response, error)
	}{
		{"503s", refuse(http.StatusServiceUnavailable, nil)},
		{"hung logins", hang},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &canned{login: tt.login}
				ctx, cfg := cannedConfig(c)
				hc := cfg.Client(ctx)
				start := time.Now()
				_, err := hc.Get(cfg.BaseURL + "/api/v1/people")
				if err == nil {
					t.Error("Get() error = nil, want no token")
				}
				if d := time.Since(start); d > 30*time.Second {
					t.Errorf("Get() with no deadline waited %v for a token, want at most 30 s", d)
				}
			})
		})
	}
}

// TestUnhealableFailsAtOnce: what no wait can heal (a certificate that
// fails verification, wrong credentials, plain http refused, a bad BaseURL,
// no password) fails a request with no deadline in about the time of one
// attempt, and the next at once with the same error, with no new attempt.
func TestUnhealableFailsAtOnce(t *testing.T) {
	untrusted := func(r *http.Request) (*http.Response, error) {
		return nil, fmt.Errorf("tls: %w", x509.UnknownAuthorityError{})
	}
	for _, tt := range []struct {
		name   string
		login  func(*http.Request) (*http.Response, error)
		base   string
		noPass bool
		want   func(error) bool
		logins int32
	}{
		{"untrusted certificate", untrusted, "", false, func(err error) bool { return errors.As(err, new(x509.UnknownAuthorityError)) }, 1},
		{"wrong credentials", refuse(http.StatusBadRequest, nil), "", false, func(err error) bool { return errors.Is(err, econnect.ErrBadCredentials) }, 1},
		{"plain http refused", nil, "http://identities.example/identities", false, func(err error) bool { return errors.Is(err, econnect.ErrInsecureHTTP) }, 0},
		{"no password", nil, "", true, func(err error) bool { return errors.Is(err, econnect.ErrNoPassword) }, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &canned{login: tt.login}
				ctx, cfg := cannedConfig(c)
				if tt.base != "" {
					cfg.BaseURL = tt.base
				}
				if tt.noPass {
					cfg.Password = ""
				}
				hc := cfg.Client(ctx)
				for i := range 3 {
					start := time.Now()
					_, err := hc.Get(cfg.BaseURL + "/api/v1/people")
					if !tt.want(err) {
						t.Errorf("request %d: error = %v, want the failure itself", i, err)
					}
					if d := time.Since(start); d > 0 {
						t.Errorf("request %d waited %v, want none: no wait heals this", i, d)
					}
				}
				if n := c.logins.Load(); n != tt.logins {
					t.Errorf("%d logins, want %d", n, tt.logins)
				}
			})
		})
	}
}

// TestTokenContextWaitsAsItsContextAllows: TokenContext is a request's wait:
// through failed logins while its deadline allows, not Token's 2 s.
func TestTokenContextWaitsAsItsContextAllows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		c := &canned{}
		c.login = func(r *http.Request) (*http.Response, error) {
			if n.Add(1) <= 3 { // 0, 1 s, 3 s: then a token
				return respond(r, http.StatusServiceUnavailable, nil, ""), nil
			}
			now := time.Now().Unix()
			return respond(r, http.StatusOK, nil, answer(testkit.FakeJWT(map[string]any{"unique_name": testUser, "iat": now, "exp": now + 3600}))), nil
		}
		ctx, cfg := cannedConfig(c)
		ts := cfg.TokenSource(ctx)
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := econnect.TokenContext(wctx, ts); err != nil {
			t.Errorf("TokenContext() error = %v, want the fourth login's token", err)
		}
		if got := n.Load(); got != 4 {
			t.Errorf("%d logins, want 4: one at the end of each backoff", got)
		}
	})
}
