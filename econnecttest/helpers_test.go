package econnecttest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/testkit"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Accounts of the servers of newServer.
const (
	alicePassword = "alice-SENTINEL-pw" // default roles
	bobPassword   = "bob-SENTINEL-pw"   // "Face Recognize" only
)

// newServer starts a server with the users alice and bob, closed when the
// test ends.
func newServer(t *testing.T) *Server {
	t.Helper()
	s := NewServer()
	t.Cleanup(s.Close)
	addUsers(s)
	return s
}

func addUsers(s *Server) {
	s.AddUser("alice", alicePassword)
	s.AddUser("bob", bobPassword, roleRecognize)
}

// answer is what the server answered.
type answer struct {
	status int
	header http.Header
	body   string
	proto  int // major version of HTTP
}

// do sends req to s without following redirects. It is safe to call off the
// test goroutine.
func do(s *Server, req *http.Request) (answer, error) {
	return doWith(s.Client(), req)
}

// doWith is do through the client hc.
func doWith(hc *http.Client, req *http.Request) (answer, error) {
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b), resp.ProtoMajor}, err
}

// mustDo is do for the test goroutine.
func mustDo(t *testing.T, s *Server, req *http.Request) answer {
	t.Helper()
	a, err := do(s, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return a
}

// request returns a request to s.URL+path with a bearer token and a body of
// type ctype, when they are not empty.
func request(ctx context.Context, s *Server, method, path, token, ctype, body string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		panic(err) // a bad test, not a bad server
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	return req
}

func loginRequest(ctx context.Context, s *Server, username, password string) *http.Request {
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	return request(ctx, s, "POST", "/api/v1/authenticate", "", "application/json", string(body))
}

func renewRequest(ctx context.Context, s *Server, token string) *http.Request {
	return request(ctx, s, "GET", "/api/v1/renewToken", token, "", "")
}

const publishBody = `{"expanded":"aGVsbG8=","detectorName":"cam-7",` +
	`"ianaTimeZone":"America/Los_Angeles","detectTimeUtc":"2025-01-01T12:00:00Z"}`

func publishRequest(ctx context.Context, s *Server, token, body string) *http.Request {
	return request(ctx, s, "POST", "/api/v1/faceEdge/publish", token, "application/json", body)
}

// login logs in and returns the token.
func login(t *testing.T, s *Server, username, password string) string {
	t.Helper()
	a := mustDo(t, s, loginRequest(t.Context(), s, username, password))
	return tokenOf(t, a)
}

// tokenOf returns the token of a 200 answer of login or renewal.
func tokenOf(t *testing.T, a answer) string {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("auth status = %d, want 200 (body %q)", a.status, a.body)
	}
	var got struct{ Username, Token string }
	if err := json.Unmarshal([]byte(a.body), &got); err != nil || got.Token == "" {
		t.Fatalf("auth body = %q, want JSON with a token (err %v)", a.body, err)
	}
	return got.Token
}

// checkStats compares the server's counters of requests with want.
// Connections, which depends on how the client pools them, is left to the
// tests of connections.
func checkStats(t *testing.T, s *Server, want Stats) {
	t.Helper()
	if diff := cmp.Diff(want, s.Stats(), cmpopts.IgnoreFields(Stats{}, "Connections")); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

// clockStart is where fake clocks start: half a second past a whole second,
// so that rounding shows.
var clockStart = time.Date(2025, 1, 1, 12, 0, 0, 5e8, time.UTC)

// newFakeClock returns a fake clock at clockStart and makes its wall
// reading the server's clock.
func newFakeClock(s *Server) *testkit.Clock {
	c := testkit.NewClock(clockStart)
	s.SetClock(c.Wall)
	return c
}

// part returns part i (0 header, 1 payload) of a JWT, decoded.
func part(t *testing.T, token string, i int) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("token part %d: %v", i, err)
	}
	return string(b)
}

// claimsOf returns the payload of a JWT.
func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	var c map[string]any
	if err := json.Unmarshal([]byte(part(t, token, 1)), &c); err != nil {
		t.Fatalf("token payload: %v", err)
	}
	return c
}

// watch reports each request on arrived as it reaches the server's
// handlers, and on left as they return. Call it before Start.
func watch(s *Server) (arrived, left <-chan struct{}) {
	a, l := make(chan struct{}, 16), make(chan struct{}, 16)
	inner := s.srv.Config.Handler
	s.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a <- struct{}{}
		defer func() { l <- struct{}{} }() // also when the handler aborts
		inner.ServeHTTP(w, r)
	})
	return a, l
}

// newWatchedServer is newServer with watch.
func newWatchedServer(t *testing.T) (s *Server, arrived, left <-chan struct{}) {
	t.Helper()
	s = NewUnstartedServer()
	arrived, left = watch(s)
	s.Start()
	t.Cleanup(s.Close)
	addUsers(s)
	return s, arrived, left
}

// result is the outcome of a request sent by goDo.
type result struct {
	a   answer
	err error
}

// goDo sends req in a goroutine and delivers the outcome on the channel.
func goDo(s *Server, req *http.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		a, err := do(s, req)
		ch <- result{a, err}
	}()
	return ch
}

// goDoWith is goDo through the client hc.
func goDoWith(hc *http.Client, req *http.Request) <-chan result {
	ch := make(chan result, 1)
	go func() {
		a, err := doWith(hc, req)
		ch <- result{a, err}
	}()
	return ch
}

// startTLS starts a TLS server with the users alice and bob, over HTTP/2 if
// h2, with watch; it is closed when the test ends.
func startTLS(t *testing.T, h2 bool) (s *Server, arrived, left <-chan struct{}) {
	t.Helper()
	s = NewUnstartedServer()
	s.EnableHTTP2 = h2
	arrived, left = watch(s)
	s.StartTLS()
	t.Cleanup(s.Close)
	addUsers(s)
	return s, arrived, left
}

// freshClient returns a client like s.Client() with a pool of connections
// of its own: its first request makes a new connection.
func freshClient(t *testing.T, s *Server) *http.Client {
	t.Helper()
	tr := s.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// waitStats waits until cond holds for the server's Stats.
func waitStats(t *testing.T, s *Server, what string, cond func(Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testkit.Guard)
	defer cancel()
	if err := s.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for %s: %v; Stats() = %+v", what, err, s.Stats())
	}
}
