package chaos

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

var (
	enabled  = flag.Bool("chaos", false, "run the chaos benchmark (TestChaos)")
	duration = flag.Duration("chaos.duration", 20*time.Second, "how long each scenario of the chaos benchmark runs")
	strict   = flag.Bool("chaos.strict", false, strictHelp)
	out      = flag.String("chaos.out", "", "also write the chaos benchmark's Markdown table to this file")
	seed     = flag.Uint64("chaos.seed", 1, "seed of the faults and request bodies of the chaos benchmark")
)

// strictHelp says which checks -chaos.strict adds, and which run always.
const strictHelp = "also fail the chaos benchmark when Config.Client misses its availability targets " +
	"(success rate, auth calls per token lifetime); every run, strict or not, fails on a corrupted body, " +
	"a goroutine left after the clients were done, an auth call of Config.Client inside a Retry-After window, " +
	"or a request that failed while its client's token was usable (Config.Client everywhere, oauth2.NewClient in garbled-30%)"

func TestChaos(t *testing.T) {
	if !*enabled {
		t.Skip("the chaos benchmark runs with -chaos")
	}
	var rows []row
	for i, sc := range scenarios(*duration) {
		t.Run(sc.name, func(t *testing.T) {
			got := execute(t, sc, *duration+sc.extra, *seed+uint64(i))
			check(t, got, *strict)
			rows = append(rows, got...)
		})
	}
	setRatios(rows)
	table := fmt.Sprintf("Chaos benchmark: %v per scenario, seed %d, GOMAXPROCS %d, %s.\n\n%s",
		*duration, *seed, runtime.GOMAXPROCS(0), runtime.Version(), markdown(rows))
	fmt.Printf("\n%s\n", table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			t.Errorf("writing the table: %v", err)
		}
	}
}

// check fails the test where rows, the rows of a scenario, break what every
// run checks, and with strict where they miss their availability targets.
func check(t *testing.T, rows []row, strict bool) {
	t.Helper()
	for _, f := range failures(rows, strict) {
		t.Error(f)
	}
}

// failures returns, a sentence each, what check fails the test for. Every
// run, short or full, checks what holds from a run's first second: no
// corrupted body, no goroutine left behind, and the guarantees of each
// kind. Strict adds the availability targets, which are rates: a run of a
// few token lifetimes and a few thousand requests cannot judge them.
func failures(rows []row, strict bool) []string {
	var fs []string
	leakSeen := make(map[string]bool) // the goroutine counts are a scenario's, in each of its rows
	for _, r := range rows {
		if n := r.leaked(); n > 0 && !leakSeen[r.scenario] {
			leakSeen[r.scenario] = true
			fs = append(fs, fmt.Sprintf("%s: %d goroutines left after the clients were done (%d before, %d after), want 0",
				r.scenario, n, r.goroutinesBefore, r.goroutinesAfter))
		}
		m := broken(r)
		if strict {
			m = append(m, misses(r)...)
		}
		for _, s := range m {
			fs = append(fs, fmt.Sprintf("%s, %s: %s", r.scenario, r.kind, s))
		}
	}
	return fs
}

// guarantee is what a client kind must show in a scenario in every run.
type guarantee struct {
	noUsableFailure bool // no request failed while a usable token existed
	noInWindow      bool // no auth call inside a Retry-After window
}

// guarantees returns what kind must show in scenario in every run.
// Config.Client must show both everywhere. oauth2.NewClient gets its
// tokens through Token(), which has no context: it cannot wait out a
// Retry-After nor heal a refused token, so issue 12 asks this of it only
// in garbled-30%.
func guarantees(scenario, kind string) guarantee {
	switch {
	case kind == "Config.Client":
		return guarantee{noUsableFailure: true, noInWindow: true}
	case kind == "oauth2.NewClient" && scenario == "garbled-30%":
		return guarantee{noUsableFailure: true}
	}
	return guarantee{}
}

// broken returns how r breaks what every run checks of a row: no body of
// any kind corrupted, and the guarantees of r's kind.
func broken(r row) []string {
	var m []string
	if r.corrupted > 0 {
		m = append(m, fmt.Sprintf("%d corrupted bodies, want 0", r.corrupted))
	}
	g := guarantees(r.scenario, r.kind)
	if g.noUsableFailure && r.usable > 0 {
		m = append(m, fmt.Sprintf("%d requests failed while a usable token existed, want 0", r.usable))
	}
	if g.noInWindow && r.inWindow > 0 {
		m = append(m, fmt.Sprintf("%d auth calls inside a Retry-After window, want 0", r.inWindow))
	}
	return m
}

// target is an availability goal of a client kind in a scenario, checked
// with -chaos.strict.
type target struct {
	minSuccess     float64 // percent
	maxAuthPerLife float64 // 0: no limit
}

// targets are the availability goals of issue 12, by scenario and kind.
var targets = map[string]map[string]target{
	"503-60%":     {"Config.Client": {minSuccess: 99, maxAuthPerLife: 4}},
	"hang-20%":    {"Config.Client": {minSuccess: 99}},
	"429-50%":     {"Config.Client": {minSuccess: 99}},
	"garbled-30%": {"Config.Client": {minSuccess: 99}},
}

// misses returns how r falls short of its target, if it has one.
func misses(r row) []string {
	tg, ok := targets[r.scenario][r.kind]
	if !ok {
		return nil
	}
	var m []string
	if rate := r.successRate(); rate < tg.minSuccess {
		m = append(m, fmt.Sprintf("%.2f %% of requests succeeded, want at least %.0f %%", rate, tg.minSuccess))
	}
	if tg.maxAuthPerLife > 0 && r.authPerLifetime > tg.maxAuthPerLife {
		m = append(m, fmt.Sprintf("%.1f auth calls per token lifetime, want at most %.0f", r.authPerLifetime, tg.maxAuthPerLife))
	}
	return m
}

// setRatios sets the p99 latency ratio of each row against the fault-free
// scenario's row of the same kind.
func setRatios(rows []row) {
	base := make(map[string]time.Duration)
	for _, r := range rows {
		if r.scenario == "none" {
			base[r.kind] = r.p99
		}
	}
	for i, r := range rows {
		if b := base[r.kind]; b > 0 {
			rows[i].p99Ratio = float64(r.p99) / float64(b)
		}
	}
}
