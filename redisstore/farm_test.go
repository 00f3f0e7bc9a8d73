package redisstore

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
)

// The tests of this file run farms of token sources on a real redis-server,
// each source with its own Config and Redis client, as the processes of a
// farm logging in as one account would be.

func TestTwentySourcesStartedTogetherLogInOnce(t *testing.T) {
	f := newFarm(t, 20, leased, sharedRedis(t).addr)
	start := make(chan struct{})
	tokens := make([]string, len(f.members))
	var wg sync.WaitGroup
	for i, m := range f.members {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
			defer cancel()
			tok, err := econnect.TokenContext(ctx, m.ts)
			if err != nil {
				t.Errorf("TokenContext() of source %d error = %v", i, err)
				return
			}
			tokens[i] = tok.AccessToken
		})
	}
	close(start)
	wg.Wait()
	f.flush(t)
	if st := f.srv.Stats(); st.Logins != 1 || st.Renewals != 0 {
		t.Errorf("server saw %d logins and %d renewals, want 1 and 0", st.Logins, st.Renewals)
	}
	if st := f.status(); st.Logins != 1 || st.Adopted != 19 {
		t.Errorf("sources made %d logins and adopted %d tokens, want 1 and 19", st.Logins, st.Adopted)
	}
	for i, tok := range tokens {
		if tok != tokens[0] {
			t.Errorf("source %d holds another token than source 0, want the one token of the one login", i)
		}
	}
}

func TestAFarmOnRedisMakesAboutTheAuthCallsOfOneSource(t *testing.T) {
	t.Parallel()
	addr := sharedRedis(t).addr
	one := newFarm(t, 1, leased, addr)
	shared := newFarm(t, 20, leased, addr)
	bare := newFarm(t, 20, noStore, "")
	farms := []*farm{one, shared, bare}
	var from []sample
	for _, f := range farms {
		from = append(from, f.sample())
	}
	stop := startLoads(t, farms...)
	hold(time.Duration(lifetimes()) * lifetime)
	stop()
	var spans []span
	for i, f := range farms {
		f.flush(t)
		spans = append(spans, between(from[i], f.sample()))
	}
	o, s, b := spans[0], spans[1], spans[2]
	t.Logf("over %v: one source %d auth calls (%.2f per lifetime); 20 sharing Redis %d (%.2f, %.2f×); 20 without a store %d (%.2f, %.1f×)",
		o.elapsed.Round(time.Millisecond), o.auth(), o.perLifetime(o.auth()),
		s.auth(), s.perLifetime(s.auth()), ratio(s.auth(), o.auth()),
		b.auth(), b.perLifetime(b.auth()), ratio(b.auth(), o.auth()))
	if float64(s.auth()) > 1.5*float64(o.auth()) {
		t.Errorf("20 sources sharing Redis made %d auth calls, want at most 1.5 times one source's %d", s.auth(), o.auth())
	}
	// Else the two would not tell a farm that shares from one that does not.
	if b.auth() < 10*o.auth() {
		t.Errorf("20 sources without a store made %d auth calls, want at least 10 times one source's %d", b.auth(), o.auth())
	}
	one.checkEveryRequestOK(t, "one source")
	shared.checkEveryRequestOK(t, "20 sharing Redis")
	bare.checkEveryRequestOK(t, "20 without a store")
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func TestAKeyRotationUnderLoadCostsAFarmAtMostTwoLogins(t *testing.T) {
	t.Parallel()
	f := newFarm(t, 20, leased, sharedRedis(t).addr)
	stop := startLoads(t, f)
	hold(lifetime) // every source holds a token, renewed at least once
	rotations := 1
	if *farmEnabled {
		rotations = lifetimes()
	}
	for i := range rotations {
		hold(rand.N(lifetime)) // at any point of the farm's renewal cycle
		before := f.sample()
		f.srv.RotateKey()
		hold(lifetime)
		s := between(before, f.sample())
		t.Logf("rotation %d: %d logins, %d renewals, %d requests refused, over the lifetime after it", i+1, s.logins, s.renewals, s.refused)
		if s.logins > 2 {
			t.Errorf("rotation %d: the farm made %d logins in the lifetime after it, want at most 2", i+1, s.logins)
		}
		if s.refused == 0 {
			t.Errorf("rotation %d: no request was refused after it: the rotation was not seen", i+1)
		}
	}
	stop()
	f.flush(t)
	f.checkEveryRequestOK(t, "20 sharing Redis")
}

func TestAFarmLosesNoRequestWhenRedisDiesAndSharesAgainOnceItIsBack(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	f := newFarm(t, 20, leased, rs.addr)
	one := newFarm(t, 1, noStore, "")
	stop := startLoads(t, f, one)
	hold(lifetime) // sharing: every source holds the farm's token

	rs.stop() // SIGKILL: no goodbye to the clients, and its data is gone
	down := []sample{f.sample(), one.sample()}
	hold(lifetime)      // every source renews without the store, on its own
	restartRedis(t, rs) // an empty Redis where the killed one listened
	up := []sample{f.sample(), one.sample()}
	hold(lifetime) // sharing picks up again within a lifetime
	from := []sample{f.sample(), one.sample()}
	hold(3 * lifetime)
	stop()
	f.flush(t)
	to := []sample{f.sample(), one.sample()}

	outage, outageOne := between(down[0], up[0]), between(down[1], up[1])
	back, backOne := between(from[0], to[0]), between(from[1], to[1])
	t.Logf("Redis down for %v: the farm made %d auth calls (%.2f per lifetime), one source %d (%.2f)",
		outage.elapsed.Round(time.Millisecond), outage.auth(), outage.perLifetime(outage.auth()),
		outageOne.auth(), outageOne.perLifetime(outageOne.auth()))
	t.Logf("a lifetime after Redis came back, over %v: the farm made %d auth calls (%.2f per lifetime), one source %d (%.2f)",
		back.elapsed.Round(time.Millisecond), back.auth(), back.perLifetime(back.auth()),
		backOne.auth(), backOne.perLifetime(backOne.auth()))
	// Else Redis was never gone: sharing would have kept the farm near one
	// source's count.
	if outage.auth() <= 2*outageOne.auth() {
		t.Errorf("with Redis down the farm made %d auth calls, want more than twice one source's %d", outage.auth(), outageOne.auth())
	}
	// The window cuts the farm's renewal cycles and the source's at other
	// phases: one call of slack.
	if float64(back.auth()) > 1.5*float64(backOne.auth())+1 {
		t.Errorf("once Redis was back the farm made %d auth calls, want at most 1.5 times one source's %d, plus one", back.auth(), backOne.auth())
	}
	f.checkEveryRequestOK(t, "20 sharing Redis")
	one.checkEveryRequestOK(t, "one source")
}
