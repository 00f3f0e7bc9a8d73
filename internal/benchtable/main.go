// Command benchtable turns a `go test -bench` run of the econnect package
// into the README's Performance table: the median of each figure over the
// run's -count repetitions, set against its baseline and its target.
//
//	go test -run '^$' -bench . -benchtime 2s -count 5 . | go run ./internal/benchtable
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// figures maps "benchmark name|unit" to every value the run reported.
type figures map[string][]float64

func main() {
	figs, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	if err := write(os.Stdout, figs); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

// read collects the figures of benchmark lines such as
// "BenchmarkToken/impl=econnect-2  123  97.5 ns/op  0 B/op  0 allocs/op".
func read(r io.Reader) (figures, error) {
	figs := figures{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", fields[0], err)
			}
			key := name + "|" + fields[i+1]
			figs[key] = append(figs[key], v)
		}
	}
	return figs, sc.Err()
}

// median returns the median of a figure, and whether the run reported it.
func (f figures) median(name, unit string) (float64, bool) {
	vs := slices.Clone(f[name+"|"+unit])
	if len(vs) == 0 {
		return 0, false
	}
	slices.Sort(vs)
	return vs[len(vs)/2], true
}

// fig names a figure: a benchmark and a unit.
type fig struct{ name, unit string }

// row is one line of the table: a figure, its baseline, and its goal.
type row struct {
	target, measure string
	ours, base      fig
	goal            string
	met             func(ours, base float64) bool
}

func atMost(limit float64) func(ours, _ float64) bool {
	return func(ours, _ float64) bool { return ours <= limit }
}

func timesBase(limit float64) func(ours, base float64) bool {
	return func(ours, base float64) bool { return ours <= limit*base }
}

var rows = []row{
	{"P1", "Token(), cached token: ns/op (baseline: `oauth2.ReuseTokenSource` over a static token)",
		fig{"BenchmarkToken/impl=econnect", "ns/op"}, fig{"BenchmarkToken/impl=oauth2.ReuseTokenSource", "ns/op"},
		"≤ 1.5× baseline", timesBase(1.5)},
	{"P1", "Token(), cached token: allocs/op",
		fig{"BenchmarkToken/impl=econnect", "allocs/op"}, fig{"BenchmarkToken/impl=oauth2.ReuseTokenSource", "allocs/op"},
		"0", atMost(0)},
	{"P1", "Token(), RunParallel: ns/op",
		fig{"BenchmarkToken/impl=econnect/parallel", "ns/op"}, fig{"BenchmarkToken/impl=oauth2.ReuseTokenSource/parallel", "ns/op"},
		"≤ 1.5× baseline", timesBase(1.5)},
	{"P1", "Token(), RunParallel: allocs/op",
		fig{"BenchmarkToken/impl=econnect/parallel", "allocs/op"}, fig{"BenchmarkToken/impl=oauth2.ReuseTokenSource/parallel", "allocs/op"},
		"0", atMost(0)},
	{"P2", "GET via Client: time ÷ hand-set header's (baseline: oauth2.NewClient's)",
		fig{"BenchmarkRequestInterleaved", "econnect.Client/manual"}, fig{"BenchmarkRequestInterleaved", "oauth2.NewClient/manual"},
		"≤ 1.05", atMost(1.05)},
	{"P2", "GET via Client: allocs/op (baseline: oauth2.NewClient)",
		fig{"BenchmarkRequest/impl=econnect.Client", "allocs/op"}, fig{"BenchmarkRequest/impl=oauth2.NewClient", "allocs/op"},
		"≤ baseline", timesBase(1)},
	{"P3", "slowest request across three 400 ms renewals: ms (baseline: no renewal)",
		fig{"BenchmarkSlowRenewal/renewals=3", "max-ms"}, fig{"BenchmarkSlowRenewal/renewals=0", "max-ms"},
		"< 10", func(ours, _ float64) bool { return ours < 10 }},
	{"P4", "auth calls per token lifetime, worst EarlyExpiry",
		fig{"BenchmarkAuthCallsPerLifetime", "calls/lifetime"}, fig{},
		"≤ 2", atMost(2)},
}

func write(w io.Writer, figs figures) error {
	fmt.Fprintln(w, "| Target | Measure | econnect | Baseline | Goal | Met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		ours, ok := figs.median(r.ours.name, r.ours.unit)
		if !ok {
			return fmt.Errorf("the run has no %s %s", r.ours.name, r.ours.unit)
		}
		base, hasBase := figs.median(r.base.name, r.base.unit)
		baseText := "–"
		if hasBase {
			baseText = format(base)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.target, r.measure, format(ours), baseText, r.goal, yes(r.met(ours, base)))
	}
	return nil
}

func format(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}
