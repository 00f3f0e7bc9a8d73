package apitest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/testkit"
	"golang.org/x/oauth2"
)

// TestInvalidate: Invalidate is the 401 path for refusals seen elsewhere:
// 100 concurrent reports of one refused token cause one login, a token
// that is no longer the source's changes nothing, and only sources of this
// package are told.
func TestInvalidate(t *testing.T) {
	f := newFixture(t)
	ts := f.cfg.TokenSource(f.ctx)
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	f.srv.RotateKey()
	testkit.Parallel(100, func(int) {
		if !econnect.Invalidate(ts, tok) {
			t.Error("Invalidate(a source of this package) = false")
		}
	})
	next, err := econnect.TokenContext(context.Background(), ts)
	if err != nil || next.AccessToken == tok.AccessToken {
		t.Fatalf("TokenContext() after Invalidate = %v, %v; want a new token", next, err)
	}
	if _, err := f.srv.VerifyToken(next.AccessToken); err != nil {
		t.Errorf("the new token is refused: %v", err)
	}
	econnect.Invalidate(ts, tok) // the old one again: no longer the source's
	if _, err := econnect.TokenContext(context.Background(), ts); err != nil {
		t.Fatal(err)
	}
	if n := f.logins(); n != 2 {
		t.Errorf("server saw %d logins, want 2: the first and one for 100 reports", n)
	}
	if econnect.Invalidate(oauth2.StaticTokenSource(tok), tok) {
		t.Error("Invalidate(a static source) = true, want false")
	}
	if !econnect.Invalidate(ts, nil) {
		t.Error("Invalidate(ts, nil) = false, want true: ts is one of this package's")
	}
}

// TestInvalidateSpaced: reports of fresh tokens refused in turn cause at
// most one login a second, however many come.
func TestInvalidateSpaced(t *testing.T) {
	f := newFixture(t)
	ts := f.cfg.TokenSource(f.ctx)
	for range 50 {
		tok, err := econnect.TokenContext(context.Background(), ts)
		if err != nil {
			t.Fatal(err)
		}
		econnect.Invalidate(ts, tok)
	}
	if n := f.logins(); n > 2 {
		t.Errorf("server saw %d logins for 50 quick reports, want at most 2 (the first, then one a second)", n)
	}
}

// TestTokenContextOtherSource: for a source of another package,
// TokenContext is its Token.
func TestTokenContextOtherSource(t *testing.T) {
	want := &oauth2.Token{AccessToken: "static"}
	got, err := econnect.TokenContext(context.Background(), oauth2.StaticTokenSource(want))
	if err != nil || got != want {
		t.Errorf("TokenContext(static) = %v, %v; want the static token", got, err)
	}
}

// TestStatusOf: the snapshot says where a source stands, counts its calls,
// carries the failure streak's error, and holds no secret.
func TestStatusOf(t *testing.T) {
	f := newFixture(t)
	hc := f.cfg.Client(f.ctx)
	src := hc.Transport.(*econnect.Transport).Source
	if st, ok := econnect.StatusOf(src); !ok || st.State != "none" || st.Logins != 0 {
		t.Errorf("StatusOf(a new Client's source) = %+v, %t; want none, no login", st, ok)
	}
	if code, _ := get(t, hc, f.srv.URL+"/api/v1/whoami"); code != http.StatusOK {
		t.Fatalf("GET status %d", code)
	}
	st, _ := econnect.StatusOf(src)
	if st.State != "fresh" || st.Logins != 1 || st.Expiry.IsZero() || !st.RenewAt.Before(st.Expiry) || st.Error != "" {
		t.Errorf("StatusOf() after a login = %+v, want fresh, 1 login, an expiry after the renewal point, no error", st)
	}
	if _, ok := econnect.StatusOf(oauth2.StaticTokenSource(nil)); ok {
		t.Error("StatusOf(a static source) ok = true, want false")
	}
	if _, ok := econnect.StatusOf(f.cfg.TokenSource(f.ctx)); !ok {
		t.Error("StatusOf(TokenSource()) ok = false, want true")
	}

	bad := f.cfg
	bad.Password = "wrong-SENTINEL"
	ts := bad.TokenSource(f.ctx)
	if _, err := ts.Token(); !errors.Is(err, econnect.ErrBadCredentials) {
		t.Fatalf("Token() error = %v", err)
	}
	st, _ = econnect.StatusOf(ts)
	if st.State != "none" || st.Logins != 1 || st.Failures != 1 || !strings.Contains(st.Error, "wrong username or password") {
		t.Errorf("StatusOf() after a refused login = %+v, want the failure counted and its error", st)
	}
	if strings.Contains(st.Error, "SENTINEL") {
		t.Errorf("StatusOf().Error holds the password: %q", st.Error)
	}
}

// TestPasswordNotUTF8: a password that is not valid UTF-8 would reach the
// server altered (JSON replaces the bytes), a certain refusal counting
// toward the lockout: it is refused before sending, with an error that
// says so without quoting it, and no caller waits for it.
func TestPasswordNotUTF8(t *testing.T) {
	f := newFixture(t)
	f.cfg.Password = "P\xe4SENTw\xf6rd"
	for name, get := range map[string]func() error{
		"Token":             func() error { _, err := f.cfg.Token(f.ctx); return err },
		"TokenSource.Token": func() error { _, err := f.cfg.TokenSource(f.ctx).Token(); return err },
		"Client": func() error {
			_, err := getWithin(f.cfg.Client(f.ctx), f.srv.URL+"/api/v1/whoami", 10*time.Second)
			return err
		},
	} {
		err := get()
		if err == nil || !strings.Contains(err.Error(), "UTF-8") || strings.Contains(err.Error(), "SENT") {
			t.Errorf("%s: error = %v, want a refusal naming UTF-8 and not the password", name, err)
		}
	}
	if n := f.logins(); n != 0 {
		t.Errorf("server saw %d logins, want 0", n)
	}
}

// TestPasswordInUnparsableBaseURL: a BaseURL that cannot be parsed and
// holds a password reaches no error, nor the Logger, through any path.
func TestPasswordInUnparsableBaseURL(t *testing.T) {
	const secret = "Pa55SENTINEL"
	var logs strings.Builder
	cfg := econnect.Config{BaseURL: "https://svc:" + secret + "/w0rd@host", Username: testUser, Password: testPassword,
		Logger: newTextLogger(&logs)}
	ctx := context.Background()
	var errs []error
	_, err := cfg.Token(ctx)
	errs = append(errs, err)
	_, err = cfg.TokenSource(ctx).Token()
	errs = append(errs, err)
	_, err = econnect.TokenContext(ctx, cfg.TokenSource(ctx))
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("error %d = %v, want an error without the password in the URL", i, err)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the Logger saw the password in the URL:\n%s", logs.String())
	}
}

// newTextLogger is a logger of every level writing text to w.
func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
