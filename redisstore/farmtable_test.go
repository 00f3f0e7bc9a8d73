package redisstore

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// farmSizes are the rows of the farm benchmark's table.
var farmSizes = []int{1, 5, 20, 50}

// storeKinds are its columns, in order.
var storeKinds = []storeKind{noStore, unlocked, leased}

// TestFarmTable measures, for farms of each size, the logins and renewals
// per token lifetime of the farm as a whole, without a store, on Redis
// without the lease, and on Redis with it: the three farms of a row run at
// once, each on its own server, for -farm.lifetimes token lifetimes.
func TestFarmTable(t *testing.T) {
	if !*farmEnabled {
		t.Skip("the farm benchmark runs with -farm")
	}
	addr := sharedRedis(t).addr
	var rows [][]span
	for _, n := range farmSizes {
		t.Run(fmt.Sprintf("%d sources", n), func(t *testing.T) {
			var farms []*farm
			var from []sample
			for _, kind := range storeKinds {
				f := newFarm(t, n, kind, addr)
				farms, from = append(farms, f), append(from, f.sample())
			}
			stop := startLoads(t, farms...)
			hold(time.Duration(lifetimes()) * lifetime)
			stop()
			var row []span
			for i, f := range farms {
				f.flush(t)
				row = append(row, between(from[i], f.sample()))
				f.checkEveryRequestOK(t, storeKinds[i].String())
			}
			rows = append(rows, row)
		})
	}
	table := fmt.Sprintf("Farm benchmark: %d token lifetimes of %v per row (3 s of each usable: a source renews "+
		"1.5 to 1.9 s into it), each source a request every %v on average, one redis-server on loopback, "+
		"GOMAXPROCS %d, %s. Each cell: logins / renewals per token lifetime, farm-wide.\n\n%s",
		lifetimes(), lifetime, pace, runtime.GOMAXPROCS(0), runtime.Version(), markdown(rows))
	fmt.Printf("\n%s\n", table)
	if *farmOut != "" {
		if err := os.WriteFile(*farmOut, []byte(table), 0o644); err != nil {
			t.Errorf("writing the table: %v", err)
		}
	}
}

// markdown is the table of rows, one per farm size, a span per store kind.
func markdown(rows [][]span) string {
	var b strings.Builder
	b.WriteString("| sources |")
	for _, k := range storeKinds {
		fmt.Fprintf(&b, " %s |", k)
	}
	b.WriteString("\n|---:|")
	b.WriteString(strings.Repeat("---:|", len(storeKinds)))
	b.WriteString("\n")
	for i, row := range rows {
		fmt.Fprintf(&b, "| %d |", farmSizes[i])
		for _, s := range row {
			fmt.Fprintf(&b, " %.2f / %.2f |", s.perLifetime(s.logins), s.perLifetime(s.renewals))
		}
		b.WriteString("\n")
	}
	return b.String()
}
