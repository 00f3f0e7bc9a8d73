package bench

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// idle is how many sources or clients the memory benchmarks hold at once.
const idle = 1000

// BenchmarkIdleSource: the heap an idle source holding its token takes,
// against the floor, an *oauth2.Token with its own copy of the JWT. Each
// holds a JWT of its own, and econnect's sources have each answered one
// Token call. With users=one, every source logs in as the same account, as
// the sources of one site's process do; with users=distinct, each as its
// own, and then each also holds the map behind its tokens'
// Extra("username"). It reports B/source.
func BenchmarkIdleSource(b *testing.B) {
	for _, users := range []string{"one", "distinct"} {
		// jwt returns token i of a round: for distinct users, each round's
		// users are new, so that no map is left over from an earlier round.
		round := -1
		jwt := func(i int) string {
			if i == 0 {
				round++
			}
			if users == "one" {
				return newJWTFor(i, 0)
			}
			return newJWTFor(i, round*idle+i)
		}
		cfg := &econnect.Config{BaseURL: "https://camera.example/identities"}
		b.Run("users="+users+"/impl=floor", func(b *testing.B) {
			perItem(b, func(i int) any {
				return &oauth2.Token{AccessToken: jwt(i), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
			})
		})
		b.Run("users="+users+"/impl=econnect", func(b *testing.B) {
			perItem(b, func(i int) any {
				tok, err := econnect.ParseToken(jwt(i))
				if err != nil {
					b.Fatal(err)
				}
				ts := cfg.TokenSourceFrom(b.Context(), tok)
				if _, err := ts.Token(); err != nil {
					b.Fatal(err)
				}
				return ts
			})
		})
	}
}

// BenchmarkIdleClient: the heap an idle Config.Client takes after its login
// and one request, against oauth2.NewClient over a static token with its
// own copy of the JWT after one request. Each client has its own canned
// transport, answering with a JWT of its own. It reports B/source.
func BenchmarkIdleClient(b *testing.B) {
	jwts := distinctJWTs(idle)
	ctxs := make([]context.Context, idle)
	for i, jwt := range jwts {
		ctxs[i] = withClient(b.Context(), newCanned(jwt))
	}
	cfg := &econnect.Config{BaseURL: "https://camera.example/identities", Username: "camera-1", Password: "s3cret"}
	req, _ := http.NewRequest(http.MethodPost, cfg.BaseURL+"/api/v1/faceEdge/publish", nil)
	b.Run("impl=oauth2", func(b *testing.B) {
		perItem(b, func(i int) any {
			tok := &oauth2.Token{AccessToken: strings.Clone(jwts[i]), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
			hc := oauth2.NewClient(ctxs[i], oauth2.StaticTokenSource(tok))
			do(b, hc, req)
			return hc
		})
	})
	b.Run("impl=econnect", func(b *testing.B) {
		perItem(b, func(i int) any {
			hc := cfg.Client(ctxs[i])
			do(b, hc, req)
			return hc
		})
	})
}

// distinctJWTs returns n tokens, each for a user of its own.
func distinctJWTs(n int) []string {
	jwts := make([]string, n)
	for i := range jwts {
		jwts[i] = newJWT(i)
	}
	return jwts
}

// perItem builds the idle items with build(0) … build(idle-1) once per
// iteration, and reports the live heap they add, per item, as B/source:
// the heap after a GC, with them kept alive, less the heap after a GC
// before they were built.
func perItem(b *testing.B, build func(i int) any) {
	b.Helper()
	var total, iterations int64
	kept := make([]any, idle)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range kept {
			kept[i] = build(i)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(kept)
		total += int64(after.HeapAlloc) - int64(before.HeapAlloc)
		iterations++
		clear(kept)
	}
	b.ReportMetric(float64(total)/float64(iterations*idle), "B/source")
	hideTimePerOp(b)
}
