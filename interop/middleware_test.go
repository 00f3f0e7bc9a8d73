package interop

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/econnect-oss/econnect"
	"github.com/google/go-cmp/cmp"
)

// metrics is a logging and metrics round tripper in the style of otelhttp:
// it records every request it passes on and the status of its answer.
// Composed under econnect.Transport, it sees each request as sent, with its
// token and once per attempt.
type metrics struct {
	next http.RoundTripper

	mu   sync.Mutex // guards seen
	seen []exchange
}

// exchange is what metrics records of one request.
type exchange struct {
	Host, Path string
	Auth       string // the Authorization header
	Status     int    // 0 when the round trip failed
}

func (m *metrics) RoundTrip(req *http.Request) (*http.Response, error) {
	// Read the request before passing it on: it is not ours once sent.
	x := exchange{Host: req.URL.Host, Path: req.URL.Path, Auth: req.Header.Get("Authorization")}
	resp, err := m.next.RoundTrip(req)
	if err == nil {
		x.Status = resp.StatusCode
	}
	m.mu.Lock()
	m.seen = append(m.seen, x)
	m.mu.Unlock()
	return resp, err
}

// TestMiddleware composes a middleware transport under econnect.Transport:
// it sees the bearer on requests to the server's origin, none on requests
// to another origin or on a redirect there, and each attempt of a healed
// 401 with its own token.
func TestMiddleware(t *testing.T) {
	srv := newServer(t)
	cfg, ctx := setup(t, srv)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("%s on another origin got an Authorization header", r.URL.Path)
		}
	}))
	t.Cleanup(other.Close)
	srv.Handle("GET /api/v1/me", whoAmI(t, srv))
	srv.Handle("GET /api/v1/elsewhere", http.RedirectHandler(other.URL+"/landing", http.StatusFound))

	mw := &metrics{next: srv.Client().Transport}
	client := &http.Client{Transport: &econnect.Transport{Source: cfg.TokenSource(ctx), Base: mw}}
	mustGet(t, client, srv.URL+"/api/v1/me")
	mustGet(t, client, other.URL+"/direct")
	mustGet(t, client, srv.URL+"/api/v1/elsewhere")
	srv.RotateKey()
	mustGet(t, client, srv.URL+"/api/v1/me")

	prefix := srv.Prefix
	want := []exchange{
		{Host: "srv", Path: prefix + "/api/v1/me", Auth: "token 1", Status: http.StatusOK},
		{Host: "other", Path: "/direct", Status: http.StatusOK},
		{Host: "srv", Path: prefix + "/api/v1/elsewhere", Auth: "token 1", Status: http.StatusFound},
		{Host: "other", Path: "/landing", Status: http.StatusOK},
		// The key rotated: the refused token, then a new one.
		{Host: "srv", Path: prefix + "/api/v1/me", Auth: "token 1", Status: http.StatusUnauthorized},
		{Host: "srv", Path: prefix + "/api/v1/me", Auth: "token 2", Status: http.StatusOK},
	}
	if diff := cmp.Diff(want, label(t, mw.seen, srv.URL, other.URL)); diff != "" {
		t.Errorf("the middleware saw (-want +got):\n%s", diff)
	}
}

// label replaces in seen the hosts of the two servers by "srv" and "other",
// and each bearer token by "token N" in the order of first appearance.
func label(t *testing.T, seen []exchange, srvURL, otherURL string) []exchange {
	t.Helper()
	hosts := map[string]string{host(t, srvURL): "srv", host(t, otherURL): "other"}
	tokens := make(map[string]string)
	out := make([]exchange, len(seen))
	for i, x := range seen {
		if name, ok := hosts[x.Host]; ok {
			x.Host = name
		}
		if tok := bearer(x.Auth); tok != "" {
			if tokens[tok] == "" {
				tokens[tok] = "token " + strconv.Itoa(len(tokens)+1)
			}
			x.Auth = tokens[tok]
		}
		out[i] = x
	}
	return out
}

// host returns the host:port of a URL.
func host(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// mustGet makes a GET request that must end in 200 OK.
func mustGet(t *testing.T, client *http.Client, rawURL string) {
	t.Helper()
	resp, err := client.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, want 200 OK", rawURL, resp.Status)
	}
}
