package bench

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

// BenchmarkSlowRenewal: the slowest of the requests that 8 goroutines send
// through a client while a renewal takes 400 ms to answer, against the same
// load with no renewal. A renewal runs in the background while the token is
// still usable, so no request should wait for it. It reports max-ms, the
// slowest request over all rounds.
func BenchmarkSlowRenewal(b *testing.B) {
	b.Run("impl=norenewal", func(b *testing.B) { slowest(b, false) })
	b.Run("impl=econnect", func(b *testing.B) { slowest(b, true) })
}

func slowest(b *testing.B, renewal bool) {
	var worst time.Duration
	for b.Loop() {
		worst = max(worst, slowRound(b, renewal))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
	hideTimePerOp(b)
}

// slowRound runs one round: a new server and client, then 8 goroutines
// sending requests for at least 500 ms, and until the renewal, if any, has
// ended. It returns the slowest request's time.
func slowRound(b *testing.B, renewal bool) time.Duration {
	b.Helper()
	srv, cfg, ctx := loopbackServer(b)
	defer srv.Close()
	srv.FailRenew(1, econnecttest.Fault{Delay: 400 * time.Millisecond})
	if renewal {
		// Its tokens expire 2 minutes from now by the local clock:
		// inside the renewal window, far from the end of their use.
		srv.SetClockOffset(-58 * time.Minute)
	}
	ts, raw := dueSource(b, cfg, ctx)
	warm(b, srv, raw, 8)
	hc := &http.Client{Transport: &econnect.Transport{Source: ts, Base: srv.Client().Transport}}
	done := func() bool {
		t, err := ts.Token()
		return err == nil && (!renewal || time.Until(t.Expiry) > 30*time.Minute)
	}
	worst := load(b, hc, srv.URL+"/api/v1/ping", 8, 500*time.Millisecond, done)
	if st, want := srv.Stats(), map[bool]int{false: 0, true: 1}[renewal]; st.Renewals != want || st.Logins != 1 {
		b.Fatalf("Stats = %+v, want 1 login and %d renewals", st, want)
	}
	return worst
}

// dueSource logs in once and returns a source started from that token as
// its exp says (what econnect.ParseToken reads), and the raw token.
func dueSource(b *testing.B, cfg *econnect.Config, ctx context.Context) (oauth2.TokenSource, string) {
	b.Helper()
	tok, err := cfg.Token(ctx)
	if err != nil {
		b.Fatal(err)
	}
	saved, err := econnect.ParseToken(tok.AccessToken)
	if err != nil {
		b.Fatal(err)
	}
	return cfg.TokenSourceFrom(ctx, saved), tok.AccessToken
}

// warm opens n connections to srv with the raw token set by hand, so that
// the measured requests do not pay for dialling.
func warm(b *testing.B, srv *econnecttest.Server, raw string, n int) {
	b.Helper()
	hc := &http.Client{Transport: withHeader{bearer: "Bearer " + raw, base: srv.Client().Transport}}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/ping", nil)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := send(hc, req); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}

// load sends GETs to url through hc from n goroutines until at least d has
// passed and done reports true, and returns the slowest request's time.
func load(b *testing.B, hc *http.Client, url string, n int, d time.Duration, done func() bool) time.Duration {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	var stop atomic.Bool
	var mu sync.Mutex
	var worst time.Duration
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for !stop.Load() {
				start := time.Now()
				if err := send(hc, req); err != nil {
					b.Error(err)
					return
				}
				took := time.Since(start)
				mu.Lock()
				worst = max(worst, took)
				mu.Unlock()
			}
		})
	}
	deadline, giveUp := time.Now().Add(d), time.Now().Add(d+10*time.Second)
	for time.Now().Before(deadline) || !done() && time.Now().Before(giveUp) {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if !done() {
		b.Fatal("the renewal did not end within 10 s")
	}
	return worst
}
