package econnect

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tr, ok := http.DefaultTransport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	testUser     = "camera-1"
	testPassword = "pw-SENTINEL-7f3a9c"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// clock is a fake clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is a fake server and a Config for it, sharing one fake clock.
type fixture struct {
	srv *econnecttest.Server
	clk *clock
	ctx context.Context
	cfg Config
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureAt(t, epoch)
}

func newFixtureAt(t testing.TB, start time.Time) *fixture {
	t.Helper()
	srv := econnecttest.NewServer()
	t.Cleanup(srv.Close)
	clk := newClock(start)
	srv.SetClock(clk.Now)
	srv.AddUser(testUser, testPassword)
	return &fixture{
		srv: srv,
		clk: clk,
		ctx: context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client()),
		cfg: Config{BaseURL: srv.URL, Username: testUser, Password: testPassword},
	}
}

// source returns a source on the fixture's clock, with jitter pinned so
// that every delay is its nominal value.
func (f *fixture) source(t testing.TB, tok *token) *source {
	t.Helper()
	s := newSource(f.ctx, &f.cfg, tok)
	s.now = f.clk.Now
	s.rand = func() float64 { return 0.5 }
	t.Cleanup(s.wg.Wait)
	return s
}

func (f *fixture) stats() econnecttest.Stats { return f.srv.Stats() }

// authCalls is the number of logins and renewals the server has seen.
func (f *fixture) authCalls() int {
	st := f.srv.Stats()
	return st.Logins + st.Renewals
}

func mustToken(t testing.TB, s *source) *token {
	t.Helper()
	tok, err := s.current(context.Background())
	if err != nil {
		t.Fatalf("current() error = %v", err)
	}
	return tok
}

// TestPolicyBoundaries pins the renewal point, the safety margin and expiry
// to the nanosecond, for several lifetimes.
func TestPolicyBoundaries(t *testing.T) {
	const early = 5 * time.Minute
	tests := []struct {
		name     string
		lifetime time.Duration
		renewAt  time.Duration // remaining life below which renewal is due
		margin   time.Duration // remaining life below which the token is not handed out
	}{
		{"1h uses EarlyExpiry", time.Hour, 5 * time.Minute, 10 * time.Second},
		{"24h uses EarlyExpiry", 24 * time.Hour, 5 * time.Minute, 10 * time.Second},
		{"60s uses half the lifetime", time.Minute, 30 * time.Second, 6 * time.Second},
		{"10s", 10 * time.Second, 5 * time.Second, time.Second},
		{"2s", 2 * time.Second, time.Second, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := newToken("x", "u", epoch.Add(tt.lifetime), tt.lifetime)
			expiry := tok.expiry
			rows := []struct {
				at                  time.Time
				wantDue, wantUsable bool
				wantExpired         bool
			}{
				{epoch, false, true, false},
				{expiry.Add(-tt.renewAt - 1), false, true, false},
				{expiry.Add(-tt.renewAt), false, true, false},
				{expiry.Add(-tt.renewAt + 1), true, true, false},
				{expiry.Add(-tt.margin - 1), true, true, false},
				{expiry.Add(-tt.margin), true, true, false},
				{expiry.Add(-tt.margin + 1), true, false, false},
				{expiry.Add(-1), true, false, false},
				{expiry, true, false, true},
				{expiry.Add(1), true, false, true},
			}
			for _, r := range rows {
				left := expiry.Sub(r.at)
				if got := renewDue(tok, r.at, early); got != r.wantDue {
					t.Errorf("renewDue(%v left) = %t, want %t", left, got, r.wantDue)
				}
				if got := usable(tok, r.at); got != r.wantUsable {
					t.Errorf("usable(%v left) = %t, want %t", left, got, r.wantUsable)
				}
				if got := expired(tok, r.at); got != r.wantExpired {
					t.Errorf("expired(%v left) = %t, want %t", left, got, r.wantExpired)
				}
			}
		})
	}
	t.Run("no expiry", func(t *testing.T) {
		tok := newToken("x", "u", time.Time{}, 0)
		far := epoch.Add(100 * 365 * 24 * time.Hour)
		if renewDue(tok, far, early) || !usable(tok, far) || expired(tok, far) {
			t.Errorf("token without expiry: renewDue, usable, expired = %t, %t, %t; want false, true, false",
				renewDue(tok, far, early), usable(tok, far), expired(tok, far))
		}
	})
}

func TestRenewRetryDelay(t *testing.T) {
	tests := []struct {
		left, want time.Duration
	}{
		{time.Hour, 30 * time.Second},
		{2 * time.Minute, 30 * time.Second},
		{80 * time.Second, 20 * time.Second},
		{4 * time.Second, time.Second},
		{time.Second, time.Second},
	}
	for _, tt := range tests {
		tok := newToken("x", "u", epoch.Add(tt.left), 2*time.Hour)
		if got := renewRetryDelay(tok, epoch); got != tt.want {
			t.Errorf("renewRetryDelay(%v left) = %v, want %v", tt.left, got, tt.want)
		}
	}
}

func TestLoginBackoff(t *testing.T) {
	transientErr := &authError{op: "login", code: http.StatusServiceUnavailable}
	badCreds := &authError{op: "login", code: http.StatusBadRequest, kind: ErrBadCredentials}
	tests := []struct {
		name string
		n    int
		err  error
		want time.Duration
	}{
		{"first transient", 1, transientErr, time.Second},
		{"second transient", 2, transientErr, 2 * time.Second},
		{"transient cap", 6, transientErr, 30 * time.Second},
		{"transient far", 100, transientErr, 30 * time.Second},
		{"network", 3, errors.New("dial tcp: refused"), 4 * time.Second},
		{"first bad credentials", 1, badCreds, time.Second},
		{"bad credentials 8", 8, badCreds, 128 * time.Second},
		{"bad credentials 9", 9, badCreds, 256 * time.Second},
		{"bad credentials cap", 10, badCreds, 5 * time.Minute},
		{"bad credentials far", 1000, badCreds, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := loginBackoff(tt.n, tt.err, 0.5); got != tt.want {
				t.Errorf("loginBackoff(%d) = %v, want %v", tt.n, got, tt.want)
			}
			lo, hi := loginBackoff(tt.n, tt.err, 0), loginBackoff(tt.n, tt.err, 0.999999)
			if lo != tt.want*8/10 || hi <= tt.want || hi > tt.want*12/10 {
				t.Errorf("loginBackoff(%d) jitter range = [%v, %v], want [%v, %v)", tt.n, lo, hi, tt.want*8/10, tt.want*12/10)
			}
		})
	}
}

// fakeJWT builds an unsigned-looking JWT with the given claims.
func fakeJWT(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(payload) + ".c2lnbmF0dXJl"
}

// TestRequests checks the whole login and renewal requests, for every
// spelling of BaseURL (R1).
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
			jwt := fakeJWT(t, map[string]any{"unique_name": testUser, "iat": 1000, "exp": 4600})
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
				fmt.Fprintf(w, `{"username":%q,"token":%q}`, testUser, jwt)
			}))
			defer srv.Close()
			cfg := Config{BaseURL: srv.URL + tt.base, Username: testUser, Password: testPassword}
			tok, err := cfg.Token(context.Background())
			if err != nil {
				t.Fatalf("Token() error = %v", err)
			}
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

// TestTokenFields checks what a login hands out (R3, R5).
func TestTokenFields(t *testing.T) {
	for _, offset := range []time.Duration{-10 * time.Minute, 0, 10 * time.Minute} {
		t.Run(fmt.Sprintf("server clock %v", offset), func(t *testing.T) {
			f := newFixture(t)
			f.srv.SetClockOffset(offset)
			s := f.source(t, nil)
			a, err := s.Token()
			if err != nil {
				t.Fatalf("Token() error = %v", err)
			}
			b, err := s.Token()
			if err != nil {
				t.Fatalf("Token() error = %v", err)
			}
			if a == b {
				t.Error("Token() returned the same *oauth2.Token twice, want a new value each call")
			}
			if a.AccessToken == "" || a.AccessToken != b.AccessToken {
				t.Errorf("Token() AccessTokens differ or are empty")
			}
			if a.TokenType != "Bearer" {
				t.Errorf("TokenType = %q, want Bearer", a.TokenType)
			}
			if want := epoch.Add(time.Hour); !a.Expiry.Equal(want) {
				t.Errorf("Expiry = %v, want %v (send time + exp − iat, whatever the server clock)", a.Expiry, want)
			}
			if u := a.Extra("username"); u != testUser {
				t.Errorf("Extra(username) = %v, want %s", u, testUser)
			}
			if _, err := f.srv.VerifyToken(a.AccessToken); err != nil {
				t.Errorf("server refuses the token it issued: %v", err)
			}
		})
	}
}

// TestExpiryClaims covers tokens without iat or exp (R5).
func TestExpiryClaims(t *testing.T) {
	t.Run("no iat: exp as it is", func(t *testing.T) {
		f := newFixture(t)
		f.srv.SetClockOffset(3 * time.Minute)
		f.srv.OmitClaims("iat")
		tok := mustToken(t, f.source(t, nil))
		if want := epoch.Add(3*time.Minute + time.Hour); !tok.expiry.Equal(want) {
			t.Errorf("expiry = %v, want the server's exp %v", tok.expiry, want)
		}
	})
	t.Run("no exp: never expires", func(t *testing.T) {
		f := newFixture(t)
		f.srv.OmitClaims("exp")
		s := f.source(t, nil)
		mustToken(t, s)
		f.clk.Advance(1000 * time.Hour)
		if tok := mustToken(t, s); !tok.tmpl.Expiry.IsZero() {
			t.Errorf("Expiry = %v, want zero", tok.tmpl.Expiry)
		}
		if st := f.stats(); st.Logins != 1 || st.Renewals != 0 {
			t.Errorf("Stats = %+v, want 1 login and no renewal", st)
		}
	})
}

func TestParseToken(t *testing.T) {
	jwt := fakeJWT(t, map[string]any{"unique_name": "cam", "iat": 1000, "exp": 4600})
	tok, err := ParseToken(jwt)
	if err != nil {
		t.Fatalf("ParseToken() error = %v", err)
	}
	if !tok.Expiry.Equal(time.Unix(4600, 0)) || tok.AccessToken != jwt || tok.TokenType != "Bearer" || tok.Extra("username") != "cam" {
		t.Errorf("ParseToken() = %+v, want exp 4600 as Expiry, the JWT, Bearer, username cam", tok)
	}
	if tok, err := ParseToken(fakeJWT(t, map[string]any{"unique_name": "cam"})); err != nil || !tok.Expiry.IsZero() {
		t.Errorf("ParseToken(no exp) = %v, %v; want zero Expiry", tok, err)
	}
}

// TestBadAnswers feeds a login every kind of malformed answer (R2, R5).
func TestBadAnswers(t *testing.T) {
	now := epoch.Unix()
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
		{"exp a string", answer(fakeJWT(t, map[string]any{"exp": "tomorrow"})), "exp is not a time"},
		{"iat a string", answer(fakeJWT(t, map[string]any{"exp": now + 60, "iat": "now"})), "iat is not a time"},
		{"exp negative", answer(fakeJWT(t, map[string]any{"exp": -5})), "exp is not a time"},
		{"exp huge", answer(fakeJWT(t, map[string]any{"exp": 1e300})), "exp is not a time"},
		{"exp before iat", answer(fakeJWT(t, map[string]any{"exp": now, "iat": now + 60})), "expired on arrival"},
		{"exp in the past", answer(fakeJWT(t, map[string]any{"exp": now - 1})), "expired on arrival"},
		{"oversized", `{"token":"` + strings.Repeat("a", 1<<20) + `"}`, "larger than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.FailLogin(1, econnecttest.Fault{Body: tt.body})
			_, err := f.source(t, nil).current(context.Background())
			if err == nil {
				t.Fatal("current() error = nil, want an error")
			}
			var ae *answerError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("current() error = %q, want an answer error saying %q", err, tt.want)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "econnect: ") || len(msg) > 200 || strings.Contains(msg, "SECRET") {
				t.Errorf("error %q: want short, prefixed and without the token", msg)
			}
		})
	}
}

func answer(jwt string) string { return `{"username":"camera-1","token":"` + jwt + `"}` }

// TestRefusals checks the errors of non-2xx auth answers (R4).
func TestRefusals(t *testing.T) {
	tests := []struct {
		name           string
		fault          econnecttest.Fault
		password       string
		wantStatus     int
		wantBadCreds   bool
		wantBodyPrefix string
	}{
		{"wrong password", econnecttest.Fault{}, "wrong", 400, true, ""},
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
			if got := errors.Is(err, ErrBadCredentials); got != tt.wantBadCreds {
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

// TestRedirectsNotFollowed: a 307 would replay the password elsewhere (R19).
func TestRedirectsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
	}))
	defer other.Close()
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
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
}

// recorder is a RoundTripper that records requests and fails them.
type recorder struct{ n atomic.Int32 }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n.Add(1)
	closeBody(req)
	return nil, errors.New("recorder: no network here")
}

// TestInsecureHTTP: plain http to a remote host is refused before any I/O (R18).
func TestInsecureHTTP(t *testing.T) {
	tests := []struct {
		base      string
		allow     bool
		wantCalls int32
	}{
		{"http://192.0.2.10:6009", false, 0},
		{"http://identities.example.com/identities", false, 0},
		{"http://192.0.2.10:6009", true, 1},
		{"http://127.0.0.1:6009", false, 1},
		{"http://127.9.9.9:6009", false, 1},
		{"http://[::1]:6009", false, 1},
		{"http://localhost:6009/identities", false, 1},
		{"https://192.0.2.10:5009", false, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s allow=%t", tt.base, tt.allow), func(t *testing.T) {
			rec := &recorder{}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rec})
			cfg := Config{BaseURL: tt.base, Username: testUser, Password: testPassword, AllowInsecureHTTP: tt.allow}
			_, err := cfg.Token(ctx)
			if n := rec.n.Load(); n != tt.wantCalls {
				t.Errorf("Token() made %d requests, want %d", n, tt.wantCalls)
			}
			if tt.wantCalls == 0 && (err == nil || !strings.Contains(err.Error(), "AllowInsecureHTTP")) {
				t.Errorf("Token() error = %v, want one naming AllowInsecureHTTP", err)
			}
		})
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, base := range []string{"", "identities.example.com", "ftp://host/x", "https://user:" + testPassword + "@host/", "https://host:bad:port"} {
		cfg := Config{BaseURL: base, Username: testUser, Password: testPassword}
		_, err := cfg.Token(context.Background())
		if err == nil || !strings.HasPrefix(err.Error(), "econnect: ") || strings.Contains(err.Error(), testPassword) {
			t.Errorf("Token() with BaseURL %q: error = %v, want a prefixed error without the password", base, err)
		}
	}
}

// parallel runs fn on n goroutines released together and waits for them.
func parallel(n int, fn func(i int)) {
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			fn(i)
		}()
	}
	start.Done()
	done.Wait()
}

// TestColdStart: 64 concurrent callers cause exactly one login (R22).
func TestColdStart(t *testing.T) {
	for _, via := range []string{"source", "TokenSource", "NewClient"} {
		t.Run(via, func(t *testing.T) {
			f := newFixture(t)
			hold := make(chan struct{})
			f.srv.FailLogin(1, econnecttest.Fault{Wait: hold}) // all 64 arrive while the login is held
			s := f.source(t, nil)
			get := func() (string, error) {
				tok, err := s.Token()
				if err != nil {
					return "", err
				}
				return tok.AccessToken, nil
			}
			switch via {
			case "TokenSource":
				ts := s.reuse()
				get = func() (string, error) {
					tok, err := ts.Token()
					if err != nil {
						return "", err
					}
					return tok.AccessToken, nil
				}
			case "NewClient":
				f.srv.Handle("/api/v1/whoami", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
				}))
				hc := oauth2.NewClient(f.ctx, s.reuse())
				get = func() (string, error) {
					resp, err := hc.Get(f.srv.URL + "/api/v1/whoami")
					if err != nil {
						return "", err
					}
					defer resp.Body.Close()
					b, err := io.ReadAll(resp.Body)
					return string(b), err
				}
			}
			var got [64]string
			go func() {
				for f.stats().Logins == 0 {
					runtime.Gosched()
				}
				close(hold)
			}()
			parallel(64, func(i int) {
				tok, err := get()
				if err != nil {
					t.Errorf("caller %d: error = %v", i, err)
				}
				got[i] = tok
			})
			if st := f.stats(); st.Logins != 1 {
				t.Errorf("Stats().Logins = %d, want 1", st.Logins)
			}
			for i := range got {
				if got[i] == "" || got[i] != got[0] {
					t.Fatalf("caller %d got a different or empty token", i)
				}
			}
		})
	}
}

// TestRenewalInBackground: at the renewal point, 64 callers keep the current
// token without waiting while exactly one renewal runs (R13, R22).
func TestRenewalInBackground(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, nil)
	first := mustToken(t, s)
	hold := make(chan struct{})
	f.srv.FailRenew(1, econnecttest.Fault{Wait: hold})
	f.clk.Advance(55*time.Minute + time.Second) // 4m59s left: renewal due
	parallel(64, func(int) {
		for range 10 {
			if tok := mustTokenNoFatal(t, s); tok != first {
				t.Errorf("caller got a new token while the renewal is held")
				return
			}
		}
	})
	close(hold)
	s.wg.Wait()
	if st := f.stats(); st.Logins != 1 || st.Renewals != 1 {
		t.Errorf("Stats = %+v, want 1 login and 1 renewal", st)
	}
	if tok := mustToken(t, s); tok == first || !tok.expiry.Equal(f.clk.Now().Add(time.Hour)) {
		t.Errorf("after the renewal: expiry %v, want a new token expiring %v", tok.expiry, f.clk.Now().Add(time.Hour))
	}
}

func mustTokenNoFatal(t *testing.T, s *source) *token {
	tok, err := s.current(context.Background())
	if err != nil {
		t.Errorf("current() error = %v", err)
	}
	return tok
}

// TestRefusedRenewalLogsIn: after a key rotation, the renewal is refused and
// the source logs in again (R7).
func TestRefusedRenewalLogsIn(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, nil)
	mustToken(t, s)
	f.srv.RotateKey()
	f.clk.Advance(56 * time.Minute)
	mustToken(t, s) // starts the renewal in the background
	s.wg.Wait()
	tok := mustToken(t, s)
	if _, err := f.srv.VerifyToken(tok.raw); err != nil {
		t.Errorf("token after the fallback login is refused: %v", err)
	}
	if st := f.stats(); st.Logins != 2 || st.Renewals != 1 {
		t.Errorf("Stats = %+v, want 2 logins and 1 renewal", st)
	}
}

// TestExpiredTokenLogsIn: an expired token is not renewed but replaced (R7).
func TestExpiredTokenLogsIn(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, nil)
	first := mustToken(t, s)
	f.clk.Advance(2 * time.Hour)
	if tok := mustToken(t, s); tok == first {
		t.Error("current() returned the expired token")
	}
	if st := f.stats(); st.Logins != 2 || st.Renewals != 0 {
		t.Errorf("Stats = %+v, want 2 logins and no renewal", st)
	}
}

// TestTokenOnly: without a password the source renews a saved token and
// never logs in (R7).
func TestTokenOnly(t *testing.T) {
	f := newFixture(t)
	f.srv.SetClock(time.Now) // Config.Token and TokenSourceFrom use the real clock
	fromLogin, err := f.cfg.Token(f.ctx)
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	f.srv.SetClock(f.clk.Now)
	saved, err := f.source(t, nil).Token()
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	f.cfg.Password = ""
	got, err := f.cfg.TokenSourceFrom(f.ctx, fromLogin).Token()
	if err != nil || got.AccessToken != fromLogin.AccessToken {
		t.Fatalf("TokenSourceFrom().Token() = %v, %v; want the saved token", got, err)
	}
	if got == fromLogin {
		t.Error("TokenSourceFrom handed out the caller's own token value")
	}

	s := f.source(t, fromOAuth2(saved, f.clk.Now()))
	f.clk.Advance(56 * time.Minute)
	mustToken(t, s)
	s.wg.Wait()
	renewed := mustToken(t, s)
	if renewed.raw == saved.AccessToken {
		t.Error("the saved token was not renewed at the renewal point")
	}
	f.clk.Advance(2 * time.Hour)
	_, err = s.current(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Password is empty") {
		t.Errorf("current() on an expired token without password: error = %v, want one saying Password is empty", err)
	}
	if st := f.stats(); st.Logins != 2 || st.Renewals != 1 {
		t.Errorf("Stats = %+v, want the 2 logins of the setup and 1 renewal", st)
	}
}

// TestTransientRenewalFailure: a renewal answered 503 while the token is
// usable surfaces no error; the next try waits clamp(left/4, 1 s, 30 s);
// once the token is no longer usable the source logs in (R9, R7).
func TestTransientRenewalFailure(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.srv.SetLifetime(time.Minute) // renewal due at 30 s left; safety margin 6 s
	s := f.source(t, nil)
	first := mustToken(t, s)
	f.srv.FailRenew(1000, econnecttest.Fault{Status: http.StatusServiceUnavailable})

	f.clk.Advance(30*time.Second + time.Millisecond) // just inside the window
	steps := []struct {
		advance      time.Duration
		wantRenewals int
	}{
		{0, 1},               // first try at once, 30 s left; next in 7.5 s
		{7 * time.Second, 1}, // too early
		{time.Second, 2},     // second try, 22 s left; next in 5.5 s
		{5 * time.Second, 2}, // too early
		{time.Second, 3},     // third try, 16 s left; next in 4 s
		{4*time.Second + 200*time.Millisecond, 4},
	}
	for i, st := range steps {
		f.clk.Advance(st.advance)
		if tok := mustToken(t, s); tok != first {
			t.Fatalf("step %d: got a new token, want the current one kept", i)
		}
		s.wg.Wait()
		if got := f.stats().Renewals; got != st.wantRenewals {
			t.Errorf("step %d: Stats().Renewals = %d, want %d", i, got, st.wantRenewals)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("logged %d warnings for one failure streak, want 1:\n%s", n, logs.String())
	}
	f.clk.Advance(time.Minute) // expired: the source logs in
	if tok := mustToken(t, s); tok == first {
		t.Error("expired token handed out")
	}
	if st := f.stats(); st.Logins != 2 {
		t.Errorf("Stats().Logins = %d, want 2", st.Logins)
	}
}

// TestLoginBackoffBusyLoop: a wrong password in a busy loop sends one login
// per backoff step (R10).
func TestLoginBackoffBusyLoop(t *testing.T) {
	f := newFixture(t)
	f.cfg.Password = "wrong"
	var logs bytes.Buffer
	f.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := f.source(t, nil)
	busy := func() {
		for range 100 {
			if _, err := s.current(context.Background()); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("current() error = %v, want ErrBadCredentials", err)
			}
		}
	}
	busy()
	wantLogins := 1
	for _, step := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute} {
		f.clk.Advance(step - time.Millisecond)
		busy()
		if got := f.stats().Logins; got != wantLogins {
			t.Fatalf("%v into a %v backoff: Stats().Logins = %d, want %d", step-time.Millisecond, step, got, wantLogins)
		}
		f.clk.Advance(time.Millisecond)
		busy()
		wantLogins++
		if got := f.stats().Logins; got != wantLogins {
			t.Fatalf("after a %v backoff: Stats().Logins = %d, want %d", step, got, wantLogins)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("logged %d warnings for one failure streak of %d logins, want 1:\n%s", n, wantLogins, logs.String())
	}
}

// TestTransientLoginBackoff: a failing server is asked at most once per
// step of 1 s doubling to 30 s, and the source recovers (R10).
func TestTransientLoginBackoff(t *testing.T) {
	f := newFixture(t)
	f.srv.FailLogin(1000, econnecttest.Fault{Status: http.StatusBadGateway})
	s := f.source(t, nil)
	var re *oauth2.RetrieveError
	if _, err := s.current(context.Background()); !errors.As(err, &re) {
		t.Fatalf("current() error = %v, want a RetrieveError", err)
	}
	for i, step := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		f.clk.Advance(step - time.Millisecond)
		s.current(context.Background())
		f.clk.Advance(time.Millisecond)
		s.current(context.Background())
		if got := f.stats().Logins; got != i+2 {
			t.Fatalf("after a %v backoff: Stats().Logins = %d, want %d", step, got, i+2)
		}
	}
	f.srv.FailLogin(0, econnecttest.Fault{})
	f.clk.Advance(30 * time.Second)
	mustToken(t, s)
}

// TestNewClientKeepsRenewalPoint: oauth2.NewClient over TokenSource renews at
// the R6 point, not 10 s before expiry (R8). oauth2's cache reads the real
// clock, so the fake clock starts 57 minutes in the past and then catches up.
func TestNewClientKeepsRenewalPoint(t *testing.T) {
	f := newFixtureAt(t, time.Now().Add(-57*time.Minute).Round(0))
	f.srv.Handle("/api/v1/ping", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	s := f.source(t, nil)
	ts := s.reuse()
	if oauth2.ReuseTokenSource(nil, ts) != ts {
		t.Fatal("oauth2.ReuseTokenSource(nil, TokenSource) wraps it again; want it used as it is")
	}
	hc := oauth2.NewClient(f.ctx, ts)
	get := func() {
		t.Helper()
		resp, err := hc.Get(f.srv.URL + "/api/v1/ping")
		if err != nil {
			t.Fatalf("Get() error = %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Get() status = %d, want 200", resp.StatusCode)
		}
	}
	get()
	f.clk.Advance(57 * time.Minute) // 3 minutes left, on both clocks
	get()
	s.wg.Wait()
	if st := f.stats(); st.Renewals != 1 {
		t.Errorf("Stats().Renewals = %d, want 1: the renewal point was not kept", st.Renewals)
	}
}

// TestPublicTokenSource checks that Config.TokenSource is oauth2's own cache
// and goes through the same source.
func TestPublicTokenSource(t *testing.T) {
	f := newFixture(t)
	ts := f.cfg.TokenSource(f.ctx)
	if oauth2.ReuseTokenSource(nil, ts) != ts {
		t.Error("TokenSource() is not a value made by oauth2.ReuseTokenSourceWithExpiry")
	}
	a, err := ts.Token()
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	b, _ := ts.Token()
	if a != b || f.stats().Logins != 1 {
		t.Errorf("TokenSource() did not cache: same pointer %t, %d logins", a == b, f.stats().Logins)
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
// deadline and 30 s (R11).
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

// TestCancel: a cancelled ctx fails auth calls promptly, and a caller that
// stops waiting does not cancel the login for the others (R12).
func TestCancel(t *testing.T) {
	t.Run("Config.Token with a cancelled ctx", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		if _, err := f.cfg.Token(ctx); !errors.Is(err, context.Canceled) || f.stats().Logins != 0 {
			t.Errorf("Token() = %v after %d logins, want context.Canceled and no login", err, f.stats().Logins)
		}
		if _, err := f.cfg.Renew(ctx, &oauth2.Token{AccessToken: "x"}); !errors.Is(err, context.Canceled) || f.stats().Renewals != 0 {
			t.Errorf("Renew() = %v after %d renewals, want context.Canceled and no renewal", err, f.stats().Renewals)
		}
	})
	t.Run("source ctx cancelled before use", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		f.ctx = ctx
		_, err := f.source(t, nil).Token()
		if !errors.Is(err, context.Canceled) || f.stats().Logins != 0 {
			t.Errorf("Token() = %v after %d logins, want context.Canceled and no login", err, f.stats().Logins)
		}
	})
	t.Run("source ctx cancelled during a login", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(f.ctx)
		f.ctx = ctx
		f.srv.FailLogin(1, econnecttest.Fault{Hang: true})
		s := f.source(t, nil)
		go func() {
			for f.stats().Logins == 0 {
				runtime.Gosched()
			}
			cancel()
		}()
		if _, err := s.Token(); !errors.Is(err, context.Canceled) {
			t.Errorf("Token() error = %v, want context.Canceled", err)
		}
	})
	t.Run("waiter gives up, login goes on", func(t *testing.T) {
		f := newFixture(t)
		hold := make(chan struct{})
		f.srv.FailLogin(1, econnecttest.Fault{Wait: hold})
		s := f.source(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.current(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("current(cancelled) error = %v, want context.Canceled", err)
		}
		close(hold)
		if _, err := s.current(context.Background()); err != nil || f.stats().Logins != 1 {
			t.Errorf("current() = %v after %d logins, want the one shared login's token", err, f.stats().Logins)
		}
	})
}

// simulate calls the source every step for total, letting each renewal
// finish, and returns the number of auth calls and of distinct tokens. It
// fails the test if a token with less than its safety margin is handed out.
func simulate(t testing.TB, f *fixture, s *source, step, total time.Duration) (calls, tokens int) {
	t.Helper()
	var last *token
	for elapsed := time.Duration(0); elapsed < total; elapsed += step {
		tok := mustToken(t, s)
		if left := tok.expiry.Sub(f.clk.Now()); left < safetyMargin(tok) {
			t.Fatalf("handed out a token with %v left, below its margin %v", left, safetyMargin(tok))
		}
		if tok != last {
			tokens++
			last = tok
		}
		s.wg.Wait()
		f.clk.Advance(step)
	}
	return f.authCalls(), tokens
}

// TestServerClockSkew: a server clock 10 minutes ahead or behind changes
// neither the number of auth calls nor how long each token is used (R5).
func TestServerClockSkew(t *testing.T) {
	var want [2]int
	for i, offset := range []time.Duration{0, -10 * time.Minute, 10 * time.Minute} {
		f := newFixture(t)
		f.srv.SetClockOffset(offset)
		calls, tokens := simulate(t, f, f.source(t, nil), time.Second, 3*time.Hour)
		if i == 0 {
			want = [2]int{calls, tokens}
			if calls != 4 {
				t.Errorf("server clock right: %d auth calls in 3 h of 1 h tokens, want 4", calls)
			}
			continue
		}
		if got := [2]int{calls, tokens}; got != want {
			t.Errorf("server clock %v: (auth calls, tokens) = %v, want %v as with a right clock", offset, got, want)
		}
	}
}

// TestAuthCallsPerLifetime: at most 2 auth calls per token lifetime, for any
// call rate and any EarlyExpiry (P4), and no token below its margin.
func TestAuthCallsPerLifetime(t *testing.T) {
	for _, lifetime := range []time.Duration{10 * time.Second, time.Minute, time.Hour} {
		for _, early := range []time.Duration{time.Nanosecond, time.Second, 5 * time.Minute, 24 * time.Hour} {
			for _, step := range []time.Duration{lifetime / 1000, lifetime / 7} {
				t.Run(fmt.Sprintf("L=%v early=%v step=%v", lifetime, early, step), func(t *testing.T) {
					f := newFixture(t)
					f.srv.SetLifetime(lifetime)
					f.cfg.EarlyExpiry = early
					calls, _ := simulate(t, f, f.source(t, nil), step, 10*lifetime)
					if calls > 20 || calls < 10 {
						t.Errorf("%d auth calls over 10 lifetimes, want 10 to 20", calls)
					}
				})
			}
		}
	}
}

// TestNoSecretsInOutput formats a Config every way fmt and slog can, and
// runs a source through failures with a debug logger: neither the password
// nor a token may show (R20).
func TestNoSecretsInOutput(t *testing.T) {
	f := newFixture(t)
	var out bytes.Buffer
	text := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jsonLog := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.cfg.Logger = text
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		fmt.Fprintf(&out, verb+"\n", f.cfg)
		fmt.Fprintf(&out, verb+"\n", &f.cfg)
		fmt.Fprintf(&out, verb+"\n", struct{ C Config }{f.cfg})
	}
	text.Info("config", "cfg", f.cfg)
	jsonLog.Info("config", "cfg", f.cfg, "ptr", &f.cfg)

	s := f.source(t, nil)
	first := mustToken(t, s)
	f.srv.FailRenew(1, econnecttest.Fault{Status: 500, Body: "echo " + first.raw})
	f.clk.Advance(56 * time.Minute)
	mustToken(t, s)
	s.wg.Wait()
	f.srv.FailRenew(1, econnecttest.Fault{Status: 401, Body: "echo " + first.raw})
	f.srv.FailLogin(1, econnecttest.Fault{Status: 400, Body: "echo " + testPassword})
	f.clk.Advance(time.Minute)
	mustToken(t, s)
	s.wg.Wait()
	_, err := s.current(context.Background())
	fmt.Fprintln(&out, err)
	f.cfg.Password = "wrong-" + testPassword
	_, err = f.cfg.Token(f.ctx)
	fmt.Fprintf(&out, "%v %+v %#v\n", err, err, err)
	fmt.Fprintf(&out, "%v %+v\n", s, s.reuse())

	for _, secret := range []string{testPassword, first.raw} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("output holds a secret:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "[redacted]") || !strings.Contains(out.String(), "level=WARN") {
		t.Errorf("output lacks the redacted password or the warning:\n%s", out.String())
	}
}

// FuzzParseToken: hostile JWTs give an error or a token, never a panic, and
// errors never quote the input (R21).
func FuzzParseToken(f *testing.F) {
	f.Add(fakeJWT(f, map[string]any{"unique_name": "cam", "iat": 1000, "exp": 4600}))
	f.Add(fakeJWT(f, map[string]any{"exp": 1e300, "iat": -1}))
	f.Add(fakeJWT(f, map[string]any{"exp": "x", "unique_name": 7}))
	f.Add("eyJhbGciOiJIUzI1NiJ9.bnVsbA.c2ln")
	f.Add("e30.e30.")
	f.Add("...")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if len(s) > 8 && strings.Contains(err.Error(), s) {
				t.Errorf("ParseToken error %q quotes the input", err)
			}
			return
		}
		if tok.AccessToken != s || tok.TokenType != "Bearer" {
			t.Errorf("ParseToken(%q) = %+v", s, tok)
		}
	})
}

// FuzzDecodeAnswer: hostile login answers give an error or a usable token,
// never a panic.
func FuzzDecodeAnswer(f *testing.F) {
	jwt := fakeJWT(f, map[string]any{"unique_name": "cam", "iat": 1000, "exp": 4600})
	f.Add([]byte(answer(jwt)))
	f.Add([]byte(`{"token":null,"username":null}`))
	f.Add([]byte(`{"token":"a.b.c"}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"token":"` + fakeJWT(f, map[string]any{"exp": 10}) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tok, err := decodeAnswer("login", body, epoch, epoch.Add(time.Second))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "econnect: login: ") {
				t.Errorf("error %q lacks its prefix", err)
			}
			return
		}
		if tok.raw == "" || !tok.expiry.IsZero() && !tok.expiry.After(epoch.Add(time.Second)) {
			t.Errorf("decodeAnswer(%q) = a token expiring %v, want a usable one", body, tok.expiry)
		}
	})
}

// clientFixture is a fixture with a Client on the real clock and an echo
// endpoint behind the server's bearer check.
func clientFixture(t *testing.T) (*fixture, *http.Client) {
	t.Helper()
	f := newFixture(t)
	f.srv.SetClock(time.Now)
	f.srv.Handle("POST /api/v1/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body) // all of it before answering: HTTP/1 may close it then
		if err != nil {
			t.Errorf("echo: reading the body: %v", err)
		}
		w.Write(b)
	}))
	return f, f.cfg.Client(f.ctx)
}

func post(t *testing.T, hc *http.Client, url string, body io.Reader) (int, string) {
	t.Helper()
	resp, err := hc.Post(url, "text/plain", body)
	if err != nil {
		t.Errorf("Post() error = %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClientHealsKeyRotation: after a key rotation, 100 concurrent POSTs all
// succeed with their bodies intact and exactly one extra login (R15, R22).
func TestClientHealsKeyRotation(t *testing.T) {
	f, hc := clientFixture(t)
	if code, _ := post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader("warm up")); code != 200 {
		t.Fatalf("first POST status = %d, want 200", code)
	}
	f.srv.RotateKey()
	parallel(100, func(i int) {
		want := fmt.Sprintf("face %d %s", i, strings.Repeat("x", i*100))
		code, got := post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader(want))
		if code != 200 || got != want {
			t.Errorf("POST %d: status %d, body intact %t (%d of %d bytes); want 200 and the body back", i, code, got == want, len(got), len(want))
		}
	})
	if st := f.stats(); st.Logins != 2 {
		t.Errorf("Stats().Logins = %d, want 2 (one extra login for 100 refusals)", st.Logins)
	}
}

// onceReader is a body that cannot be replayed.
type onceReader struct{ io.Reader }

// TestClient401 covers the cases where the 401 goes back to the caller (R15).
func TestClient401(t *testing.T) {
	t.Run("body cannot be replayed", func(t *testing.T) {
		f, hc := clientFixture(t)
		post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader("warm up"))
		f.srv.RotateKey()
		if code, _ := post(t, hc, f.srv.URL+"/api/v1/echo", onceReader{strings.NewReader("once")}); code != 401 {
			t.Errorf("POST with a one-shot body: status %d, want the 401 back", code)
		}
		if code, got := post(t, hc, f.srv.URL+"/api/v1/echo", onceReader{strings.NewReader("next")}); code != 200 || got != "next" {
			t.Errorf("next POST: status %d body %q, want 200 with a fresh token", code, got)
		}
		if st := f.stats(); st.Logins != 2 || st.APICalls != 3 {
			t.Errorf("Stats = %+v, want 2 logins and 3 API calls", st)
		}
	})
	t.Run("second 401 goes back", func(t *testing.T) {
		f, hc := clientFixture(t)
		var calls atomic.Int32
		f.srv.Handle("/api/v1/always401", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
		}))
		code, _ := post(t, hc, f.srv.URL+"/api/v1/always401", strings.NewReader("x"))
		if code != 401 || calls.Load() != 2 || f.stats().Logins != 2 {
			t.Errorf("status %d after %d calls and %d logins, want 401 after 2 calls and 2 logins", code, calls.Load(), f.stats().Logins)
		}
	})
	t.Run("403 is not retried", func(t *testing.T) {
		f := newFixture(t)
		f.srv.SetClock(time.Now)
		f.srv.AddUser("viewer", "pw", "Read All Identity")
		f.cfg.Username, f.cfg.Password = "viewer", "pw"
		hc := f.cfg.Client(f.ctx)
		body := `{"expanded":"aGk=","detectorName":"d","ianaTimeZone":"UTC","detectTimeUtc":"2026-01-01T00:00:00Z"}`
		if code, _ := post(t, hc, f.srv.URL+"/api/v1/faceEdge/publish", strings.NewReader(body)); code != 403 {
			t.Errorf("publish without the permission: status %d, want 403", code)
		}
		if st := f.stats(); st.Logins != 1 || st.APICalls != 1 {
			t.Errorf("Stats = %+v, want 1 login and 1 API call", st)
		}
	})
}

// otherOrigin starts a server on another origin that counts the requests
// reaching it with an Authorization header.
func otherOrigin(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
	}))
	t.Cleanup(other.Close)
	return other, &leaked
}

// TestClientOrigin: the bearer goes only to BaseURL's origin, also across
// redirects (R14).
func TestClientOrigin(t *testing.T) {
	f, hc := clientFixture(t)
	other, leaked := otherOrigin(t)
	f.srv.Handle("/api/v1/redirect", http.RedirectHandler(other.URL+"/landing", http.StatusFound))
	for _, url := range []string{other.URL + "/direct", f.srv.URL + "/api/v1/redirect"} {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("Get(%s) error = %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Request.URL.Host != strings.TrimPrefix(other.URL, "http://") {
			t.Errorf("Get(%s) ended at %s with %d, want 200 from the other server", url, resp.Request.URL, resp.StatusCode)
		}
	}
	if n := leaked.Load(); n != 0 {
		t.Errorf("the other origin received %d requests with Authorization, want 0", n)
	}
	if st := f.stats(); st.APICalls != 1 || st.Logins != 1 {
		t.Errorf("Stats = %+v, want the redirecting call authorized", st)
	}
}

// TestClientBuildsOnContextClient: Timeout, Jar, CheckRedirect and the base
// Transport of the ctx client are kept (R14).
func TestClientBuildsOnContextClient(t *testing.T) {
	rec := &recorder{}
	base := &http.Client{Transport: rec, Timeout: 7 * time.Second, Jar: fakeJar{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	cfg := Config{BaseURL: "https://identities.example.com/identities", Username: testUser, Password: testPassword}
	hc := cfg.Client(context.WithValue(context.Background(), oauth2.HTTPClient, base))
	if hc.Timeout != base.Timeout || hc.Jar == nil || hc.CheckRedirect == nil {
		t.Errorf("Client() = %+v, want Timeout, Jar and CheckRedirect of the ctx client", hc)
	}
	if tr, ok := hc.Transport.(*Transport); !ok || tr.Base != rec {
		t.Errorf("Client().Transport = %#v, want an *econnect.Transport over the ctx client's Transport", hc.Transport)
	}
	if _, err := hc.Get("https://identities.example.com/identities/api/v1/people"); err == nil || rec.n.Load() != 1 {
		t.Errorf("Get() = %v after %d round trips, want the login to go through the ctx client's Transport", err, rec.n.Load())
	}
}

type fakeJar struct{}

func (fakeJar) SetCookies(*url.URL, []*http.Cookie) {}
func (fakeJar) Cookies(*url.URL) []*http.Cookie     { return nil }

// TestRequestContext: the request's own context ends the request, also while
// it waits for a login held by the server (R17).
func TestRequestContext(t *testing.T) {
	f, hc := clientFixture(t)
	hold := make(chan struct{})
	defer close(hold)
	f.srv.FailLogin(1, econnecttest.Fault{Wait: hold})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+"/api/v1/echo", strings.NewReader("x"))
	if _, err := hc.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do() while the login is held: error = %v, want context.DeadlineExceeded", err)
	}
}

// closeCounter is a request body that counts its Close calls.
type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

type idleCounter struct {
	recorder
	n int
}

func (c *idleCounter) CloseIdleConnections() { c.n++ }

type failingSource struct{}

func (failingSource) Token() (*oauth2.Token, error) { return nil, errors.New("no token today") }

// TestTransportContract: the RoundTripper rules oauth2.Transport follows (R16).
func TestTransportContract(t *testing.T) {
	if _, ok := any(&Transport{}).(interface{ CancelRequest(*http.Request) }); ok {
		t.Error("Transport has a CancelRequest method, want none")
	}
	idle := &idleCounter{}
	(&http.Client{Transport: &Transport{Source: failingSource{}, Base: idle}}).CloseIdleConnections()
	if idle.n != 1 {
		t.Errorf("http.Client.CloseIdleConnections reached Base %d times, want 1", idle.n)
	}
	for _, src := range []oauth2.TokenSource{nil, failingSource{}} {
		body := &closeCounter{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest(http.MethodPost, "https://identities.example.com/", body)
		resp, err := (&Transport{Source: src, Base: &recorder{}}).RoundTrip(req)
		if err == nil || resp != nil || body.closed.Load() != 1 {
			t.Errorf("RoundTrip with source %T = %v, %v, body closed %d times; want an error, no response, 1 close", src, resp, err, body.closed.Load())
		}
	}

	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	tr := &Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static"})} // nil Base: http.DefaultTransport
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("X-Keep", "1")
	before := req.Header.Clone()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip() error = %v", err)
	}
	resp.Body.Close()
	if got.Load() != "Bearer static" {
		t.Errorf("server saw Authorization %q, want the static bearer as oauth2.Transport sends it", got.Load())
	}
	if diff := cmp.Diff(before, req.Header); diff != "" {
		t.Errorf("RoundTrip changed the caller's request headers (-before +after):\n%s", diff)
	}
}

// TestHandBuiltTransport: a Transport built around Config.TokenSource heals a
// 401 and keeps the bearer on its origin, like Config.Client (R15, R16).
func TestHandBuiltTransport(t *testing.T) {
	f, _ := clientFixture(t)
	other, leaked := otherOrigin(t)
	hc := &http.Client{Transport: &Transport{Source: f.cfg.TokenSource(f.ctx), Base: f.srv.Client().Transport}}
	post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader("warm up"))
	f.srv.RotateKey()
	for i := range 3 {
		if code, body := post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader("after rotation")); code != 200 || body != "after rotation" {
			t.Errorf("POST %d after the rotation: %d %q, want 200 and the body back", i, code, body)
		}
	}
	post(t, hc, other.URL, strings.NewReader("elsewhere"))
	if st := f.stats(); st.Logins != 2 || st.APICalls != 5 {
		t.Errorf("Stats = %+v, want 2 logins and 5 API calls (one retry)", st)
	}
	if leaked.Load() != 0 {
		t.Error("the other origin received the bearer")
	}
}

func TestSameOrigin(t *testing.T) {
	base, _ := url.Parse("https://Host.example.com/identities")
	tests := []struct {
		url  string
		want bool
	}{
		{"https://host.example.com/identities/api/v1/people", true},
		{"https://HOST.example.com:443/other", true},
		{"http://host.example.com/identities", false},
		{"https://host.example.com:5009/identities", false},
		{"https://host.example.com.evil.net/identities", false},
		{"https://evil.net/host.example.com", false},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		if got := sameOrigin(u, base); got != tt.want {
			t.Errorf("sameOrigin(%s, %s) = %t, want %t", tt.url, base, got, tt.want)
		}
	}
}

// Benchmarks. Each compares econnect with its baseline in the same run; see
// the README's Performance section for the command and the figures.

// BenchmarkToken: Token() on a cached valid token, against oauth2's own cache
// over a static source (P1).
func BenchmarkToken(b *testing.B) {
	f := newFixture(b)
	f.srv.SetClock(time.Now)
	sources := []struct {
		name string
		ts   oauth2.TokenSource
	}{
		{"impl=oauth2.ReuseTokenSource", oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(
			&oauth2.Token{AccessToken: "static", Expiry: time.Now().Add(time.Hour)}))},
		{"impl=econnect", f.cfg.TokenSource(f.ctx)},
	}
	for _, src := range sources {
		if _, err := src.ts.Token(); err != nil {
			b.Fatal(err)
		}
		b.Run(src.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := src.ts.Token(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(src.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := src.ts.Token(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// requestBench is what BenchmarkRequest compares: a GET through Config.Client
// against a loopback server, a plain client with the header set by hand, and
// oauth2.NewClient over a static token (P2).
type requestBench struct {
	name   string
	hc     *http.Client
	header string
}

func newRequestBench(b *testing.B) (url string, clients []requestBench) {
	f := newFixture(b)
	f.srv.SetClock(time.Now)
	f.srv.Handle("GET /api/v1/ping", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tok, err := f.cfg.Token(f.ctx)
	if err != nil {
		b.Fatal(err)
	}
	return f.srv.URL + "/api/v1/ping", []requestBench{
		{"impl=manual-header", &http.Client{Transport: f.srv.Client().Transport}, "Bearer " + tok.AccessToken},
		{"impl=oauth2.NewClient", oauth2.NewClient(f.ctx, oauth2.StaticTokenSource(tok)), ""},
		{"impl=econnect.Client", f.cfg.Client(f.ctx), ""},
	}
}

func (c requestBench) get(b *testing.B, url string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if c.header != "" {
		req.Header.Set("Authorization", c.header)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// BenchmarkRequest runs each client on its own, for its allocations.
func BenchmarkRequest(b *testing.B) {
	url, clients := newRequestBench(b)
	for _, c := range clients {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.get(b, url)
			}
		})
	}
}

// BenchmarkRequestInterleaved alternates the three clients request by
// request, so that the machine's drift hits them alike, and reports each
// one's time relative to the hand-set header.
func BenchmarkRequestInterleaved(b *testing.B) {
	url, clients := newRequestBench(b)
	spent := make([]time.Duration, len(clients))
	for b.Loop() {
		for i, c := range clients {
			start := time.Now()
			c.get(b, url)
			spent[i] += time.Since(start)
		}
	}
	for i, c := range clients[1:] {
		b.ReportMetric(float64(spent[i+1])/float64(spent[0]), strings.TrimPrefix(c.name, "impl=")+"/manual")
	}
}

// BenchmarkSlowRenewal: with renewals that take 400 ms, the slowest of the
// requests that 8 goroutines send through the client across 3 renewals
// (P3, R13), and the same load with no renewal as the baseline. The token's
// clock is the fake one, moved to each renewal point; the 400 ms and the
// requests are real. It reports max-ms.
func BenchmarkSlowRenewal(b *testing.B) {
	b.Run("renewals=0", func(b *testing.B) { slowRenewal(b, 0) })
	b.Run("renewals=3", func(b *testing.B) { slowRenewal(b, 3) })
}

func slowRenewal(b *testing.B, renewals int) {
	for b.Loop() {
		f := newFixture(b)
		if renewals == 0 {
			f.srv.SetLifetime(100 * time.Hour) // never near its renewal point here
		}
		f.srv.FailRenew(1000, econnecttest.Fault{Delay: 400 * time.Millisecond})
		f.srv.Handle("GET /api/v1/ping", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		s := f.source(b, nil)
		hc := &http.Client{Transport: &Transport{Source: s, Base: f.srv.Client().Transport}} // Config.Client on the fake clock
		get := func() time.Duration {
			start := time.Now()
			resp, err := hc.Get(f.srv.URL + "/api/v1/ping")
			if err != nil {
				b.Error(err)
				return 0
			}
			resp.Body.Close()
			return time.Since(start)
		}
		parallel(8, func(int) { get() }) // the login and the connections are not what this measures
		var mu sync.Mutex
		var slowest time.Duration
		for range 3 {
			f.clk.Advance(56 * time.Minute) // 4 minutes left: the next request starts a renewal
			deadline := time.Now().Add(600 * time.Millisecond)
			parallel(8, func(int) {
				for time.Now().Before(deadline) {
					d := get()
					mu.Lock()
					slowest = max(slowest, d)
					mu.Unlock()
				}
			})
			s.wg.Wait()
		}
		if st := f.stats(); st.Renewals != renewals || st.Logins != 1 {
			b.Errorf("Stats = %+v, want 1 login and %d renewals", st, renewals)
		}
		b.ReportMetric(float64(slowest.Microseconds())/1000, "max-ms")
	}
}

// BenchmarkAuthCallsPerLifetime: auth calls per token lifetime at 1000 calls
// per lifetime, for EarlyExpiry from 1 ns to a day, on the fake clock (P4).
// It reports the worst case over that range.
func BenchmarkAuthCallsPerLifetime(b *testing.B) {
	for b.Loop() {
		worst := 0.0
		for _, early := range []time.Duration{time.Nanosecond, time.Second, 30 * time.Second, 5 * time.Minute, 24 * time.Hour} {
			f := newFixture(b)
			f.srv.SetLifetime(time.Minute)
			f.cfg.EarlyExpiry = early
			calls, _ := simulate(b, f, f.source(b, nil), 60*time.Millisecond, 10*time.Minute)
			worst = max(worst, float64(calls)/10)
		}
		b.ReportMetric(worst, "calls/lifetime")
	}
}

// TestEndpointAlways401: an endpoint that refuses every token causes one
// re-login per backoff step, not one per request.
func TestEndpointAlways401(t *testing.T) {
	f := newFixture(t)
	var calls atomic.Int32
	f.srv.Handle("/api/v1/always401", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	hc := &http.Client{Transport: &Transport{Source: f.source(t, nil), Base: f.srv.Client().Transport}}
	steps := []struct {
		advance               time.Duration
		wantCalls, wantLogins int32
	}{
		{0, 2 + 19, 2},                // a re-login and retry, then 1 s of plain 401s
		{time.Second, 21 + 2 + 19, 3}, // the next step
		{time.Second, 42 + 20, 3},     // 2 s this time
		{time.Second, 62 + 2 + 19, 4}, // and so on
	}
	for i, st := range steps {
		f.clk.Advance(st.advance)
		for range 20 {
			if code, _ := post(t, hc, f.srv.URL+"/api/v1/always401", strings.NewReader("x")); code != 401 {
				t.Fatalf("step %d: status %d, want 401", i, code)
			}
		}
		if got, logins := calls.Load(), int32(f.stats().Logins); got != st.wantCalls || logins != st.wantLogins {
			t.Errorf("step %d: %d calls and %d logins, want %d and %d", i, got, logins, st.wantCalls, st.wantLogins)
		}
	}
}
