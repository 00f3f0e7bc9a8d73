package econnecttest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"testing"

	"github.com/econnect-oss/econnect/internal/testkit"
)

// unavailable is a Chaos of 503s on share p of the calls.
func unavailable(seed uint64, p float64) Chaos {
	return Chaos{Seed: seed, Faults: []Chance{{P: p, Fault: Fault{Status: http.StatusServiceUnavailable}}}}
}

// logins logs in n times one after the other and returns the statuses.
func logins(t *testing.T, s *Server, n int) []int {
	t.Helper()
	statuses := make([]int, n)
	for i := range statuses {
		statuses[i] = mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword)).status
	}
	return statuses
}

// countOf returns how many of statuses are status.
func countOf(statuses []int, status int) int {
	n := 0
	for _, s := range statuses {
		if s == status {
			n++
		}
	}
	return n
}

func TestChaosCounts(t *testing.T) {
	t.Parallel()
	retryAfter := Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"2"}}}
	tests := []struct {
		name  string
		chaos Chaos
		want  map[int]int // count of each status over 200 logins
	}{
		{"no chaos", Chaos{}, map[int]int{200: 200}},
		{"no faults", Chaos{Seed: 1}, map[int]int{200: 200}},
		{"outage", unavailable(1, 1), map[int]int{503: 200}},
		{"never", unavailable(1, 0), map[int]int{200: 200}},
		// The counts of seed 1. They change only if the draws change,
		// and stay near the probabilities: 60 % of 200 is 120.
		{"60 %", unavailable(1, 0.6), map[int]int{503: 116, 200: 84}},
		{"90 %", unavailable(1, 0.9), map[int]int{503: 179, 200: 21}},
		{"other seed", unavailable(2, 0.6), map[int]int{503: 122, 200: 78}},
		{"two faults", Chaos{Seed: 1, Faults: []Chance{
			{P: 0.3, Fault: Fault{Status: http.StatusServiceUnavailable}},
			{P: 0.2, Fault: retryAfter},
		}}, map[int]int{503: 60, 429: 35, 200: 105}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.SetChaos(tt.chaos)
			statuses := logins(t, s, 200)
			for status, want := range tt.want {
				if got := countOf(statuses, status); got != want {
					t.Errorf("%d of 200 logins answered %d, want %d", got, status, want)
				}
			}
			checkStats(t, s, Stats{Logins: 200})
		})
	}
}

func TestChaosSameSeedSameFaults(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) []int {
		s := newServer(t)
		s.SetChaos(unavailable(seed, 0.5))
		return logins(t, s, 64)
	}
	a, b, other := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Errorf("two servers with seed 7 answered\n%v\n%v\nwant the same", a, b)
	}
	if slices.Equal(a, other) {
		t.Errorf("seeds 7 and 8 answered the same statuses %v, want others", a)
	}
}

func TestSetChaosStartsAnew(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.SetChaos(unavailable(3, 0.5))
	first := logins(t, s, 32)
	s.SetChaos(unavailable(3, 0.5))
	if again := logins(t, s, 32); !slices.Equal(first, again) {
		t.Errorf("after SetChaos again, logins answered\n%v\nwant as the first time\n%v", again, first)
	}
}

func TestChaosConcurrentCountsExact(t *testing.T) {
	t.Parallel()
	const n = 64
	chaos := unavailable(5, 0.6)
	sequential := newServer(t)
	sequential.SetChaos(chaos)
	want := countOf(logins(t, sequential, n), http.StatusServiceUnavailable)

	s := newServer(t)
	s.SetChaos(chaos)
	statuses := make([]int, n)
	testkit.Parallel(n, func(i int) {
		a, err := do(s, loginRequest(t.Context(), s, "alice", alicePassword))
		if err != nil {
			t.Errorf("login %d: %v", i, err)
		}
		statuses[i] = a.status
	})
	if got := countOf(statuses, http.StatusServiceUnavailable); got != want {
		t.Errorf("%d concurrent logins: %d answered 503, want %d as one after the other", n, got, want)
	}
}

func TestChaosEndpointsDrawApart(t *testing.T) {
	t.Parallel()
	// renewals logs in k times, then renews 32 times under chaos.
	renewals := func(k int) []int {
		s := newServer(t)
		token := login(t, s, "alice", alicePassword)
		s.SetChaos(unavailable(9, 0.5))
		for range k {
			mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword))
		}
		statuses := make([]int, 32)
		for i := range statuses {
			statuses[i] = mustDo(t, s, renewRequest(t.Context(), s, token)).status
		}
		checkStats(t, s, Stats{Logins: 1 + k, Renewals: 32})
		return statuses
	}
	if a, b := renewals(0), renewals(5); !slices.Equal(a, b) {
		t.Errorf("renewals after 0 and 5 logins answered\n%v\n%v\nwant the same", a, b)
	}
}

func TestChaosAfterQueue(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.SetChaos(unavailable(1, 1))
	s.FailLogin(1, Fault{Status: http.StatusBadGateway})
	got := logins(t, s, 2)
	s.SetChaos(Chaos{}) // the outage ends
	got = append(got, logins(t, s, 1)...)
	if want := []int{502, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("logins answered %v, want %v", got, want)
	}
}

func TestChaosFaults(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.SetChaos(Chaos{Seed: 4, Faults: []Chance{
		{P: 0.25, Fault: Fault{Reset: true}},
		{P: 0.25, Fault: Fault{Cut: true}},
		{P: 0.25, Fault: Fault{Half: true}},
	}})
	const n = 100
	var dropped, cut, half, ok int
	for i := range n {
		// A fresh connection each time: a client may resend a request
		// whose reused connection was reset, which would draw again.
		req := loginRequest(t.Context(), s, "alice", alicePassword)
		req.Close = true
		a, err := do(s, req)
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			cut++
		case err != nil:
			dropped++
		case a.status == http.StatusOK && !json.Valid([]byte(a.body)):
			half++
		case a.status == http.StatusOK:
			ok++
		default:
			t.Errorf("login %d = %d %q, want a fault or a token", i, a.status, a.body)
		}
	}
	// The counts of seed 4.
	if dropped != 29 || cut != 24 || half != 23 || ok != 24 {
		t.Errorf("%d logins: %d dropped, %d cut, %d halved, %d normal; want 29, 24, 23, 24", n, dropped, cut, half, ok)
	}
	checkStats(t, s, Stats{Logins: n})
}

func TestChaosHangReleasedByClient(t *testing.T) {
	t.Parallel()
	s, arrived, left := newWatchedServer(t)
	s.SetChaos(Chaos{Faults: []Chance{{P: 1, Fault: Fault{Hang: true}}}})
	ctx, cancel := context.WithCancel(t.Context())
	res := goDo(s, loginRequest(ctx, s, "alice", alicePassword))
	testkit.Await(t, arrived, "request arrival")
	cancel()
	if r := testkit.Await(t, res, "client error"); !errors.Is(r.err, context.Canceled) {
		t.Errorf("login error = %v, want %v", r.err, context.Canceled)
	}
	testkit.Await(t, left, "handler return after the client gave up")
}

func TestChaosHeaderCopied(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := http.Header{"Retry-After": {"2"}}
	s.SetChaos(Chaos{Faults: []Chance{{P: 1, Fault: Fault{Status: http.StatusTooManyRequests, Header: h}}}})
	h.Set("Retry-After", "60")
	a := mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword))
	if got := a.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want %q (the value when SetChaos was called)", got, "2")
	}
}

func TestSetChaosPanics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		p         []float64
		wantPanic bool
	}{
		{"negative", []float64{-0.1}, true},
		{"not a number", []float64{math.NaN()}, true},
		{"more than 1 in all", []float64{0.6, 0.5}, true},
		{"1 in all, with rounding", []float64{0.1, 0.2, 0.7}, false},
		{"0", []float64{0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			var c Chaos
			for _, p := range tt.p {
				c.Faults = append(c.Faults, Chance{P: p, Fault: Fault{Status: http.StatusServiceUnavailable}})
			}
			defer func() {
				if got := recover() != nil; got != tt.wantPanic {
					t.Errorf("SetChaos(P %v) panicked = %v, want %v", tt.p, got, tt.wantPanic)
				}
			}()
			s.SetChaos(c)
		})
	}
}
