package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// benchProxies returns the two proxies BenchmarkProxy compares, in front
// of one loopback server, as URLs of a GET each: a bare
// httputil.ReverseProxy that sets the header by hand, and the command's.
// Each sends through a transport of its own, built as the command builds
// it.
func benchProxies(b *testing.B) (bare, ours string) {
	b.Helper()
	s := newServer(b, false)
	s.Handle("GET /api/v1/ping", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	o := &options{url: s.URL, user: testUser, password: testPassword}
	base, _ := url.Parse(s.URL)
	cfg := newConfig(o)
	tok, err := cfg.Token(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	hand, _ := newHTTPClient(o)
	b.Cleanup(hand.CloseIdleConnections)
	handBuilt := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		},
		Transport:     hand.Transport,
		FlushInterval: -1,
	}
	hc, _ := newHTTPClient(o)
	b.Cleanup(hc.CloseIdleConnections)
	life, stop := context.WithCancel(context.Background())
	g := &getter{o: o, hc: hc, cfg: cfg, life: life}
	b.Cleanup(stop)
	command := newProxy(base, g.transport(cfg.TokenSourceFrom(g.withClient(life), tok)), &process{stderr: io.Discard})
	return serveBench(b, handBuilt) + "/api/v1/ping", serveBench(b, command) + "/api/v1/ping"
}

// serveBench serves h on loopback until b ends, and returns its URL.
func serveBench(b *testing.B, h http.Handler) string {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkProxy: a GET through a bare httputil.ReverseProxy that sets the
// header by hand, and through the command's proxy, each on its own, then
// interleaved round by round so that a busy machine's drift hits both
// alike; the last reports the ratio of their total times, which should be
// at most 1.1:
//
//	go test -run '^$' -bench Proxy -count 6 ./cmd/econnect-token | benchstat -
func BenchmarkProxy(b *testing.B) {
	bare, ours := benchProxies(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(client.CloseIdleConnections)
	get := func(u string) {
		if err := send(client, u); err != nil {
			b.Fatal(err)
		}
	}
	for _, impl := range []struct{ name, url string }{{"impl=reverseproxy", bare}, {"impl=econnect", ours}} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				get(impl.url)
			}
		})
	}
	b.Run("interleaved", func(b *testing.B) {
		var spent [2]time.Duration
		for round := 0; b.Loop(); round++ {
			for k := range 2 {
				i := (round + k) % 2
				start := time.Now()
				get([]string{bare, ours}[i])
				spent[i] += time.Since(start)
			}
		}
		b.ReportMetric(float64(spent[1])/float64(spent[0]), "econnect/reverseproxy")
		b.ReportMetric(0, "ns/op") // a round is two requests: no figure of its own
	})
}

// send GETs u through hc and returns an error unless the answer is 200.
func send(hc *http.Client, u string) error {
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s, want 200 OK", u, resp.Status)
	}
	return nil
}
