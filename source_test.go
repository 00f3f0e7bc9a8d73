package econnect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/policy"
	"github.com/econnect-oss/econnect/internal/testkit"
	"github.com/econnect-oss/econnect/internal/wire"
	"golang.org/x/oauth2"
)

// These tests drive the token source on a fake clock; internal/apitest tests
// the public API on the real one, internal/wire and internal/policy theirs.

func TestMain(m *testing.M) { testkit.Main(m) }

const testUser, testPassword = "camera-1", "pw-SENTINEL-7f3a9c"

// epoch is on a whole second, as the fake server's clock starts; tests that
// care about sub-second phases shift it.
var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fixture is a fake server and a Config for it, sharing one fake clock.
type fixture struct {
	srv *econnecttest.Server
	clk *testkit.Clock
	ctx context.Context
	cfg Config
}

func newFixture(t testing.TB) *fixture { return newFixtureAt(t, epoch) }

func newFixtureAt(t testing.TB, start time.Time) *fixture {
	t.Helper()
	srv := econnecttest.NewServer()
	t.Cleanup(srv.Close)
	clk := testkit.NewClock(start)
	srv.SetClock(clk.Wall)
	srv.AddUser(testUser, testPassword)
	return &fixture{
		srv: srv,
		clk: clk,
		ctx: context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client()),
		cfg: Config{BaseURL: srv.URL, Username: testUser, Password: testPassword},
	}
}

// source returns a source on the fixture's clock with every random draw at
// 0: delays are their nominal values, and renewal points the latest of their
// window (3/4 of min(EarlyExpiry, lifetime/2) before expiry). No hedging.
func (f *fixture) source(t testing.TB, saved *oauth2.Token) *source {
	t.Helper()
	s := newSource(f.ctx, &f.cfg, saved)
	s.clock = &clock{wall: f.clk.Wall, mono: f.clk.Mono, rand: func() float64 { return 0 }, sleep: f.clk.Sleep}
	s.draw, s.hedge = 0, 0
	t.Cleanup(s.wg.Wait)
	return s
}

func (f *fixture) stats() econnecttest.Stats { return f.srv.Stats() }

// awaitStats waits until the server's counts meet cond; the bound guards
// against a deadlock and measures nothing.
func awaitStats(t testing.TB, srv *econnecttest.Server, cond func(econnecttest.Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
	defer cancel()
	if err := srv.WaitFor(ctx, cond); err != nil {
		t.Fatalf("the server's counts %+v never met the test's condition: %v", srv.Stats(), err)
	}
}

// With the fixture's 1-hour tokens: a lifetime of 3599 s (a second off for
// the truncated iat), renewal due 225 s before expiry, margin 10 s.
const (
	life1h = time.Hour - time.Second
	dueIn  = life1h - 225*time.Second + time.Millisecond // from login to just past the renewal point
)

func mustToken(t testing.TB, s *source) *token {
	t.Helper()
	tok, err := s.current(context.Background(), failFast)
	if err != nil {
		t.Fatalf("current() error = %v", err)
	}
	return tok
}

func answer(jwt string) string { return `{"username":"camera-1","token":"` + jwt + `"}` }

// TestTokenFields checks what a login hands out: a new value each call,
// Bearer, the username, and an Expiry counted from the send time whatever
// the server's clock, a second short for the truncated iat.
func TestTokenFields(t *testing.T) {
	for _, offset := range []time.Duration{-10 * time.Minute, 0, 437 * time.Millisecond, 10*time.Minute + 999*time.Millisecond} {
		t.Run(fmt.Sprintf("server clock %v", offset), func(t *testing.T) {
			f := newFixture(t)
			f.srv.SetClockOffset(offset)
			s := f.source(t, nil)
			a, err := s.Token()
			if err != nil {
				t.Fatalf("Token() error = %v", err)
			}
			b, _ := s.Token()
			if a == b || a.AccessToken == "" || a.AccessToken != b.AccessToken {
				t.Error("Token() returned the same *oauth2.Token twice or differing tokens, want a new value of one token each call")
			}
			if a.TokenType != "Bearer" || a.Extra("username") != testUser {
				t.Errorf("TokenType, Extra(username) = %q, %v; want Bearer, %s", a.TokenType, a.Extra("username"), testUser)
			}
			if want := epoch.Add(life1h); !a.Expiry.Equal(want) {
				t.Errorf("Expiry = %v, want %v (send time + exp − iat − 1 s, whatever the server clock)", a.Expiry, want)
			}
			if _, err := f.srv.VerifyToken(a.AccessToken); err != nil {
				t.Errorf("server refuses the token it issued: %v", err)
			}
		})
	}
}

// TestExpiryClaims covers tokens without exp, an iat far from the local
// clock, and a renewal that answers the same JWT (without iat: internal/apitest).
func TestExpiryClaims(t *testing.T) {
	t.Run("no exp: never expires", func(t *testing.T) {
		f := newFixture(t)
		f.srv.OmitClaims("exp")
		s := f.source(t, nil)
		mustToken(t, s)
		f.clk.Advance(1000 * time.Hour)
		if tok := mustToken(t, s); !tok.timing.Expiry.IsZero() {
			t.Errorf("Expiry = %v, want zero", tok.timing.Expiry)
		}
		if st := f.stats(); st.Logins != 1 || st.Renewals != 0 {
			t.Errorf("Stats = %+v, want 1 login and no renewal", st)
		}
	})
	t.Run("iat a day off is ignored", func(t *testing.T) {
		f := newFixture(t)
		exp := epoch.Add(time.Hour).Unix()
		f.srv.FailLogin(1, econnecttest.Fault{Body: answer(testkit.FakeJWT(map[string]any{"iat": 0, "exp": exp}))})
		if tok := mustToken(t, f.source(t, nil)); !tok.timing.Expiry.Equal(epoch.Add(time.Hour)) {
			t.Errorf("Expiry = %v with iat = 0, want exp %v", tok.timing.Expiry, epoch.Add(time.Hour))
		}
	})
	t.Run("same JWT renewed keeps its expiry", func(t *testing.T) {
		f := newFixture(t)
		s := f.source(t, nil)
		first := mustToken(t, s)
		f.srv.FailRenew(1, econnecttest.Fault{Body: answer(first.raw())})
		f.clk.Advance(dueIn)
		mustToken(t, s)
		s.wg.Wait()
		f.clk.Advance(1500 * time.Millisecond)
		if tok := mustToken(t, s); tok != first || !tok.timing.Expiry.Equal(epoch.Add(life1h)) {
			t.Errorf("after a renewal answered the same JWT: expiry %v, want it unchanged at %v", tok.timing.Expiry, epoch.Add(life1h))
		}
		if f.stats().Renewals != 1 {
			t.Errorf("Stats().Renewals = %d, want 1: the retry waits its delay", f.stats().Renewals)
		}
	})
}

// TestStrictServer: with whole-second claims, a server with zero clock
// tolerance, renewals that always fail, and clocks at any sub-second phase,
// no token of 2 s or more is handed out once the server considers it
// expired.
func TestStrictServer(t *testing.T) {
	for _, lifetime := range []time.Duration{2 * time.Second, 3 * time.Second, 4 * time.Second} {
		for _, phase := range []time.Duration{0, 999 * time.Millisecond} {
			for _, offset := range []time.Duration{0, 500 * time.Millisecond, 999*time.Millisecond - 1} {
				f := newFixtureAt(t, epoch.Add(phase))
				f.srv.SetLifetime(lifetime)
				f.srv.SetClockOffset(offset)
				f.srv.FailRenew(1<<20, econnecttest.Fault{Status: http.StatusServiceUnavailable})
				s := f.source(t, nil)
				for range 4 * int(lifetime/(19*time.Millisecond)) {
					tok := mustToken(t, s)
					s.wg.Wait()
					if _, err := f.srv.VerifyToken(tok.raw()); err != nil {
						t.Fatalf("L=%v phase=%v offset=%v: handed out a token the server refuses: %v", lifetime, phase, offset, err)
					}
					f.clk.Advance(19 * time.Millisecond)
				}
			}
		}
	}
}

// TestRenewalInBackground: from the renewal point, 64 callers keep the
// current token without waiting while exactly one renewal runs for as long
// as the safety margin, and a new token comes after it; also with an
// EarlyExpiry below the margin (1 s, 20 s tokens: renewal at 3.8 s left).
func TestRenewalInBackground(t *testing.T) {
	for _, tt := range []struct {
		name         string
		lifetime     time.Duration // the server's; ours is a second less
		early, dueIn time.Duration
	}{
		{"1-hour tokens", time.Hour, 0, dueIn},
		{"EarlyExpiry under the margin", 20 * time.Second, time.Second, 19*time.Second - 3800*time.Millisecond + 1},
		{"1-hour tokens, EarlyExpiry 1 s", time.Hour, time.Second, life1h - 20*time.Second + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.SetLifetime(tt.lifetime)
			f.cfg.EarlyExpiry = tt.early
			s := f.source(t, nil)
			first := mustToken(t, s)
			if d := reflect.ValueOf(s.reuse(reuseLayout)).Elem().FieldByName("expiryDelta").Int(); time.Duration(d) < first.timing.Threshold {
				t.Errorf("oauth2's cache asks the source again %v before expiry, after its renewal point %v", time.Duration(d), first.timing.Threshold)
			}
			hold := make(chan struct{})
			f.srv.FailRenew(1, econnecttest.Fault{Wait: hold})
			f.clk.Advance(tt.dueIn)
			mustToken(t, s)                                                                   // starts the renewal
			awaitStats(t, f.srv, func(st econnecttest.Stats) bool { return st.Renewals > 0 }) // the server holds it
			sent := f.clk.Wall()
			f.clk.Advance(policy.Margin(first.timing.Lifetime) - 1)
			testkit.Parallel(64, func(int) {
				if tok, err := s.current(context.Background(), untilDeadline); err != nil || tok != first {
					t.Errorf("caller got %v, %v while the renewal is held; want the current token", tok, err)
				}
			})
			close(hold)
			s.wg.Wait()
			if st := f.stats(); st.Logins != 1 || st.Renewals != 1 {
				t.Errorf("Stats = %+v, want 1 login and 1 renewal", st)
			}
			want := sent.Add(tt.lifetime - time.Second)
			if tok := mustToken(t, s); tok == first || !tok.timing.Expiry.Equal(want) {
				t.Errorf("after the renewal: expiry %v, want a new token expiring %v", tok.timing.Expiry, want)
			}
		})
	}
}

// TestRenewalFailures: only a refusal (401, 403) of a usable token's renewal
// leads to a login; garbage, 404 and 5xx keep the token and retry later.
func TestRenewalFailures(t *testing.T) {
	tests := []struct {
		name       string
		fault      econnecttest.Fault
		wantLogins int
	}{
		{"401 logs in", econnecttest.Fault{Status: 401}, 2},
		{"403 logs in", econnecttest.Fault{Status: 403}, 2},
		{"html keeps the token", econnecttest.Fault{Body: "<html>proxy</html>"}, 1},
		{"404 keeps the token", econnecttest.Fault{Status: 404}, 1},
		{"half JSON keeps the token", econnecttest.Fault{Body: `{"token":"ey`}, 1},
		{"503 keeps the token", econnecttest.Fault{Status: 503}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.source(t, nil)
			first := mustToken(t, s)
			f.srv.FailRenew(1, tt.fault)
			f.srv.FailLogin(1, econnecttest.Fault{Status: 503}) // a login now would leave callers with nothing
			f.clk.Advance(dueIn)
			mustToken(t, s)
			s.wg.Wait()
			tok, err := s.current(context.Background(), failFast)
			if st := f.stats(); st.Logins != tt.wantLogins || st.Renewals != 1 {
				t.Errorf("Stats = %+v, want %d logins and 1 renewal", st, tt.wantLogins)
			}
			if kept := err == nil && tok == first; kept != (tt.wantLogins == 1) {
				t.Errorf("current() = %v, %v; want the token kept %t (a refused one is dropped even when the login fails)", tok, err, tt.wantLogins == 1)
			}
		})
	}
}

// TestHungRenewal: a renewal that never answers ends when its token stops
// being usable; a login starts then, and waiting callers get its result.
// A hedged attempt answers a renewal whose first attempt hangs.
func TestHungRenewal(t *testing.T) {
	t.Run("login at the end of the usable life", func(t *testing.T) {
		f := newFixture(t)
		s := f.source(t, nil)
		first := mustToken(t, s)
		f.srv.FailRenew(1, econnecttest.Fault{Hang: true})
		f.clk.Advance(life1h - 10*time.Second - 50*time.Millisecond) // due, 50 ms of usable life left
		mustToken(t, s)
		s.wg.Wait() // the renewal gives up after the 50 ms (real ones here), then logs in
		f.clk.Advance(50 * time.Millisecond)
		if tok := mustToken(t, s); tok == first {
			t.Error("current() = the old token after its usable life")
		}
		if st := f.stats(); st.Logins != 2 || st.Renewals != 1 {
			t.Errorf("Stats = %+v, want 2 logins and 1 renewal", st)
		}
	})
	t.Run("hedged", func(t *testing.T) {
		f := newFixture(t)
		s := f.source(t, nil)
		first := mustToken(t, s)
		s.hedge = 20 * time.Millisecond
		f.srv.FailRenew(1, econnecttest.Fault{Hang: true})
		f.clk.Advance(dueIn)
		mustToken(t, s)
		s.wg.Wait()
		if tok := mustToken(t, s); tok == first {
			t.Error("the hedged renewal brought no new token")
		}
		if st := f.stats(); st.Logins != 1 || st.Renewals != 2 {
			t.Errorf("Stats = %+v, want 1 login and 2 renewal attempts", st)
		}
	})
}

// TestTokenOnly: without a password the source renews a saved token, never
// logs in, and answers a 401 with one renewal instead of dropping its only
// token.
func TestTokenOnly(t *testing.T) {
	f := newFixture(t)
	saved, err := f.source(t, nil).Token()
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	f.cfg.Password = ""
	s := f.source(t, saved)
	first := mustToken(t, s)

	f.srv.FailRenew(1, econnecttest.Fault{Status: 503})
	if !s.refused(first) {
		t.Fatal("refused() = false on the first 401, want a retry")
	}
	if tok := mustToken(t, s); tok != first {
		t.Error("after a 401 and a failed renewal, the only token was dropped")
	}
	f.clk.Advance(2 * time.Second) // past the spacing of 401-driven replacements
	if !s.refused(first) {
		t.Fatal("refused() = false after the spacing, want a retry")
	}
	renewed := mustToken(t, s)
	if renewed == first {
		t.Error("a 401 without a password did not lead to a renewal")
	}
	f.clk.Advance(2 * time.Hour)
	if _, err := s.current(context.Background(), failFast); !errors.Is(err, ErrNoPassword) {
		t.Errorf("current() on an expired token without password: error = %v, want ErrNoPassword", err)
	}
	if st := f.stats(); st.Logins != 1 || st.Renewals != 2 {
		t.Errorf("Stats = %+v, want the setup's login and 2 renewals", st)
	}
}

// TestTransientRenewalFailure: a renewal answered 503 while the token is
// usable surfaces no error; the next try waits clamp(left/4, 1 s, 30 s);
// once the token is no longer usable the source logs in. One warning.
func TestTransientRenewalFailure(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.srv.SetLifetime(time.Minute) // 59 s: renewal due at 22.125 s left; margin 5.9 s
	s := f.source(t, nil)
	first := mustToken(t, s)
	f.srv.FailRenew(1000, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	steps := []struct {
		advance      time.Duration
		wantRenewals int
	}{
		{37 * time.Second, 1},          // 22 s left; next in 5.5 s
		{5500*time.Millisecond - 1, 1}, // too early
		{1, 2},                         // 16.5 s left; next in 4.125 s
		{4125*time.Millisecond - 1, 2}, // too early
		{1, 3},                         // 12.375 s left
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
	f.clk.Advance(7 * time.Second) // 5.375 s left, under the margin: the source logs in
	if tok := mustToken(t, s); tok == first {
		t.Error("token under its safety margin handed out")
	}
	if st := f.stats(); st.Logins != 2 {
		t.Errorf("Stats().Logins = %d, want 2", st.Logins)
	}
}

// TestLoginBackoff: a wrong password in a busy loop sends one login per
// backoff step (1 s doubling to 5 minutes); a failing server is asked once
// per step of 1 s doubling to 30 s, and the source recovers. One warning.
func TestLoginBackoff(t *testing.T) {
	busy := func(t *testing.T, s *source, want func(error) bool) {
		t.Helper()
		for range 100 {
			if _, err := s.current(context.Background(), failFast); !want(err) {
				t.Fatalf("current() error = %v", err)
			}
		}
	}
	tests := []struct {
		name     string
		password string
		fault    econnecttest.Fault
		steps    []time.Duration
		want     func(error) bool
	}{
		{"wrong password", "wrong", econnecttest.Fault{}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second,
			8 * time.Second, 16 * time.Second, 32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second,
			5 * time.Minute, 5 * time.Minute}, func(err error) bool { return errors.Is(err, ErrBadCredentials) }},
		{"server failing", testPassword, econnecttest.Fault{Status: http.StatusBadGateway}, []time.Duration{time.Second,
			2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second},
			func(err error) bool { var re *oauth2.RetrieveError; return errors.As(err, &re) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.cfg.Password = tt.password
			var logs bytes.Buffer
			f.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			if tt.fault.Status != 0 {
				f.srv.FailLogin(1000, tt.fault)
			}
			s := f.source(t, nil)
			busy(t, s, tt.want)
			for i, step := range tt.steps {
				f.clk.Advance(step - time.Millisecond)
				busy(t, s, tt.want)
				if got := f.stats().Logins; got != i+1 {
					t.Fatalf("%v into a %v backoff: Stats().Logins = %d, want %d", step-time.Millisecond, step, got, i+1)
				}
				f.clk.Advance(time.Millisecond)
				busy(t, s, tt.want)
				if got := f.stats().Logins; got != i+2 {
					t.Fatalf("after a %v backoff: Stats().Logins = %d, want %d", step, got, i+2)
				}
			}
			s.wg.Wait() // a flight logs after releasing its waiters
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Errorf("logged %d warnings for one failure streak, want 1:\n%s", n, logs.String())
			}
		})
	}
}

// TestClockSteps: backoffs run on the monotonic clock, so a wall clock
// stepped back does not stretch them; expiry follows the wall clock, so a
// host that slept sees its token expired.
func TestClockSteps(t *testing.T) {
	f := newFixture(t)
	f.srv.FailLogin(1, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	s := f.source(t, nil)
	if _, err := s.current(context.Background(), failFast); err == nil {
		t.Fatal("current() error = nil, want the 503")
	}
	f.clk.StepWall(-time.Hour)
	f.clk.Advance(time.Second)
	first := mustToken(t, s) // the 1 s backoff is over, whatever the wall clock did
	f.clk.StepWall(2 * time.Hour)
	if tok := mustToken(t, s); tok == first {
		t.Error("after the wall clock moved past expiry, the old token was handed out")
	}
	if st := f.stats(); st.Logins != 3 || st.Renewals != 0 {
		t.Errorf("Stats = %+v, want 3 logins and no renewal", st)
	}
}

// TestPatientCallers: while logins back off after transient failures, a
// request whose context allows it waits for the next attempt and gets its
// result, through further failures while its deadline allows; one whose
// deadline comes first fails at once; Token (no context) waits out
// backoffs within 2 s of the call in all, then returns the last error. The
// schedule of attempts is the same however many wait.
func TestPatientCallers(t *testing.T) {
	f := newFixture(t)
	f.srv.FailLogin(2, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	s := f.source(t, nil)
	if _, err := s.current(context.Background(), failFast); err == nil {
		t.Fatal("current() error = nil, want the failed login's")
	}
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := s.current(short, untilDeadline); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("current(deadline before the backoff ends) error = %v, want the last error at once", err)
	}
	go func() { // the 1 s backoff ends; the second login fails; Token gives up; the 2 s backoff ends
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
		defer cancel()
		f.clk.AwaitSleepers(ctx, 11)
		f.clk.Advance(time.Second)
		f.srv.WaitFor(ctx, func(st econnecttest.Stats) bool { return st.Logins == 2 })
		f.clk.AwaitSleepers(ctx, 10)
		f.clk.Advance(2 * time.Second)
	}()
	long, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	testkit.Parallel(11, func(i int) {
		if i == 10 {
			_, err := s.Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("Token() error = %v, want the second login's 503: the next attempt is past its 2 s", err)
			}
			return
		}
		if _, err := s.current(long, untilDeadline); err != nil {
			t.Errorf("request %d: error = %v, want the third login's token", i, err)
		}
	})
	if st := f.stats(); st.Logins != 3 {
		t.Errorf("Stats().Logins = %d, want 3: one attempt at the end of each backoff", st.Logins)
	}
}

// TestRetryAfter: a 429's or 503's Retry-After holds every auth call, login
// and renewal, for its window, and sets the next login attempt.
func TestRetryAfter(t *testing.T) {
	f := newFixture(t)
	ra := econnecttest.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"3"}}}
	f.srv.FailLogin(3, ra) // three in a row: the server's 3 s each time, not 1, 2, 4 s nor their max
	s := f.source(t, nil)
	for i := 1; i <= 3; i++ {
		s.current(context.Background(), failFast)
		f.clk.Advance(3*time.Second - time.Millisecond)
		if _, err := s.current(context.Background(), failFast); err == nil || f.stats().Logins != i {
			t.Fatalf("inside Retry-After window %d: error %v after %d logins, want the 429 and %d", i, err, f.stats().Logins, i)
		}
		f.clk.Advance(time.Millisecond)
	}
	first := mustToken(t, s)

	ra.Status, ra.Header = http.StatusServiceUnavailable, http.Header{"Retry-After": {"120"}}
	f.srv.FailRenew(1, ra)
	f.clk.Advance(dueIn)
	mustToken(t, s)
	s.wg.Wait()
	f.clk.Advance(120*time.Second - time.Millisecond) // the retry delay alone would have allowed one after ~56 s
	if tok := mustToken(t, s); tok != first || f.stats().Renewals != 1 {
		t.Fatalf("inside the window: %d renewals, want 1 and the token kept", f.stats().Renewals)
	}
	f.clk.Advance(time.Millisecond)
	mustToken(t, s)
	s.wg.Wait()
	if st := f.stats(); st.Renewals != 2 || st.Logins != 4 {
		t.Errorf("Stats = %+v, want 2 renewals and 4 logins (3 refused with 429)", st)
	}
}

// simulate calls the source every step for total, letting each renewal
// finish, and returns the number of auth calls and of distinct tokens. It
// fails the test if a token under its safety margin is handed out.
func simulate(t testing.TB, f *fixture, s *source, step, total time.Duration) (calls, tokens int) {
	t.Helper()
	var last *token
	for elapsed := time.Duration(0); elapsed < total; elapsed += step {
		tok := mustToken(t, s)
		if st := tok.timing.State(f.clk.Wall()); !st.Usable() {
			t.Fatalf("handed out a token in state %v", st)
		}
		if tok != last {
			tokens++
			last = tok
		}
		s.wg.Wait()
		f.clk.Advance(step)
	}
	return f.stats().Logins + f.stats().Renewals, tokens
}

// TestServerClockSkew: a server clock 10 minutes ahead or behind changes
// neither the number of auth calls nor how long each token is used.
func TestServerClockSkew(t *testing.T) {
	var want [2]int
	for i, offset := range []time.Duration{0, -10 * time.Minute, 10*time.Minute + 300*time.Millisecond} {
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
// call rate and any EarlyExpiry, and no token handed out under its margin.
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

// TestEndpointAlways401: an endpoint that refuses every token causes at most
// one login a second, the spacing doubling for each fresh token refused in
// turn, not one login per request.
func TestEndpointAlways401(t *testing.T) {
	f := newFixture(t)
	var calls atomic.Int32
	f.srv.Handle("/api/v1/always401", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	hc := &http.Client{Transport: &Transport{Source: f.source(t, nil), Base: f.srv.Client().Transport}}
	post := func() int {
		resp, err := hc.Post(f.srv.URL+"/api/v1/always401", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatalf("Post() error = %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	steps := []struct {
		advance               time.Duration
		wantCalls, wantLogins int32
	}{
		{0, 2 + 19, 2},                    // a re-login and retry, then plain 401s for a second
		{time.Second, 21 + 2 + 19, 3},     // the fresh token was refused: 2 s this time
		{time.Second, 42 + 20, 3},         // still inside the 2 s
		{3 * time.Second, 62 + 2 + 19, 4}, // the next: 4 s
		{time.Second, 83 + 20, 4},
	}
	for i, st := range steps {
		f.clk.Advance(st.advance)
		for range 20 {
			if code := post(); code != 401 {
				t.Fatalf("step %d: status %d, want 401", i, code)
			}
		}
		if got, logins := calls.Load(), int32(f.stats().Logins); got != st.wantCalls || logins != st.wantLogins {
			t.Errorf("step %d: %d calls and %d logins, want %d and %d", i, got, logins, st.wantCalls, st.wantLogins)
		}
	}
}

// cannedAuth answers logins and renewals in process with JWTs stamped by
// clk, as the fake server would, without a network: for fleets of sources.
type cannedAuth struct {
	clk      *testkit.Clock
	lifetime time.Duration
	n        atomic.Int64
}

func (c *cannedAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	iat := c.clk.Wall().Truncate(time.Second)
	jwt := testkit.FakeJWT(map[string]any{"iat": iat.Unix(), "exp": iat.Add(c.lifetime).Unix(), "jti": c.n.Add(1)})
	return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
		Body: io.NopCloser(strings.NewReader(answer(jwt)))}, nil
}

// fleet logs n sources in at the same instant, then renews each token as
// its renewal point passes, for lifetimes lifetimes. For each lifetime it
// returns the largest share of its renewals that fell into one window of
// width, and the time from its first renewal to its last.
func fleet(t testing.TB, n, lifetimes int, lifetime, width time.Duration, draw func() float64) (peaks []float64, spreads []time.Duration) {
	clk := testkit.NewClock(epoch.Add(300 * time.Millisecond))
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: &cannedAuth{clk: clk, lifetime: lifetime}})
	cfg := Config{BaseURL: "https://identities.example", Username: testUser, Password: testPassword}
	sources := make([]*source, n)
	for i := range sources {
		s := newSource(ctx, &cfg, nil)
		s.clock = &clock{wall: clk.Wall, mono: clk.Mono, rand: draw, sleep: clk.Sleep}
		s.draw = draw()
		mustToken(t, s)
		sources[i] = s
	}
	renewAt := func(s *source) time.Time { return time.Unix(0, s.snap.Load().renewAt) }
	for range lifetimes {
		slices.SortFunc(sources, func(a, b *source) int { return renewAt(a).Compare(renewAt(b)) })
		first, counts := renewAt(sources[0]), map[int64]int{}
		for _, s := range sources {
			at := renewAt(s)
			if d := at.Sub(clk.Wall()) + 1; d > 0 {
				clk.Advance(d)
			}
			mustToken(t, s) // due: the renewal starts
			s.wg.Wait()
			counts[at.UnixNano()/int64(width)]++
		}
		spreads = append(spreads, clk.Wall().Sub(first))
		peak := 0
		for _, c := range counts {
			peak = max(peak, c)
		}
		peaks = append(peaks, float64(peak)/float64(n))
	}
	return peaks, spreads
}

// TestFleetSpread: 200 sources that logged in together with 8 s tokens send
// their renewals spread over at least 600 ms, no 100 ms holding more than
// a quarter of them, lifetime after lifetime.
func TestFleetSpread(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	peaks, spreads := fleet(t, 200, 3, 8*time.Second, 100*time.Millisecond, r.Float64)
	for k := range peaks {
		if peaks[k] > 0.25 || spreads[k] < 600*time.Millisecond {
			t.Errorf("lifetime %d: renewals spread over %v, %.0f%% in one 100 ms; want ≥ 600 ms and ≤ 25%%", k+1, spreads[k], 100*peaks[k])
		}
	}
}

// BenchmarkFleet: 10,000 sources that logged in in the same second, with
// 1-hour tokens, over 10 lifetimes: the largest share of a lifetime's
// renewals in any one second, for the first lifetime and the worst of the
// later ones; without a random draw (all at the middle of the window) as
// the baseline.
func BenchmarkFleet(b *testing.B) {
	for _, impl := range []string{"lockstep", "econnect"} {
		b.Run("impl="+impl, func(b *testing.B) {
			draw := rand.New(rand.NewPCG(3, 4)).Float64
			if impl == "lockstep" {
				draw = func() float64 { return 0.5 }
			}
			n := 10_000
			if testing.Short() { // CI's run-once check of the benchmark
				n = 1_000
			}
			for b.Loop() {
				peaks, _ := fleet(b, n, 10, time.Hour, time.Second, draw)
				b.ReportMetric(100*peaks[0], "%peak-second/lifetime-1")
				b.ReportMetric(100*slices.Max(peaks[1:]), "%peak-second/lifetime-2+")
			}
		})
	}
}

// BenchmarkRead: a cached read on the Client path, the source's lock-free
// snapshot, against its floor (an atomic.Pointer load and time.Now) and
// against oauth2.ReuseTokenSource; and the same read from a source with a
// Config.Store, which a fresh token's read never touches. Run it with
// -cpu 1,2,4,8.
func BenchmarkRead(b *testing.B) {
	f := newFixture(b)
	f.srv.SetClock(time.Now)
	s := newSource(f.ctx, &f.cfg, nil)
	var floor atomic.Pointer[token]
	floor.Store(mustToken(b, s))
	stored := newSource(f.ctx, &Config{BaseURL: f.srv.URL, Username: testUser, Password: testPassword,
		Store: econnecttest.NewStore()}, nil)
	mustToken(b, stored)
	reuse := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x", Expiry: time.Now().Add(time.Hour)}))
	ctx := context.Background()
	reads := []struct {
		name string
		read func() bool
	}{
		{"impl=atomic+now", func() bool { t := floor.Load(); return t != nil && time.Now().UnixNano() < t.renewAt }},
		{"impl=econnect", func() bool { t, err := s.current(ctx, untilDeadline); return err == nil && t != nil }},
		{"impl=econnect+store", func() bool { t, err := stored.current(ctx, untilDeadline); return err == nil && t != nil }},
		{"impl=oauth2.ReuseTokenSource", func() bool { t, err := reuse.Token(); return err == nil && t != nil }},
	}
	for _, r := range reads {
		b.Run(r.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !r.read() {
						b.Error("read failed")
						return
					}
				}
			})
		})
	}
}

// BenchmarkAuthCallsPerLifetime: auth calls per token lifetime at 1000 calls
// per lifetime, for EarlyExpiry from 1 ns to a day, on the fake clock. It
// reports the worst case over that range.
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

// withStore gives the fixture's Config a fault-injecting store on its
// clock, and returns it.
func (f *fixture) withStore(t testing.TB) *econnecttest.Store {
	t.Helper()
	st := econnecttest.NewStore()
	st.SetClock(f.clk.Wall)
	t.Cleanup(st.Close)
	f.cfg.Store = st
	return st
}

// settled waits for s's flights and their store work.
func settled(t testing.TB, s *source) {
	t.Helper()
	s.wg.Wait()
	if err := s.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStoreRestart: a source started where another saved a usable token
// makes no auth call; one whose stored token has expired, or whose store
// holds anything but a valid entry for its key, makes exactly one login and
// no error.
func TestStoreRestart(t *testing.T) {
	f := newFixture(t)
	st := f.withStore(t)
	first := f.source(t, nil)
	tok := mustToken(t, first)
	settled(t, first)
	if st.Stats().Saves != 1 {
		t.Fatalf("Stats().Saves = %d after a login, want 1", st.Stats().Saves)
	}
	second := f.source(t, nil)
	if got := mustToken(t, second); got.raw() != tok.raw() || f.stats().Logins != 1 {
		t.Errorf("after a restart: %d logins, same token %t; want the stored token and no auth call", f.stats().Logins, got.raw() == tok.raw())
	}
	if s := second.status(); s.Adopted != 1 || s.Logins != 0 {
		t.Errorf("status() = %+v, want 1 adopted and 0 logins", s)
	}
	key := st.Keys()[0]
	valid, _ := st.Value(key)
	other, _ := json.Marshal(map[string]any{"version": 1, "key": "econnect-v1-other", "token": tok.raw(), "saved_at": f.clk.Wall()})
	for name, v := range map[string][]byte{
		"empty": {}, "truncated": valid[:len(valid)/2], "garbage": []byte("\x00\x01\x02"),
		"another key's entry": other, "not JSON": []byte("eyJ.not.json"),
	} {
		t.Run(name, func(t *testing.T) {
			st.Put(key, v)
			before := f.stats().Logins
			if _, err := f.source(t, nil).current(context.Background(), failFast); err != nil {
				t.Errorf("current() error = %v, want a login's token", err)
			}
			if n := f.stats().Logins - before; n != 1 {
				t.Errorf("%d logins, want exactly 1", n)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		st.Put(key, valid)
		f.clk.Advance(2 * time.Hour)
		before := f.stats().Logins
		mustToken(t, f.source(t, nil))
		if n := f.stats().Logins - before; n != 1 {
			t.Errorf("%d logins with an expired stored token, want 1", n)
		}
	})
}

// TestStoreSharesRenewals: two sources sharing a store renew once per
// lifetime between them: the one whose renewal point comes first renews
// and saves; the other, at its own point, takes that newer token instead.
func TestStoreSharesRenewals(t *testing.T) {
	f := newFixture(t)
	f.withStore(t)
	early, late := f.source(t, nil), f.source(t, nil)
	early.draw = 0.99 // its renewal point comes up to a quarter of the window sooner
	mustToken(t, early)
	settled(t, early)
	mustToken(t, late)
	for lifetime := range 3 {
		exp := mustToken(t, early).timing.Expiry
		f.clk.Advance(exp.Add(-260 * time.Second).Sub(f.clk.Wall())) // past early's point (299 s), before late's (225 s)
		mustToken(t, early)
		settled(t, early)
		f.clk.Advance(40 * time.Second)
		mustToken(t, late)
		settled(t, late)
		if got := mustToken(t, late); got.raw() != mustToken(t, early).raw() {
			t.Errorf("lifetime %d: the late source holds another token than the early one's renewal", lifetime)
		}
		if st := f.stats(); st.Logins != 1 || st.Renewals != lifetime+1 {
			t.Errorf("lifetime %d: Stats = %+v, want 1 login and %d renewals: one per lifetime", lifetime, st, lifetime+1)
		}
	}
	if s := late.status(); s.Renewals != 0 || s.Adopted != 4 {
		t.Errorf("late.status() = %+v, want no renewal and 4 tokens taken from the store", s)
	}
}

// TestStoreAfterRefusal: after a 401 on T, the first source logs in and
// saves; a second that saw T refused too takes that token instead of
// logging in; neither ever takes T from the store again. When the login
// after a refusal fails, T is deleted from the store, so that no peer
// adopts it.
func TestStoreAfterRefusal(t *testing.T) {
	f := newFixture(t)
	st := f.withStore(t)
	a := f.source(t, nil)
	refused := mustToken(t, a)
	settled(t, a)
	b := f.source(t, nil)
	if mustToken(t, b).raw() != refused.raw() {
		t.Fatal("b did not start from a's stored token")
	}
	f.srv.RotateKey()
	if !a.refused(refused) {
		t.Fatal("refused() = false on the first 401")
	}
	fresh := mustToken(t, a)
	settled(t, a)
	b.refused(mustToken(t, b))
	if got := mustToken(t, b); got.raw() != fresh.raw() {
		t.Error("b logged in or kept the refused token, want a's fresh one from the store")
	}
	if n := f.stats().Logins; n != 2 {
		t.Errorf("Stats().Logins = %d, want 2: the first, and one for the rotation", n)
	}

	t.Run("failed login deletes the refused token", func(t *testing.T) {
		f.clk.Advance(2 * time.Second) // past the 401 spacing
		f.srv.RotateKey()
		f.srv.FailLogin(1, econnecttest.Fault{Status: http.StatusServiceUnavailable})
		a.refused(fresh)
		if _, err := a.current(context.Background(), failFast); err == nil {
			t.Error("current() after the refusal and a failed login gave the refused token back")
		}
		settled(t, a)
		if n := f.stats().Logins; n != 3 {
			t.Fatalf("Stats().Logins = %d, want 3", n)
		}
		if keys := st.Keys(); len(keys) != 0 {
			t.Errorf("the store still holds %d values after the refused token's replacement failed, want none", len(keys))
		}
	})
}

// TestStoreFaults: a store that fails, hangs or holds garbage never fails a
// request that would succeed without it, and costs one Logger warning per
// failure streak.
func TestStoreFaults(t *testing.T) {
	refused := econnecttest.StoreFault{Err: errors.New("connection refused")}
	for _, tt := range []struct {
		name        string
		load, other econnecttest.StoreFault
		rounds      int
	}{
		{"fails", refused, refused, 3},
		{"hangs", econnecttest.StoreFault{Hang: true}, econnecttest.StoreFault{Hang: true}, 1}, // a second a call
		// A save that works ends a streak: here saves fail too.
		{"garbage", econnecttest.StoreFault{Value: []byte(`{"version":1,"token":"x"}`)}, refused, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			st := f.withStore(t)
			var logs bytes.Buffer
			f.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			st.Fail(econnecttest.StoreLoad, 1000, tt.load)
			st.Fail(econnecttest.StoreSave, 1000, tt.other)
			st.Fail(econnecttest.StoreLock, 1000, tt.other)
			s := f.source(t, nil)
			for i := range tt.rounds {
				if _, err := s.current(context.Background(), untilDeadline); err != nil {
					t.Fatalf("request %d: error = %v, want a token", i, err)
				}
				settled(t, s)
				f.clk.Advance(dueIn) // a renewal each time: the store is asked again
			}
			if n := strings.Count(logs.String(), "Config.Store"); n != 1 {
				t.Errorf("%d store warnings, want 1 for the streak:\n%s", n, logs.String())
			}
			if !strings.Contains(logs.String(), "store=*econnecttest.Store") {
				t.Errorf("the warning does not name the store's type:\n%s", logs.String())
			}
		})
	}
}

// TestStoreLease: 20 sources sharing a store with a lock, started together
// with no token stored, make one login; the others take its token.
func TestStoreLease(t *testing.T) {
	f := newFixture(t)
	st := f.withStore(t)
	release := make(chan struct{})
	f.srv.FailLogin(1, econnecttest.Fault{Wait: release})
	go func() { // the login answers once the 19 others wait for its lock
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
		defer cancel()
		st.WaitFor(ctx, func(s econnecttest.StoreStats) bool { return s.LockWaits >= 19 })
		close(release)
	}()
	sources := make([]*source, 20)
	for i := range sources {
		sources[i] = f.source(t, nil)
	}
	testkit.Parallel(len(sources), func(i int) {
		if _, err := sources[i].current(context.Background(), untilDeadline); err != nil {
			t.Errorf("source %d: error = %v", i, err)
		}
	})
	if n := f.stats().Logins; n != 1 {
		t.Errorf("Stats().Logins = %d, want 1 for 20 sources sharing a lock", n)
	}
	if s := st.Stats(); s.MaxHolders != 1 {
		t.Errorf("store MaxHolders = %d, want 1", s.MaxHolders)
	}
}

// TestFlush: Flush waits for the save that follows a token, within its
// context.
func TestFlush(t *testing.T) {
	f := newFixture(t)
	st := f.withStore(t)
	st.Fail(econnecttest.StoreSave, 1, econnecttest.StoreFault{Hang: true})
	s := f.source(t, nil)
	mustToken(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Flush(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush(cancelled) error = %v while the save hangs, want context.Canceled", err)
	}
	if err := Flush(context.Background(), s); err != nil {
		t.Errorf("Flush() error = %v", err)
	}
	if st.Stats().Saves != 1 {
		t.Errorf("after Flush, Stats().Saves = %d, want 1", st.Stats().Saves)
	}
	if err := Flush(context.Background(), oauth2.StaticTokenSource(nil)); err != nil {
		t.Errorf("Flush(another source) error = %v, want nil", err)
	}
}

// TestTokenSourceFromStore: a source started from a token takes the stored
// one instead when it is newer by the JWT's claims, and keeps its own when
// the stored one is older, and saves it for the others.
func TestTokenSourceFromStore(t *testing.T) {
	f := newFixture(t)
	f.withStore(t)
	a := f.source(t, nil)
	old := mustToken(t, a).oauth2Token()
	settled(t, a)
	f.clk.Advance(dueIn)
	mustToken(t, a) // a renews and saves a newer token
	settled(t, a)
	newer := mustToken(t, a)
	from := func(saved *oauth2.Token) *source {
		s := f.source(t, saved)
		s.startFromShelf()
		settled(t, s)
		return s
	}
	if got := mustToken(t, from(old)); got.raw() != newer.raw() {
		t.Error("TokenSourceFrom(older token) kept it, want the newer stored one")
	}
	f.clk.Advance(time.Second)
	unsaved := f.source(t, nil)
	unsaved.shelf = nil
	newest := mustToken(t, unsaved).oauth2Token()
	if got := mustToken(t, from(newest)); got.raw() != newest.AccessToken {
		t.Error("TokenSourceFrom(newer token) took the older stored one")
	}
	if got := mustToken(t, from(nil)); got.raw() != newest.AccessToken {
		t.Error("a source started after TokenSourceFrom(newer token) did not find it in the store")
	}
	if st := f.stats(); st.Logins != 2 || st.Renewals != 1 {
		t.Errorf("Stats = %+v, want the 2 logins and 1 renewal of the setup, nothing more", st)
	}
}

// TestStoreHoldsNoPassword: no stored byte holds the password, nor its
// hashes or encodings.
func TestStoreHoldsNoPassword(t *testing.T) {
	f := newFixture(t)
	st := f.withStore(t)
	s := f.source(t, nil)
	mustToken(t, s)
	settled(t, s)
	sum := sha256.Sum256([]byte(testPassword))
	forms := []string{testPassword, hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString([]byte(testPassword)),
		base64.RawURLEncoding.EncodeToString([]byte(testPassword)), base64.StdEncoding.EncodeToString(sum[:])}
	for _, k := range st.Keys() {
		v, _ := st.Value(k)
		for _, form := range append(forms, testUser, "127.0.0.1") {
			if strings.Contains(k, form) {
				t.Errorf("key %q names %q", k, form)
			}
		}
		for _, form := range forms {
			if bytes.Contains(v, []byte(form)) {
				t.Errorf("the stored value holds the password in a form: %q", form)
			}
		}
	}
}

// TestStoreTokenOnly: a source without a password takes a peer's token
// from the store rather than fail, and says so when there is none.
func TestStoreTokenOnly(t *testing.T) {
	f := newFixture(t)
	f.withStore(t)
	peer := f.source(t, nil)
	want := mustToken(t, peer)
	settled(t, peer)
	f.cfg.Password = ""
	if got := mustToken(t, f.source(t, nil)); got.raw() != want.raw() {
		t.Error("a source without a password did not take the stored token")
	}
	f.cfg.Store = econnecttest.NewStore()
	defer f.cfg.Store.(*econnecttest.Store).Close()
	if _, err := f.source(t, nil).current(context.Background(), failFast); !errors.Is(err, ErrNoPassword) {
		t.Errorf("with nothing stored: error = %v, want ErrNoPassword", err)
	}
}

// TestTokenCallersInARow: oauth2's cache calls Token under its mutex, one
// caller after another; while logins fail with Retry-After: 1, 20 callers
// all return within 2 s of the first call (fake time), instead of each
// waiting up to 2 s after the one before it, and the server sees no more
// logins for them than for one.
func TestTokenCallersInARow(t *testing.T) {
	f := newFixture(t)
	f.srv.FailLogin(1000, econnecttest.Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}})
	ts := f.source(t, nil).reuse(reuseLayout)
	done := make(chan struct{})
	go func() {
		defer close(done)
		testkit.Parallel(20, func(i int) {
			if _, err := ts.Token(); err == nil {
				t.Errorf("Token() %d: error = nil, want the 429", i)
			}
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
	defer cancel()
	start := f.clk.Mono()
	for !isDone(done) { // each sleeper is woken at its next attempt, which is then made
		slept := make(chan error, 1)
		go func() { slept <- f.clk.AwaitSleepers(ctx, 1) }()
		select {
		case <-done:
			continue
		case <-slept:
		}
		n := f.stats().Logins
		f.clk.Advance(time.Second)
		awaitStats(t, f.srv, func(st econnecttest.Stats) bool { return st.Logins > n })
	}
	if d := f.clk.Mono() - start; d > tokenWait {
		t.Errorf("20 Token calls in a row took %v of the clock, want at most %v", d, tokenWait)
	}
	if n := f.stats().Logins; n > 3 {
		t.Errorf("Stats().Logins = %d for 20 Token calls, want at most 3, as for one", n)
	}
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestUnverifiedLayout: oauth2's cache is unwrapped only where a probe
// found its source in exactly one field of the TokenSource type, whatever
// the field's name. Any other holding (nested, held twice, not a pointer)
// fails closed: TokenSource returns the package's own source, around which
// a hand-built Transport still sends the token only to its origin and
// heals a 401.
func TestUnverifiedLayout(t *testing.T) {
	for name, tt := range map[string]struct {
		wrap  func(oauth2.TokenSource) oauth2.TokenSource
		known bool
	}{
		"oauth2's own":  {func(ts oauth2.TokenSource) oauth2.TokenSource { return oauth2.ReuseTokenSource(nil, ts) }, true},
		"another name":  {func(ts oauth2.TokenSource) oauth2.TokenSource { return &renamedCache{mu: &sync.Mutex{}, src: ts} }, true},
		"nested":        {func(ts oauth2.TokenSource) oauth2.TokenSource { return &nestedCache{inner: &renamedCache{src: ts}} }, false},
		"held twice":    {func(ts oauth2.TokenSource) oauth2.TokenSource { return &twiceCache{ts, ts} }, false},
		"not a pointer": {func(ts oauth2.TokenSource) oauth2.TokenSource { return valueCache{ts} }, false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := probeLayout(tt.wrap).known(); got != tt.known {
				t.Errorf("probeLayout().known() = %t, want %t", got, tt.known)
			}
		})
	}
	f := newFixture(t)
	s := f.source(t, nil)
	ts := s.reuse(layout{field: -1})
	if ts != oauth2.TokenSource(s) {
		t.Fatalf("reuse(unknown layout) = %T, want the package's own source", ts)
	}
	other, requests, leaked := otherOriginServer(t)
	hc := &http.Client{Transport: &Transport{Source: ts, Base: f.srv.Client().Transport}}
	f.srv.Handle("GET /api/v1/ok", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	get := func(url string) int {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("Get(%s) error = %v", url, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	get(f.srv.URL + "/api/v1/ok")
	f.srv.RotateKey()
	if code := get(f.srv.URL + "/api/v1/ok"); code != 200 || f.stats().Logins != 2 {
		t.Errorf("after a key rotation: status %d with %d logins, want 200 and 2: the 401 healed", code, f.stats().Logins)
	}
	get(other)
	if requests.Load() != 1 || leaked.Load() != 0 {
		t.Errorf("another origin: %d requests, %d with the token; want 1 and 0", requests.Load(), leaked.Load())
	}
}

// Caches holding their source as a future oauth2 might; the probe never
// calls them.
type (
	renamedCache struct {
		mu  *sync.Mutex
		src oauth2.TokenSource
	}
	nestedCache struct{ inner *renamedCache }
	twiceCache  struct{ a, b oauth2.TokenSource }
	valueCache  struct{ src oauth2.TokenSource }
)

func (*renamedCache) Token() (*oauth2.Token, error) { return nil, errors.New("not called") }
func (*nestedCache) Token() (*oauth2.Token, error)  { return nil, errors.New("not called") }
func (*twiceCache) Token() (*oauth2.Token, error)   { return nil, errors.New("not called") }
func (valueCache) Token() (*oauth2.Token, error)    { return nil, errors.New("not called") }

// otherOriginServer starts a server on another origin that counts the
// requests reaching it, and those with an Authorization header.
func otherOriginServer(t *testing.T) (url string, requests, leaked *atomic.Int32) {
	t.Helper()
	requests, leaked = new(atomic.Int32), new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, requests, leaked
}

// TestLoginHedgedOnlyOnceAccepted: a login is hedged only once the server
// has accepted these credentials in this source, so that a slow server
// never counts a wrong password twice toward the account's lockout;
// renewals, and logins after that, are hedged.
func TestLoginHedgedOnlyOnceAccepted(t *testing.T) {
	f := newFixture(t)
	f.cfg.Password = "wrong"
	f.srv.SetLatency(100 * time.Millisecond)
	s := f.source(t, nil)
	s.hedge = 20 * time.Millisecond
	if _, err := s.current(context.Background(), failFast); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("current() error = %v, want ErrBadCredentials", err)
	}
	if n := f.stats().Logins; n != 1 {
		t.Errorf("a slow wrong-password login reached the server %d times, want 1: no hedge before the credentials are accepted", n)
	}
	f.cfg.Password = testPassword
	s = f.source(t, nil)
	s.hedge = 20 * time.Millisecond
	tok := mustToken(t, s)
	if n := f.stats().Logins; n != 2 {
		t.Fatalf("Stats().Logins = %d, want 2 (the first login is not hedged)", n)
	}
	f.srv.SetLatency(0)
	f.srv.FailLogin(1, econnecttest.Fault{Hang: true})
	s.refused(tok)
	if got := mustToken(t, s); got == tok {
		t.Fatal("no new token after the refusal")
	}
	if n := f.stats().Logins; n != 4 {
		t.Errorf("Stats().Logins = %d, want 4: the re-login hung and its hedge answered", n)
	}
}

// TestBusyClientRefusedFreshToken: with 50 requests in flight, the server
// refuses the old token and the first fresh one; the spacing of 401-driven
// logins doubles once for that fresh token, not once per request that saw
// it, so the next login comes a second later and heals.
func TestBusyClientRefusedFreshToken(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var seen []string
	f.srv.Handle("POST /api/v1/strict", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		jwt := r.Header.Get("Authorization")
		if !slices.Contains(seen, jwt) {
			seen = append(seen, jwt)
		}
		if i := slices.Index(seen, jwt); i < 2 {
			w.WriteHeader(http.StatusUnauthorized) // the first two tokens it sees
		}
	}))
	hc := &http.Client{Transport: &Transport{Source: f.source(t, nil), Base: f.srv.Client().Transport}}
	post := func() int {
		resp, err := hc.Post(f.srv.URL+"/api/v1/strict", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Errorf("Post() error = %v", err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	testkit.Parallel(50, func(int) {
		if code := post(); code != http.StatusUnauthorized {
			t.Errorf("status %d while the first two tokens are refused, want 401", code)
		}
	})
	if n := f.stats().Logins; n != 2 {
		t.Errorf("Stats().Logins = %d, want 2: the first and one for 50 refusals", n)
	}
	f.clk.Advance(time.Second)
	if code := post(); code != http.StatusOK || f.stats().Logins != 3 {
		t.Errorf("a second later: status %d with %d logins, want 200 after one more login", code, f.stats().Logins)
	}
}

// TestRefusalSpacingStartsAgain: the 401 spacing doubles only for fresh
// tokens refused in turn; the refusal of a token that served for a while
// (as Invalidate reports one, with no retry to say the token before was
// accepted) starts it again from a second.
func TestRefusalSpacingStartsAgain(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, nil)
	// refuse reports the current token refused, as Invalidate does, and
	// takes its replacement at once, as the next caller would.
	refuse := func(step string, want bool) {
		t.Helper()
		if got := s.refused(mustToken(t, s)); got != want {
			t.Fatalf("%s: refused() = %t, want %t", step, got, want)
		}
		mustToken(t, s)
	}
	refuse("first refusal", true)
	f.clk.Advance(time.Second)
	refuse("a fresh token refused a second later", true) // the spacing doubles: 2 s
	f.clk.Advance(time.Second)
	refuse("a second later, inside the 2 s", false)
	f.clk.Advance(time.Minute)
	refuse("a token that served a minute", true) // the spacing starts again: 1 s
	f.clk.Advance(time.Second)
	refuse("its replacement, a second later", true)
	if n := f.stats().Logins; n != 5 {
		t.Errorf("Stats().Logins = %d, want 5", n)
	}
}

// TestRefusedAfterAdoption: a key rotation just after a peer renewed: the
// source's 401 on T adopts the peer's newer T' from the store, which the
// server refuses too; that refusal is not held back by the spacing of
// 401-driven logins, since adopting T' made no login: the source logs in
// at once instead of answering 401s for a second.
func TestRefusedAfterAdoption(t *testing.T) {
	f := newFixture(t)
	f.withStore(t)
	peer, late := f.source(t, nil), f.source(t, nil)
	peer.draw = 0.99 // it renews first
	old := mustToken(t, peer)
	settled(t, peer)
	held := mustToken(t, late)
	if held.raw() != old.raw() {
		t.Fatal("the late source did not start from the peer's token")
	}
	f.clk.Advance(old.timing.Expiry.Add(-260 * time.Second).Sub(f.clk.Wall())) // the peer is due, the late source not yet
	mustToken(t, peer)
	settled(t, peer)
	f.srv.RotateKey()
	if !late.refused(held) {
		t.Fatal("refused(T) = false on the first 401")
	}
	adopted := mustToken(t, late)
	if adopted.raw() == old.raw() || f.stats().Logins != 1 {
		t.Fatalf("after the 401: %+v, adopted %t, late %+v; want the peer's renewed token, no login", f.stats(), adopted.raw() != old.raw(), late.status())
	}
	if !late.refused(adopted) {
		t.Error("refused(T') = false: the refusal of an adopted token was held back by the 401 spacing")
	}
	fresh := mustToken(t, late)
	if _, err := f.srv.VerifyToken(fresh.raw()); err != nil {
		t.Errorf("the token after the second refusal is refused: %v", err)
	}
	if n := f.stats().Logins; n != 2 {
		t.Errorf("Stats().Logins = %d, want 2", n)
	}
}

// TestStatusCountsOnlyCallsMade: a renewal that had no time left to be
// sent (a slow store took the token's usable life) is not counted: the
// source logs in, and counts that.
func TestStatusCountsOnlyCallsMade(t *testing.T) {
	f := newFixture(t)
	s := f.source(t, nil)
	tok := mustToken(t, s)
	o := s.ask(plan{state: policy.Due, old: tok})
	if o.err != nil || o.calls.renewals != 1 {
		t.Fatalf("ask(due) = %+v, want one renewal", o.calls)
	}
	f.clk.Advance(tok.timing.UnusableAt().Sub(f.clk.Wall()))
	o = s.ask(plan{state: policy.Due, old: tok})
	if o.calls.renewals != 0 || o.calls.logins != 1 {
		t.Errorf("ask(due, no usable life left) counts %+v, want no renewal and one login", o.calls)
	}
	if st := f.stats(); st.Renewals != 1 || st.Logins != 2 {
		t.Errorf("server Stats = %+v, want 1 renewal and 2 logins, as counted", st)
	}
}

// TestRequestAfterAdoptedRefusal: the same through a Transport: the
// request refused with T, then with the peer's T' taken from the store,
// is retried once more with the token a login brings, and answers 200.
func TestRequestAfterAdoptedRefusal(t *testing.T) {
	f := newFixture(t)
	f.withStore(t)
	f.srv.Handle("GET /api/v1/ok", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	peer, late := f.source(t, nil), f.source(t, nil)
	peer.draw = 0.99
	old := mustToken(t, peer)
	settled(t, peer)
	mustToken(t, late)
	f.clk.Advance(old.timing.Expiry.Add(-260 * time.Second).Sub(f.clk.Wall()))
	mustToken(t, peer)
	settled(t, peer)
	f.srv.RotateKey()
	hc := &http.Client{Transport: &Transport{Source: late, Base: f.srv.Client().Transport}}
	resp, err := hc.Get(f.srv.URL + "/api/v1/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || f.stats().Logins != 2 || f.stats().APICalls != 3 {
		t.Errorf("status %d with %+v, want 200 after 2 refusals and one login", resp.StatusCode, f.stats())
	}
}

// TestRefusedTokenDroppedWhenLoginFails: a token reported refused
// (Invalidate, a 401) is dropped even when the login after it fails: the
// caller gets the login's error, never the refused token back; without a
// password the token is kept, being the only one.
func TestRefusedTokenDroppedWhenLoginFails(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault econnecttest.Fault
		want  func(error) bool
	}{
		{"wrong password now", econnecttest.Fault{Status: http.StatusBadRequest}, func(err error) bool { return errors.Is(err, ErrBadCredentials) }},
		{"server failing", econnecttest.Fault{Status: http.StatusServiceUnavailable}, func(err error) bool { return wire.Transient(err) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.source(t, nil)
			tok := mustToken(t, s)
			f.srv.FailLogin(1, tt.fault)
			Invalidate(s, tok.oauth2Token())
			got, err := s.current(context.Background(), failFast)
			if got != nil || !tt.want(err) {
				t.Errorf("current() = %v, %v; want no token and the login's error", got != nil, err)
			}
		})
	}
	t.Run("no password", func(t *testing.T) {
		f := newFixture(t)
		saved := mustToken(t, f.source(t, nil)).oauth2Token()
		f.cfg.Password = ""
		s := f.source(t, saved)
		f.srv.FailRenew(1, econnecttest.Fault{Status: http.StatusServiceUnavailable})
		Invalidate(s, saved)
		if got, err := s.current(context.Background(), failFast); err != nil || got.raw() != saved.AccessToken {
			t.Errorf("current() = %v, %v; want the only token kept", got, err)
		}
	})
}

// blockingHandler is a slog handler whose Handle waits for release.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
	lines   atomic.Int32
}

func (h *blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *blockingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *blockingHandler) WithGroup(string) slog.Handler            { return h }
func (h *blockingHandler) Handle(context.Context, slog.Record) error {
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-h.release
	h.lines.Add(1)
	return nil
}

// TestFlushWaitsForTheLog: the warning of a failed login is written after
// the caller has its error (a slow logger stalls no caller), and Flush
// waits for it, so that a program exiting then loses no warning.
func TestFlushWaitsForTheLog(t *testing.T) {
	f := newFixture(t)
	h := &blockingHandler{entered: make(chan struct{}, 1), release: make(chan struct{})}
	f.cfg.Logger = slog.New(h)
	f.srv.FailLogin(1, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	s := f.source(t, nil)
	if _, err := s.current(context.Background(), failFast); err == nil {
		t.Fatal("current() error = nil, want the 503")
	}
	testkit.Await(t, h.entered, "the warning")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Flush(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush() while the warning is being written: error = %v, want context.Canceled", err)
	}
	close(h.release)
	if err := Flush(context.Background(), s); err != nil || h.lines.Load() != 1 {
		t.Errorf("Flush() = %v with %d lines written, want nil and the warning", err, h.lines.Load())
	}
}

// TestTransientBackoffScalesWithLifetime: while logins fail for a passing
// reason, the backoff is capped at a quarter of the usable lifetime of the
// last token held (at least 1 s): with 5 s tokens, an attempt a second,
// about four per lifetime, instead of doubling to 30 s.
func TestTransientBackoffScalesWithLifetime(t *testing.T) {
	f := newFixture(t)
	f.srv.SetLifetime(5 * time.Second) // usable 4 s
	s := f.source(t, nil)
	mustToken(t, s)
	f.srv.FailLogin(1000, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	f.srv.FailRenew(1000, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	f.clk.Advance(5 * time.Second) // expired
	before := f.stats().Logins
	for i := range 6 {
		if _, err := s.current(context.Background(), failFast); err == nil {
			t.Fatalf("attempt %d: error = nil, want the 503", i)
		}
		f.clk.Advance(time.Second)
	}
	if n := f.stats().Logins - before; n != 6 {
		t.Errorf("%d logins in 6 s of failures with 4 s tokens, want 6: one a second", n)
	}
}
