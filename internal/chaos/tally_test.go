package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // unsorted
	}
	tests := []struct {
		name string
		d    []time.Duration
		q    float64
		want time.Duration
	}{
		{"none", nil, 0.99, 0},
		{"one", []time.Duration{7}, 0.5, 7},
		{"p50 of 100", hundred, 0.50, 50 * time.Millisecond},
		{"p99 of 100", hundred, 0.99, 99 * time.Millisecond},
		{"p100 of 100", hundred, 1, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.d, tt.q); got != tt.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

func TestTallyMerge(t *testing.T) {
	var a, b tally
	a.add(outcome{latency: 1})
	a.add(outcome{latency: 2, cause: "auth 503", usable: true})
	b.add(outcome{latency: 3, cause: "auth 503"})
	b.add(outcome{latency: 4, cause: "corrupted", corrupted: true})
	a.merge(&b)
	want := tally{requests: 4, ok: 1, corrupted: 1, usable: 1,
		causes: map[string]int{"auth 503": 2, "corrupted": 1}, latencies: []time.Duration{1, 2, 3, 4}}
	if diff := cmp.Diff(want, a, cmp.AllowUnexported(tally{})); diff != "" {
		t.Errorf("merged tally mismatch (-want +got):\n%s", diff)
	}
}

func TestCauses(t *testing.T) {
	got := causes(map[string]int{"deadline": 3, "auth 503": 40, "auth 429": 3})
	if want := "auth 503: 40, auth 429: 3, deadline: 3"; got != want {
		t.Errorf("causes() = %q, want %q", got, want)
	}
	if got := causes(nil); got != "–" {
		t.Errorf("causes(nil) = %q, want %q", got, "–")
	}
}

func TestMisses(t *testing.T) {
	good := row{scenario: "503-60%", kind: "Config.Client", requests: 1000, ok: 990, authPerLifetime: 4}
	if m := misses(good); len(m) != 0 {
		t.Errorf("misses(99 %% ok, 4 auth calls per lifetime) = %q, want none", m)
	}
	bad := good
	bad.ok, bad.authPerLifetime = 989, 4.1
	if m := misses(bad); len(m) != 2 {
		t.Errorf("misses(98.9 %% ok, 4.1 auth calls per lifetime) = %q, want 2", m)
	}
	naive := bad
	naive.kind = "naive"
	if m := misses(naive); len(m) != 0 {
		t.Errorf("misses of the naive client = %q, want none: it has no target", m)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name           string
		scenario, kind string
		change         func(r *row) // of a row that breaks nothing and meets its target
		strict         bool
		want           []string // how each failure starts
	}{
		{"nothing wrong", "429-50%", "Config.Client", func(*row) {}, true, nil},
		{"a corrupted body, any kind", "none", "naive", func(r *row) { r.corrupted = 2 }, false,
			[]string{"none, naive: 2 corrupted bodies"}},
		{"a goroutine left behind", "hang-20%", "naive", func(r *row) { r.goroutinesAfter = 7 }, false,
			[]string{"hang-20%: 3 goroutines left"}},
		{"an auth call inside a window", "none", "Config.Client", func(r *row) { r.inWindow = 1 }, false,
			[]string{"none, Config.Client: 1 auth calls inside a Retry-After window"}},
		{"a failure with a usable token", "key-rotation", "Config.Client", func(r *row) { r.ok, r.usable = 99, 1 }, false,
			[]string{"key-rotation, Config.Client: 1 requests failed while a usable token existed"}},
		{"oauth2.NewClient where answers are garbled", "garbled-30%", "oauth2.NewClient", func(r *row) { r.ok, r.usable = 99, 1 }, false,
			[]string{"garbled-30%, oauth2.NewClient: 1 requests failed while a usable token existed"}},
		{"oauth2.NewClient elsewhere", "429-50%", "oauth2.NewClient", func(r *row) { r.ok, r.usable, r.inWindow = 50, 40, 9 }, true, nil},
		{"naive", "429-50%", "naive", func(r *row) { r.ok, r.usable, r.inWindow = 50, 40, 9 }, true, nil},
		{"a target missed, not strict", "503-60%", "Config.Client", func(r *row) { r.ok = 50 }, false, nil},
		{"a target missed, strict", "503-60%", "Config.Client", func(r *row) { r.ok = 50 }, true,
			[]string{"503-60%, Config.Client: 50.00 % of requests succeeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := row{scenario: tt.scenario, kind: tt.kind, requests: 100, ok: 100, goroutinesBefore: 4, goroutinesAfter: 4}
			tt.change(&r)
			got := failures([]row{r}, tt.strict)
			if len(got) != len(tt.want) {
				t.Fatalf("failures(strict %v) = %q, want %d starting %q", tt.strict, got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("failure %d = %q, want it to start %q", i, got[i], w)
				}
			}
		})
	}
}

func TestFailuresLeakOncePerScenario(t *testing.T) {
	var rows []row
	for _, k := range kinds {
		rows = append(rows, row{scenario: "hang-20%", kind: k.name, goroutinesBefore: 4, goroutinesAfter: 5})
	}
	if got := failures(rows, false); len(got) != 1 {
		t.Errorf("failures(a scenario's 3 rows, 1 goroutine left) = %q, want the one goroutine once", got)
	}
}

func TestMarkdown(t *testing.T) {
	rows := []row{
		{scenario: "none", kind: "Config.Client", requests: 10, ok: 10, p99: time.Millisecond, recovery: -1},
		{scenario: "down-10s", kind: "naive", requests: 10, ok: 4, causes: map[string]int{"auth 503": 6},
			p99: 3 * time.Millisecond, recovery: 1500 * time.Millisecond},
	}
	setRatios(rows)
	lines := strings.Split(strings.TrimSpace(markdown(rows)), "\n")
	if len(lines) != 4 {
		t.Fatalf("markdown() has %d lines, want a header, a rule and 2 rows:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, want := range []string{"| none | Config.Client | 10 | 100.00 % (10) | – |", "| down-10s | naive | 10 | 40.00 % (4) | auth 503: 6 |"} {
		if !strings.HasPrefix(lines[2+i], want) {
			t.Errorf("row %d = %q, want it to start %q", i, lines[2+i], want)
		}
	}
	if !strings.Contains(lines[3], "| – | 1.5 s |") {
		t.Errorf("row 1 = %q, want no p99 ratio (no baseline for naive) and a recovery of 1.5 s", lines[3])
	}
}
