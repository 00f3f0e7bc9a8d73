package apitest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/testkit"
	"golang.org/x/oauth2"
)

// TestColdStartThroughTokenSource: 64 concurrent callers of TokenSource's
// Token at a cold start cause exactly one login, and all get its token.
func TestColdStartThroughTokenSource(t *testing.T) {
	f := newFixture(t)
	f.holdLogins(1)
	ts := f.cfg.TokenSource(f.ctx)
	var got [64]string
	testkit.Parallel(64, func(i int) {
		tok, err := ts.Token()
		if err != nil {
			t.Errorf("caller %d: Token() error = %v", i, err)
			return
		}
		got[i] = tok.AccessToken
	})
	if n := f.logins(); n != 1 {
		t.Errorf("server saw %d logins, want 1", n)
	}
	for i := range got {
		if got[i] == "" || got[i] != got[0] {
			t.Fatalf("caller %d got a different or no token", i)
		}
	}
}

// TestCancelSource: the context given to TokenSource bounds its auth calls:
// cancelled before use, no call is made; cancelled during a login, Token
// fails with context.Canceled. A request that stops waiting does not cancel
// the login for the others.
func TestCancelSource(t *testing.T) {
	t.Run("cancelled before use", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		if _, err := f.cfg.TokenSource(ctx).Token(); !errors.Is(err, context.Canceled) || f.logins() != 0 {
			t.Errorf("Token() = %v after %d logins, want context.Canceled and no login", err, f.logins())
		}
	})
	t.Run("cancelled during a login", func(t *testing.T) {
		f := newFixture(t)
		ctx, cancel := context.WithCancel(f.ctx)
		f.srv.FailLogin(1, econnecttest.Fault{Hang: true})
		go func() {
			f.awaitLogins(t, 1)
			cancel()
		}()
		if _, err := f.cfg.TokenSource(ctx).Token(); !errors.Is(err, context.Canceled) {
			t.Errorf("Token() error = %v, want context.Canceled", err)
		}
	})
	t.Run("a request gives up, the login goes on", func(t *testing.T) {
		f := newFixture(t)
		release := make(chan struct{})
		f.srv.FailLogin(1, econnecttest.Fault{Wait: release})
		hc := f.cfg.Client(f.ctx)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			f.awaitLogins(t, 1)
			cancel()
		}()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/api/v1/whoami", nil)
		if _, err := hc.Do(req); !errors.Is(err, context.Canceled) {
			t.Errorf("Do() error = %v, want context.Canceled", err)
		}
		close(release)
		if code, tok := get(t, hc, f.srv.URL+"/api/v1/whoami"); code != 200 || tok == "" || f.logins() != 1 {
			t.Errorf("next request: %d with token %t after %d logins, want 200 with the one shared login's token", code, tok != "", f.logins())
		}
	})
}

// TestNewClientKeepsRenewalPoint: oauth2.NewClient over TokenSourceFrom uses
// the source's renewal point, not oauth2's 10 s before expiry: a request
// with 3 minutes of a 1-hour token left renews it. The server's clock is
// set back so that its token has those 3 minutes left now.
func TestNewClientKeepsRenewalPoint(t *testing.T) {
	f := newFixture(t)
	f.srv.SetClockOffset(-57 * time.Minute)
	tok := f.token(t)
	f.srv.SetClockOffset(0)
	saved, err := econnect.ParseToken(tok.AccessToken) // Expiry: exp as it is, 3 minutes away
	if err != nil {
		t.Fatalf("ParseToken() error = %v", err)
	}
	ts := f.cfg.TokenSourceFrom(f.ctx, saved)
	if oauth2.ReuseTokenSource(nil, ts) != ts {
		t.Fatal("oauth2.ReuseTokenSource(nil, TokenSourceFrom) wraps it again; want it used as it is")
	}
	hc := oauth2.NewClient(f.ctx, ts)
	if code, _ := get(t, hc, f.srv.URL+"/api/v1/whoami"); code != 200 {
		t.Fatalf("GET status %d, want 200", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
	defer cancel()
	f.srv.WaitFor(ctx, func(st econnecttest.Stats) bool { return st.Renewals > 0 })
	if st := f.srv.Stats(); st.Renewals != 1 {
		t.Errorf("Stats().Renewals = %d, want 1: the renewal point was not kept", st.Renewals)
	}
}
