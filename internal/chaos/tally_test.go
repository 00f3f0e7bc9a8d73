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
	good := row{scenario: "429-50%", kind: "Config.Client", requests: 1000, ok: 990}
	if m := misses(good); len(m) != 0 {
		t.Errorf("misses(99 %% ok, no call in a window) = %q, want none", m)
	}
	bad := good
	bad.ok, bad.inWindow = 989, 1
	if m := misses(bad); len(m) != 2 {
		t.Errorf("misses(98.9 %% ok, 1 call in a window) = %q, want 2", m)
	}
	naive := bad
	naive.kind = "naive"
	if m := misses(naive); len(m) != 0 {
		t.Errorf("misses of the naive client = %q, want none: it has no target", m)
	}
	usable := row{scenario: "garbled-30%", kind: "oauth2.NewClient", requests: 10, ok: 5, usable: 1}
	if m := misses(usable); len(m) != 1 || !strings.Contains(m[0], "usable token") {
		t.Errorf("misses(oauth2.NewClient, 1 failure with a usable token) = %q, want that one", m)
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
