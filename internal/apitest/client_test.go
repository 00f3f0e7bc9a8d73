package apitest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/testkit"
	"golang.org/x/oauth2"
)

// TestPublicTokenSource: Config.TokenSource is oauth2's own cache, which
// oauth2 does not wrap again, and hands every caller the cached token.
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
	if a != b || f.logins() != 1 {
		t.Errorf("TokenSource() did not cache: same pointer %t, %d logins", a == b, f.logins())
	}
}

// TestColdStartThroughNewClient: 64 concurrent requests through
// oauth2.NewClient over Config.TokenSource, sent while the login is held,
// cause one login and all carry its token.
func TestColdStartThroughNewClient(t *testing.T) {
	f := newFixture(t)
	f.holdLogins(1)
	hc := oauth2.NewClient(f.ctx, f.cfg.TokenSource(f.ctx))
	var got [64]string
	testkit.Parallel(64, func(i int) {
		_, got[i] = get(t, hc, f.srv.URL+"/api/v1/whoami")
	})
	if n := f.logins(); n != 1 {
		t.Errorf("server saw %d logins, want 1", n)
	}
	for i := range got {
		if got[i] == "" || got[i] != got[0] {
			t.Fatalf("request %d carried a different or no token", i)
		}
	}
}

// onceReader is a body that cannot be replayed.
type onceReader struct{ io.Reader }

// TestClient401 covers the 401s that go back to the caller: a body that
// cannot be replayed, a second 401, and a 403, which is never retried.
func TestClient401(t *testing.T) {
	t.Run("body cannot be replayed", func(t *testing.T) {
		f := newFixture(t)
		hc := f.cfg.Client(f.ctx)
		post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader("warm up"))
		f.srv.RotateKey()
		if code, _ := post(t, hc, f.srv.URL+"/api/v1/echo", onceReader{strings.NewReader("once")}); code != 401 {
			t.Errorf("POST with a one-shot body: status %d, want the 401 back", code)
		}
		if code, got := post(t, hc, f.srv.URL+"/api/v1/echo", onceReader{strings.NewReader("next")}); code != 200 || got != "next" {
			t.Errorf("next POST: status %d body %q, want 200 with a fresh token", code, got)
		}
		if st := f.srv.Stats(); st.Logins != 2 || st.APICalls != 3 {
			t.Errorf("Stats = %+v, want 2 logins and 3 API calls", st)
		}
	})
	t.Run("second 401 goes back", func(t *testing.T) {
		f := newFixture(t)
		hc := f.cfg.Client(f.ctx)
		var calls atomic.Int32
		f.srv.Handle("/api/v1/always401", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
		}))
		code, _ := post(t, hc, f.srv.URL+"/api/v1/always401", strings.NewReader("x"))
		if code != 401 || calls.Load() != 2 || f.logins() != 2 {
			t.Errorf("status %d after %d calls and %d logins, want 401 after 2 calls and 2 logins", code, calls.Load(), f.logins())
		}
	})
	t.Run("403 is not retried", func(t *testing.T) {
		f := newFixture(t)
		f.srv.AddUser("viewer", "pw", "Read All Identity")
		f.cfg.Username, f.cfg.Password = "viewer", "pw"
		hc := f.cfg.Client(f.ctx)
		body := `{"expanded":"aGk=","detectorName":"d","ianaTimeZone":"UTC","detectTimeUtc":"2026-01-01T00:00:00Z"}`
		if code, _ := post(t, hc, f.srv.URL+"/api/v1/faceEdge/publish", strings.NewReader(body)); code != 403 {
			t.Errorf("publish without the permission: status %d, want 403", code)
		}
		if st := f.srv.Stats(); st.Logins != 1 || st.APICalls != 1 {
			t.Errorf("Stats = %+v, want 1 login and 1 API call", st)
		}
	})
}

// TestTokenOnly401: without a password, a 401 on a saved token leads to one
// renewal and a retry, never a login, and the token is not dropped: later
// requests still work.
func TestTokenOnly401(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t)
	var calls atomic.Int32
	f.srv.Handle("GET /api/v1/refusesOnce", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	cfg := econnect.Config{BaseURL: f.srv.URL, Username: testUser}
	hc := &http.Client{Transport: &econnect.Transport{Source: cfg.TokenSourceFrom(f.ctx, tok), Base: f.srv.Client().Transport}}
	for i := range 4 {
		if code, _ := get(t, hc, f.srv.URL+"/api/v1/refusesOnce"); code != 200 {
			t.Errorf("request %d: status %d, want 200", i, code)
		}
	}
	if st := f.srv.Stats(); st.Logins != 1 || st.Renewals != 1 || calls.Load() != 5 {
		t.Errorf("Stats = %+v after %d calls, want the 1 login of the setup, 1 renewal, and 5 calls (one retry)", st, calls.Load())
	}
}

// TestSpurious401s: 401-driven logins stay at one a second per source,
// whatever the pattern of 401s, while a key rotation still heals with one
// login.
func TestSpurious401s(t *testing.T) {
	t.Run("one request in five refused", func(t *testing.T) {
		f := newFixture(t)
		var calls atomic.Int32
		f.srv.Handle("GET /api/v1/flaky", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1)%5 == 0 {
				w.WriteHeader(http.StatusUnauthorized)
			}
		}))
		hc := f.cfg.Client(f.ctx)
		start := time.Now()
		for range 500 {
			get(t, hc, f.srv.URL+"/api/v1/flaky")
		}
		elapsed := time.Since(start)
		logins := f.logins()
		if limit := 1 + int(math.Ceil(elapsed.Seconds())); logins > limit {
			t.Errorf("500 requests in %v caused %d logins, want at most %d (one a second, and the first)", elapsed, logins, limit)
		}
		if got, want := int(calls.Load()), 500+logins-1; got != want {
			t.Errorf("endpoint saw %d calls, want %d: 500 and a retry per 401-driven login", got, want)
		}
	})
	t.Run("a key rotation heals with one login", func(t *testing.T) {
		f := newFixture(t)
		hc := f.cfg.Client(f.ctx)
		if code, _ := post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader("warm up")); code != 200 {
			t.Fatalf("first POST status = %d, want 200", code)
		}
		f.srv.RotateKey()
		testkit.Parallel(100, func(i int) {
			want := fmt.Sprintf("face %d %s", i, strings.Repeat("x", i*100))
			code, got := post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader(want))
			if code != 200 || got != want {
				t.Errorf("POST %d: status %d, body intact %t (%d of %d bytes); want 200 and the body back", i, code, got == want, len(got), len(want))
			}
		})
		if n := f.logins(); n != 2 {
			t.Errorf("server saw %d logins, want 2 (one extra for 100 refusals)", n)
		}
	})
}

// TestPatientRequest: after a failed login, a request whose deadline comes
// before the backoff's end fails at once with the login's error, and one
// whose context allows it waits for the backoff's end (about a second) and
// gets the next login's token.
func TestPatientRequest(t *testing.T) {
	f := newFixture(t)
	hc := f.cfg.Client(f.ctx)
	url := f.srv.URL + "/api/v1/whoami"
	f.srv.FailLogin(1, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	_, err := getWithin(hc, url, 100*time.Millisecond)
	want503(t, "first request, 100 ms deadline", err)
	_, err = getWithin(hc, url, 100*time.Millisecond)
	want503(t, "request with a 100 ms deadline during the backoff", err)
	if errors.Is(err, context.DeadlineExceeded) || f.logins() != 1 {
		t.Errorf("request with a 100 ms deadline: error = %v after %d logins, want the login's error at once, and 1", err, f.logins())
	}
	if code, err := getWithin(hc, url, 10*time.Second); err != nil || code != 200 {
		t.Errorf("request with a 10 s deadline: status %d, error = %v; want 200 after the backoff", code, err)
	}
	if n := f.logins(); n != 2 {
		t.Errorf("server saw %d logins, want 2: one at the end of the backoff", n)
	}
}

// TestRefusalWithBodyHeldOpen: a 401 whose body the server never finishes
// does not stall the retry: the refused answer is closed, not drained, and
// the retry with the new token answers, on HTTP/1.1 and HTTP/2.
func TestRefusalWithBodyHeldOpen(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("HTTP/2 %t", h2), func(t *testing.T) {
			srv := econnecttest.NewUnstartedServer()
			srv.EnableHTTP2 = h2
			srv.StartTLS()
			t.Cleanup(srv.Close)
			srv.AddUser(testUser, testPassword)
			var first atomic.Bool
			srv.Handle("GET /api/v1/slow401", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if first.CompareAndSwap(false, true) {
					w.WriteHeader(http.StatusUnauthorized)
					io.WriteString(w, "refused, and more to come")
					http.NewResponseController(w).Flush()
					<-r.Context().Done() // the body never ends
					return
				}
				io.WriteString(w, "ok")
			}))
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())
			cfg := econnect.Config{BaseURL: srv.URL, Username: testUser, Password: testPassword}
			code, err := getWithin(cfg.Client(ctx), srv.URL+"/api/v1/slow401", 10*time.Second)
			if err != nil || code != http.StatusOK {
				t.Errorf("GET after a 401 with its body held open: %d, %v; want 200 from the retry", code, err)
			}
			if n := srv.Stats().Logins; n != 2 {
				t.Errorf("server saw %d logins, want 2", n)
			}
		})
	}
}
