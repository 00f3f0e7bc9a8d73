package bench

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// cannedClients returns two clients over the same canned transport, after
// one request each (so econnect has logged in): one that sets the header by
// hand on a clone, and Config.Client. And the request they send.
func cannedClients(b *testing.B) (header, client *http.Client, req *http.Request) {
	b.Helper()
	ctx, cfg, rt, req := cannedConfig(b)
	header = &http.Client{Transport: withHeader{bearer: rt.bearer, base: rt}}
	client = cfg.Client(ctx)
	do(b, header, req)
	do(b, client, req)
	return header, client, req
}

// BenchmarkCanned: one request through Config.Client against the same
// request with the header set by hand, both over a transport that answers
// at once without a network, so that nothing hides what the client costs.
// Config.Client should cost no more allocations than the clone and header.
func BenchmarkCanned(b *testing.B) {
	header, client, req := cannedClients(b)
	for _, c := range []struct {
		name string
		hc   *http.Client
	}{{"impl=header", header}, {"impl=econnect", client}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				do(b, c.hc, req)
			}
		})
	}
}

// BenchmarkCannedInterleaved: the time of Config.Client over the hand-set
// header's, in rounds of 100 requests each that alternate between them, so
// that a busy machine's drift hits all alike. It reports the ratios, also
// over a hand-set header that reads the clock as a token's expiry needs
// (the floor of a correct bearer middleware), and those of oauth2.NewClient
// over a static token, in the same run.
func BenchmarkCannedInterleaved(b *testing.B) {
	header, client, req := cannedClients(b)
	round := func(hc *http.Client) func() {
		return func() {
			for range 100 {
				do(b, hc, req)
			}
		}
	}
	rt := header.Transport.(withHeader)
	clocked := &http.Client{Transport: withHeaderClock{rt, time.Now().Add(time.Hour)}}
	static := oauth2.NewClient(withClient(b.Context(), rt.base), oauth2.StaticTokenSource(
		&oauth2.Token{AccessToken: strings.TrimPrefix(rt.bearer, "Bearer "), Expiry: time.Now().Add(time.Hour)}))
	do(b, static, req)
	spent := interleave(b, round(header), round(clocked), round(client), round(static))
	reportRatios(b, spent, "header", "header+clock", "econnect", "oauth2")
	b.ReportMetric(float64(spent[2])/float64(spent[1]), "econnect/header+clock")
	b.ReportMetric(float64(spent[3])/float64(spent[1]), "oauth2/header+clock")
}

// withHeaderClock is withHeader that also reads the clock on each request,
// as any client must that hands out a token only while it is valid: the
// floor of a client that follows the wall clock.
type withHeaderClock struct {
	withHeader
	expiry time.Time
}

// RoundTrip sends a clone of req with the header set, if the token is
// still valid.
func (h withHeaderClock) RoundTrip(req *http.Request) (*http.Response, error) {
	if !time.Now().Before(h.expiry) {
		return nil, errors.New("token expired")
	}
	return h.withHeader.RoundTrip(req)
}
