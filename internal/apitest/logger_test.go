package apitest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/testkit"
	"golang.org/x/oauth2"
)

// hookHandler is a slog.Handler that calls onWarn for each record at
// warning level or above, and ignores the rest.
type hookHandler struct {
	onWarn func()
}

func (h *hookHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *hookHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *hookHandler) WithGroup(string) slog.Handler            { return h }

func (h *hookHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.onWarn()
	}
	return nil
}

// TestLoggerCallsBackIntoSource: a slog handler that asks the same token
// source for a token while it reports a failed login (as a handler that
// ships its records with the same client does) gets the backoff's error
// instead of a deadlock.
func TestLoggerCallsBackIntoSource(t *testing.T) {
	f := newFixture(t)
	f.cfg.Password = "wrong" // refused: Token waits out no backoff after it
	var ts oauth2.TokenSource
	inner := make(chan error, 1)
	var once sync.Once
	f.cfg.Logger = slog.New(&hookHandler{onWarn: func() {
		once.Do(func() {
			_, err := ts.Token()
			inner <- err
		})
	}})
	ts = f.cfg.TokenSource(f.ctx)
	outer := make(chan error, 1)
	go func() {
		_, err := ts.Token()
		outer <- err
	}()
	wantBadCredentials(t, "Token()", testkit.Await(t, outer, "Token() while the logger calls back"))
	wantBadCredentials(t, "Token() inside the logger", testkit.Await(t, inner, "Token() inside the logger"))
	if n := f.logins(); n != 1 {
		t.Errorf("server saw %d logins, want 1: the logger's call falls in the backoff", n)
	}
}

// TestSlowLoggerStallsNoCaller: while a slog handler blocks in reporting a
// failed login, other callers get the backoff's error at once.
func TestSlowLoggerStallsNoCaller(t *testing.T) {
	f := newFixture(t)
	f.cfg.Password = "wrong" // refused: Token waits out no backoff after it
	entered, release, exited := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.cfg.Logger = slog.New(&hookHandler{onWarn: func() {
		once.Do(func() {
			close(entered)
			<-release
			close(exited)
		})
	}})
	ts := f.cfg.TokenSource(f.ctx)
	first := make(chan error, 1)
	go func() {
		_, err := ts.Token()
		first <- err
	}()
	testkit.Await(t, entered, "the logger's warning")
	wantBadCredentials(t, "first Token()", testkit.Await(t, first, "the first Token() while the logger blocks"))
	errs := make(chan []error, 1)
	go func() {
		var got []error
		for range 10 {
			_, err := ts.Token()
			got = append(got, err)
		}
		errs <- got
	}()
	got := testkit.Await(t, errs, "Token() while the logger blocks")
	close(release)
	testkit.Await(t, exited, "the logger's return")
	for i, err := range got {
		wantBadCredentials(t, fmt.Sprintf("Token() call %d", i), err)
	}
	if n := f.logins(); n != 1 {
		t.Errorf("server saw %d logins, want 1: the other calls fall in the backoff", n)
	}
}

// TestLogsHoldNoSecrets runs sources through failures whose answers echo
// the password and the token, with text and JSON handlers at debug level:
// neither shows in the logs, which hold one warning per failure streak.
func TestLogsHoldNoSecrets(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var out bytes.Buffer
	text := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})
	js := slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})
	warned := make(chan struct{}, 10)
	f.cfg.Logger = slog.New(&teeHandler{mu: &mu, hs: []slog.Handler{text, js}, warned: warned})
	tok := f.token(t)
	echo := func(s string) string { return "you sent " + s }

	// A renewal answered 500 while the token is usable: kept, one warning.
	f.srv.FailRenew(1, econnecttest.Fault{Status: 500, Body: echo(tok.AccessToken)})
	if _, err := f.cfg.TokenSourceFrom(f.ctx, due(tok)).Token(); err != nil {
		t.Fatalf("TokenSourceFrom().Token() error = %v, want the saved token", err)
	}
	testkit.Await(t, warned, "the warning of the failed renewal")

	// A login refused 400: one warning.
	f.srv.FailLogin(1, econnecttest.Fault{Status: 400, Body: echo(testPassword)})
	if _, err := f.cfg.TokenSource(f.ctx).Token(); err == nil {
		t.Fatal("Token() error = nil, want the 400")
	}
	testkit.Await(t, warned, "the warning of the refused login")

	// A renewal refused 401, then a login answered 503: one warning.
	f.srv.FailRenew(1, econnecttest.Fault{Status: 401, Body: echo(tok.AccessToken)})
	f.srv.FailLogin(1, econnecttest.Fault{Status: 503, Body: echo(testPassword)})
	if _, err := f.cfg.TokenSourceFrom(f.ctx, due(tok)).Token(); err != nil {
		t.Fatalf("TokenSourceFrom().Token() error = %v, want the saved token", err)
	}
	testkit.Await(t, warned, "the warning of the failed login")

	mu.Lock()
	logs := out.String()
	mu.Unlock()
	checkNoSecret(t, "the logs", logs, []string{testPassword, tok.AccessToken})
	if n := strings.Count(logs, "level=WARN"); n != 3 {
		t.Errorf("text handler logged %d warnings, want 3 (one per streak):\n%s", n, logs)
	}
	if n := strings.Count(logs, `"level":"WARN"`); n != 3 {
		t.Errorf("JSON handler logged %d warnings, want 3 (one per streak):\n%s", n, logs)
	}
}

// due returns a copy of tok that expires in 3 minutes: with its hour-long
// lifetime, a renewal is due at once, and it stays usable meanwhile.
func due(tok *oauth2.Token) *oauth2.Token {
	c := *tok
	c.Expiry = time.Now().Add(3 * time.Minute)
	return &c
}

// teeHandler writes each record to every handler in hs, under mu, and
// signals warned for each warning.
type teeHandler struct {
	mu     *sync.Mutex
	hs     []slog.Handler
	warned chan<- struct{}
}

func (h *teeHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *teeHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *teeHandler) WithGroup(string) slog.Handler            { return h }

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	for _, inner := range h.hs {
		inner.Handle(ctx, r.Clone())
	}
	h.mu.Unlock()
	if r.Level >= slog.LevelWarn {
		h.warned <- struct{}{}
	}
	return nil
}

// wantBadCredentials fails the test unless err says the login was refused.
func wantBadCredentials(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, econnect.ErrBadCredentials) {
		t.Errorf("%s error = %v, want ErrBadCredentials", what, err)
	}
}
