package bench

import (
	"context"
	"net/http"
	"testing"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

// loopbackServer starts an econnecttest server on loopback with one user
// and a protected GET /api/v1/ping that answers 200, closed when b ends.
// It returns the server, a Config for the user and a context whose HTTP
// client trusts the server.
func loopbackServer(b *testing.B) (*econnecttest.Server, *econnect.Config, context.Context) {
	b.Helper()
	srv := econnecttest.NewServer()
	b.Cleanup(srv.Close)
	srv.AddUser("camera-1", "s3cret")
	srv.Handle("GET /api/v1/ping", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	return srv, cfg, context.WithValue(b.Context(), oauth2.HTTPClient, srv.Client())
}

// loopbackClients returns the clients the Request benchmarks compare, in
// this order, after one request each: a plain client with the header set
// by hand, oauth2.NewClient over a static token, and Config.Client. And the
// GET they send.
func loopbackClients(b *testing.B) ([]*http.Client, *http.Request) {
	b.Helper()
	srv, cfg, ctx := loopbackServer(b)
	tok, err := cfg.Token(ctx)
	if err != nil {
		b.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/ping", nil)
	if err != nil {
		b.Fatal(err)
	}
	clients := []*http.Client{
		{Transport: withHeader{bearer: "Bearer " + tok.AccessToken, base: srv.Client().Transport}},
		oauth2.NewClient(ctx, oauth2.StaticTokenSource(tok)),
		cfg.Client(ctx),
	}
	for _, hc := range clients {
		do(b, hc, req)
	}
	return clients, req
}

// BenchmarkRequest: a GET through each client to a loopback server, one
// client after the other, for their allocations. Config.Client should
// allocate no more than oauth2.NewClient.
func BenchmarkRequest(b *testing.B) {
	clients, req := loopbackClients(b)
	for i, name := range []string{"impl=header", "impl=oauth2", "impl=econnect"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				do(b, clients[i], req)
			}
		})
	}
}

// BenchmarkRequestInterleaved: the same GETs, one per client in turn, so
// that a busy machine's drift hits all three alike. It reports each
// client's total time over the hand-set header's; Config.Client should be
// within 5 % of it.
func BenchmarkRequestInterleaved(b *testing.B) {
	clients, req := loopbackClients(b)
	runs := make([]func(), len(clients))
	for i, hc := range clients {
		runs[i] = func() { do(b, hc, req) }
	}
	spent := interleave(b, runs...)
	reportRatios(b, spent, "header", "oauth2", "econnect")
}
