package bench

import (
	"net/http"
	"testing"
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
// header's, in rounds of 100 requests each that alternate between the two,
// so that a busy machine's drift hits both alike. It reports the ratio.
func BenchmarkCannedInterleaved(b *testing.B) {
	header, client, req := cannedClients(b)
	round := func(hc *http.Client) func() {
		return func() {
			for range 100 {
				do(b, hc, req)
			}
		}
	}
	spent := interleave(b, round(header), round(client))
	reportRatios(b, spent, "header", "econnect")
}
