package chaos

import (
	"context"
	"net/http"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
)

// The shape of every scenario.
const (
	lifetime       = 5 * time.Second  // of the server's tokens, in whole seconds
	requestTimeout = 10 * time.Second // of each request
	clientsPerKind = 4
	workers        = 32 // goroutines per client
	minBody        = 256
	maxBody        = 4096

	// offset puts the server's clock a few minutes ahead, and off the
	// whole second the client's clock is on, so that the whole-second
	// claims and the skew both show.
	offset = 3*time.Minute + 370*time.Millisecond
	// skew is the offset of the clock-skew scenario: two hours behind.
	skew = -2*time.Hour - 630*time.Millisecond
)

// scenario is how the auth server misbehaves during one run.
type scenario struct {
	name   string
	offset time.Duration // of the server's clock
	faults []econnecttest.Chance
	extra  time.Duration // how much longer than the others it runs
	// during, if not nil, acts on the server while the load runs, and
	// returns once ctx is done.
	during func(ctx context.Context, r *run)
}

// scenarios returns the scenarios of a run in which each lasts d. The
// fault-free one comes first: the others' latencies are set against it.
func scenarios(d time.Duration) []scenario {
	return []scenario{
		{name: "none", offset: offset},
		{name: "503-60%", offset: offset, faults: chances(0.6, status(http.StatusServiceUnavailable))},
		{name: "503-90%", offset: offset, faults: chances(0.9, status(http.StatusServiceUnavailable))},
		{name: "hang-20%", offset: offset, faults: chances(0.2, econnecttest.Fault{Delay: 35 * time.Second})},
		{name: "429-50%", offset: offset, faults: chances(0.5, econnecttest.Fault{
			Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"2"}}})},
		{name: "garbled-30%", offset: offset, faults: chances(0.1,
			econnecttest.Fault{Reset: true}, econnecttest.Fault{Cut: true}, econnecttest.Fault{Half: true})},
		// The extra time lets the recovery show: backoffs grow during
		// the outage.
		{name: "down-10s", offset: offset, during: goDown(d/4, down(d)), extra: down(d)},
		{name: "key-rotation", offset: offset, during: rotate(min(2*lifetime, d/3))},
		{name: "clock-skew", offset: skew},
	}
}

// down is how long the server is down in a run in which scenarios last d.
func down(d time.Duration) time.Duration {
	return min(10*time.Second, d/2)
}

// chances gives each fault probability p.
func chances(p float64, faults ...econnecttest.Fault) []econnecttest.Chance {
	cs := make([]econnecttest.Chance, len(faults))
	for i, f := range faults {
		cs[i] = econnecttest.Chance{P: p, Fault: f}
	}
	return cs
}

func status(code int) econnecttest.Fault {
	return econnecttest.Fault{Status: code}
}

// goDown answers every auth call 503 from after into the run, for length.
func goDown(after, length time.Duration) func(context.Context, *run) {
	down := econnecttest.Chaos{Faults: chances(1, status(http.StatusServiceUnavailable))}
	return func(ctx context.Context, r *run) {
		if !sleep(ctx, after) {
			return
		}
		r.outage.began(time.Now())
		r.srv.SetChaos(down)
		if !sleep(ctx, length) {
			return
		}
		// Mark the return first: no success can then precede it.
		r.outage.ended(time.Now())
		r.srv.SetChaos(econnecttest.Chaos{})
	}
}

// rotate rotates the server's key every so often.
func rotate(every time.Duration) func(context.Context, *run) {
	return func(ctx context.Context, r *run) {
		for sleep(ctx, every) {
			r.srv.RotateKey()
		}
	}
}

// sleep waits d, and reports false if ctx was done first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
