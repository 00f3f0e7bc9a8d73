package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// outcome is what became of one request.
type outcome struct {
	latency   time.Duration // from sending to the end of reading the answer
	cause     string        // why it failed; "" if it succeeded
	corrupted bool          // answered 200 with another body than the one sent
	usable    bool          // failed while a usable token existed (see usableToken)
}

// tally adds up the outcomes of requests. It is not safe for concurrent
// use: each worker fills its own, and they are merged at the end.
type tally struct {
	requests  int
	ok        int
	corrupted int
	usable    int // failures while a usable token existed
	causes    map[string]int
	latencies []time.Duration
}

func (t *tally) add(o outcome) {
	t.requests++
	t.latencies = append(t.latencies, o.latency)
	if o.corrupted {
		t.corrupted++
	}
	if o.cause == "" {
		t.ok++
		return
	}
	if t.causes == nil {
		t.causes = make(map[string]int)
	}
	t.causes[o.cause]++
	if o.usable {
		t.usable++
	}
}

func (t *tally) merge(o *tally) {
	t.requests += o.requests
	t.ok += o.ok
	t.corrupted += o.corrupted
	t.usable += o.usable
	for c, n := range o.causes {
		if t.causes == nil {
			t.causes = make(map[string]int)
		}
		t.causes[c] += n
	}
	t.latencies = append(t.latencies, o.latencies...)
}

// percentile returns the q-quantile (0 < q <= 1) of d by nearest rank, or
// zero for no durations. It sorts d.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// row is one line of the table: one client kind in one scenario.
type row struct {
	scenario, kind string

	requests, ok, corrupted, usable int
	causes                          map[string]int

	authPerLifetime float64 // the most of the kind's clients
	inWindow        int     // auth calls inside a Retry-After window
	p50, p99        time.Duration
	p99Ratio        float64       // p99 against the fault-free scenario; 0 if none
	recovery        time.Duration // lag after an outage, the most of the kind's clients; -1 if none
	unrecovered     int           // clients that failed in the outage and never succeeded again

	goroutinesBefore, goroutinesAfter int    // of the whole scenario
	heapBefore, heapAfter             uint64 // bytes, of the whole scenario
}

// successRate returns the share of requests that succeeded, in percent.
func (r row) successRate() float64 {
	if r.requests == 0 {
		return 0
	}
	return 100 * float64(r.ok) / float64(r.requests)
}

// leaked returns how many goroutines outlived the scenario.
func (r row) leaked() int {
	return max(r.goroutinesAfter-r.goroutinesBefore, 0)
}

// header is the head of the Markdown table.
const header = "| scenario | client | requests | ok | failures by cause | failed with a usable token | auth calls per lifetime (most of a client) | in Retry-After | p50 | p99 | p99 vs none | recovery | goroutines before → after | heap MiB before → after | corrupted |\n" +
	"|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"

// markdown returns the table of rows.
func markdown(rows []row) string {
	var b strings.Builder
	b.WriteString(header)
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %.2f %% (%d) | %s | %d | %.1f | %d | %s | %s | %s | %s | %d → %d | %.1f → %.1f | %d |\n",
			r.scenario, r.kind, r.requests, r.successRate(), r.ok, causes(r.causes), r.usable,
			r.authPerLifetime, r.inWindow, ms(r.p50), ms(r.p99), ratio(r.p99Ratio), recovery(r.recovery, r.unrecovered),
			r.goroutinesBefore, r.goroutinesAfter, mib(r.heapBefore), mib(r.heapAfter), r.corrupted)
	}
	return b.String()
}

// causes lists failures by cause, the most frequent first.
func causes(m map[string]int) string {
	if len(m) == 0 {
		return "–"
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func ratio(x float64) string {
	if x == 0 {
		return "–"
	}
	return fmt.Sprintf("×%.1f", x)
}

func recovery(d time.Duration, unrecovered int) string {
	switch {
	case unrecovered > 0:
		return fmt.Sprintf("never (%d clients)", unrecovered)
	case d < 0:
		return "–"
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func mib(b uint64) float64 {
	return float64(b) / (1 << 20)
}
