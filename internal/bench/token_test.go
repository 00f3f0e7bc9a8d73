package bench

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// readers returns the token sources whose cached read the Token benchmarks
// compare, each holding a valid token: a bare atomic pointer and clock
// read, oauth2.ReuseTokenSource over a static token, and Config.TokenSource
// after its login.
func readers(b *testing.B) []namedSource {
	b.Helper()
	ctx, cfg, _, _ := cannedConfig(b)
	tok := &oauth2.Token{AccessToken: newJWT(1), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	var bare atomicSource
	bare.p.Store(tok)
	sources := []namedSource{
		{"impl=atomic", &bare},
		{"impl=reuse", oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(tok))},
		{"impl=econnect", cfg.TokenSource(ctx)},
	}
	for _, s := range sources {
		if _, err := s.ts.Token(); err != nil { // the login, for econnect
			b.Fatalf("%s: Token() error = %v", s.name, err)
		}
	}
	return sources
}

// namedSource is a token source and its sub-benchmark name.
type namedSource struct {
	name string
	ts   oauth2.TokenSource
}

// BenchmarkToken: Token() on a cached valid token, on one goroutine.
// Config.TokenSource is oauth2's own cache, so it should cost what
// oauth2.ReuseTokenSource costs, with no allocation.
func BenchmarkToken(b *testing.B) {
	for _, s := range readers(b) {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.ts.Token(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenParallel: the same read from every goroutine of
// b.RunParallel at GOMAXPROCS 1, 2, 4 and 8, where a mutex on the read path
// shows as lost throughput.
func BenchmarkTokenParallel(b *testing.B) {
	sources := readers(b)
	for _, procs := range []int{1, 2, 4, 8} {
		for _, s := range sources {
			b.Run(fmt.Sprintf("procs=%d/%s", procs, s.name), func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := s.ts.Token(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkTokenInterleaved: the same reads on one goroutine, in rounds of
// 1000 that alternate between the sources, so that a busy machine's drift
// hits all three alike. It reports each one's time over the atomic read's,
// and econnect's over oauth2.ReuseTokenSource's.
func BenchmarkTokenInterleaved(b *testing.B) {
	sources := readers(b)
	runs := make([]func(), len(sources))
	for i, s := range sources {
		runs[i] = func() {
			for range 1000 {
				if _, err := s.ts.Token(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	spent := interleave(b, runs...)
	reportRatios(b, spent, "atomic", "reuse", "econnect")
	b.ReportMetric(float64(spent[2])/float64(spent[1]), "econnect/reuse")
}
