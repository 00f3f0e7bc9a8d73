// Package bench holds the benchmarks behind the README's Performance
// section. Each one sets econnect against a baseline in the same run, named
// with benchstat's name=value convention (/impl=econnect, /impl=reuse, …) so
// that benchstat -col /impl shows the ratios. It uses only the public API of
// econnect and econnecttest; the README gives the commands.
package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// newJWT returns a token shaped like the server's (HS256, unique_name,
// roles, nbf, iat, exp, jti) for user i, valid for an hour from now. Its
// signature is a hash of the rest: a client never checks it.
func newJWT(i int) string { return newJWTFor(i, i) }

// newJWTFor returns token i, issued to user u.
func newJWTFor(i, u int) string {
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{
		"unique_name": fmt.Sprintf("camera-%04d", u),
		"role":        []string{"Face Publishing", "Face Recognize"},
		"nbf":         now,
		"iat":         now,
		"exp":         now + 3600,
		"jti":         fmt.Sprintf("%032x", i),
	})
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	sig := sha256.Sum256([]byte(signed))
	return signed + "." + enc.EncodeToString(sig[:])
}

// canned is an http.RoundTripper that answers without any network: a login
// with a token answer carrying its JWT, and every other request 200 when it
// carries that JWT as its bearer, 401 when not. What it costs is the same
// for every client, so a benchmark over it shows what the client costs.
type canned struct {
	login  []byte // the login answer body
	bearer string // "Bearer " + the JWT
}

// emptyHeader is the header of every canned answer; nobody writes to it.
var emptyHeader = http.Header{}

// newCanned returns a canned transport whose login answers jwt.
func newCanned(jwt string) *canned {
	login, _ := json.Marshal(map[string]string{"username": "camera-1", "token": jwt})
	return &canned{login: login, bearer: "Bearer " + jwt}
}

// RoundTrip answers req.
func (c *canned) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	resp := &http.Response{StatusCode: http.StatusOK, Header: emptyHeader, Body: http.NoBody, Request: req}
	switch {
	case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/api/v1/authenticate"):
		resp.Body = io.NopCloser(bytes.NewReader(c.login))
	case req.Header.Get("Authorization") != c.bearer:
		resp.StatusCode = http.StatusUnauthorized
	}
	return resp, nil
}

// withClient returns a context whose oauth2.HTTPClient sends through rt:
// what Config's methods use for logins, and Config.Client as its base.
func withClient(ctx context.Context, rt http.RoundTripper) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: rt})
}

// cannedConfig is a Config whose logins and requests go to a canned
// transport: its context, its transport and a request to send.
func cannedConfig(b *testing.B) (context.Context, *econnect.Config, *canned, *http.Request) {
	b.Helper()
	rt := newCanned(newJWT(1))
	cfg := &econnect.Config{BaseURL: "https://camera.example/identities", Username: "camera-1", Password: "s3cret"}
	req, err := http.NewRequest(http.MethodPost, cfg.BaseURL+"/api/v1/faceEdge/publish", nil)
	if err != nil {
		b.Fatal(err)
	}
	return withClient(b.Context(), rt), cfg, rt, req
}

// withHeader is the hand-written baseline of a client: it sets the
// Authorization header on a clone of each request, as any RoundTripper
// must, and nothing else.
type withHeader struct {
	bearer string
	base   http.RoundTripper
}

// RoundTrip sends a clone of req with the header set.
func (h withHeader) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", h.bearer)
	return h.base.RoundTrip(r)
}

// send sends req through hc and returns an error unless the answer is 200.
func send(hc *http.Client, req *http.Request) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d, want 200", resp.StatusCode)
	}
	return nil
}

// do sends req through hc and stops b unless the answer is 200. It must
// run on b's goroutine.
func do(b *testing.B, hc *http.Client, req *http.Request) {
	if err := send(hc, req); err != nil {
		b.Fatal(err)
	}
}

// atomicSource is the least a token cache can do on a read: load a pointer
// and compare its expiry with the clock.
type atomicSource struct{ p atomic.Pointer[oauth2.Token] }

// errExpired is what atomicSource returns once its token has expired.
var errExpired = errors.New("bench: token expired")

// Token returns the stored token while it has not expired.
func (s *atomicSource) Token() (*oauth2.Token, error) {
	if t := s.p.Load(); t != nil && time.Now().Before(t.Expiry) {
		return t, nil
	}
	return nil, errExpired
}

// interleave calls each of runs in turn, once per b.Loop iteration,
// starting each round with the next one so that none always goes first, and
// returns the time spent in each. Drift on a busy machine hits them alike.
func interleave(b *testing.B, runs ...func()) []time.Duration {
	b.Helper()
	spent := make([]time.Duration, len(runs))
	for round := 0; b.Loop(); round++ {
		for k := range runs {
			i := (round + k) % len(runs)
			start := time.Now()
			runs[i]()
			spent[i] += time.Since(start)
		}
	}
	return spent
}

// hideTimePerOp drops ns/op from b's result, for benchmarks whose
// iteration is a round of several measurements, not a figure of its own:
// the testing package prints no ns/op when it is zero.
func hideTimePerOp(b *testing.B) {
	b.ReportMetric(0, "ns/op")
}

// reportRatios reports spent[i] / spent[0] for each i > 0, in units named
// names[i]/names[0].
func reportRatios(b *testing.B, spent []time.Duration, names ...string) {
	b.Helper()
	for i := 1; i < len(spent); i++ {
		b.ReportMetric(float64(spent[i])/float64(spent[0]), names[i]+"/"+names[0])
	}
	hideTimePerOp(b)
}
