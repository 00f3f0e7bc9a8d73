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
	strict   = flag.Bool("chaos.strict", false, "fail when Config.Client misses its availability targets")
	out      = flag.String("chaos.out", "", "also write the chaos benchmark's Markdown table to this file")
	seed     = flag.Uint64("chaos.seed", 1, "seed of the faults and request bodies of the chaos benchmark")
)

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

// check fails the test on a corrupted body, and with strict on a leaked
// goroutine or a target missed.
func check(t *testing.T, rows []row, strict bool) {
	t.Helper()
	for _, r := range rows {
		if r.corrupted > 0 {
			t.Errorf("%s, %s: %d corrupted bodies, want 0", r.scenario, r.kind, r.corrupted)
		}
		if !strict {
			continue
		}
		if n := r.leaked(); n > 0 {
			t.Errorf("%s: %d goroutines left after the clients were done, want 0", r.scenario, n)
		}
		for _, m := range misses(r) {
			t.Errorf("%s, %s: %s", r.scenario, r.kind, m)
		}
	}
}

// target is what a client kind must achieve in a scenario.
type target struct {
	minSuccess      float64 // percent
	maxAuthPerLife  float64 // 0: no limit
	noUsableFailure bool    // no failure while a usable token existed
	noInWindow      bool    // no auth call inside a Retry-After window
}

// targets are the availability goals of issue 12, by scenario and kind.
var targets = map[string]map[string]target{
	"503-60%":     {"Config.Client": {minSuccess: 99, maxAuthPerLife: 4}},
	"hang-20%":    {"Config.Client": {minSuccess: 99}},
	"429-50%":     {"Config.Client": {minSuccess: 99, noInWindow: true}},
	"garbled-30%": {"Config.Client": {minSuccess: 99, noUsableFailure: true}, "oauth2.NewClient": {noUsableFailure: true}},
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
	if tg.noUsableFailure && r.usable > 0 {
		m = append(m, fmt.Sprintf("%d requests failed while a usable token existed, want 0", r.usable))
	}
	if tg.noInWindow && r.inWindow > 0 {
		m = append(m, fmt.Sprintf("%d auth calls inside a Retry-After window, want 0", r.inWindow))
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
