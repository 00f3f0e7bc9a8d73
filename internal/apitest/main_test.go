package apitest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/testkit"
	"golang.org/x/oauth2"
)

// These tests use only the public API, on the real clock: they wait for
// nothing but channels, and assert counts, never durations. The token
// source's timing is tested on a fake clock beside the package itself.

func TestMain(m *testing.M) { testkit.Main(m) }

const (
	testUser     = "camera-1"
	testPassword = "pw-SENTINEL-7f3a9c"
)

// fixture is an econnecttest server with one user, and a Config for it.
// Besides the server's own endpoints it serves, behind the bearer check,
// POST /api/v1/echo (answers the body it got) and GET /api/v1/whoami
// (answers the bearer token it got).
type fixture struct {
	srv *econnecttest.Server
	ctx context.Context // carries the server's client, as oauth2.HTTPClient
	cfg econnect.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := econnecttest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddUser(testUser, testPassword)
	srv.Handle("POST /api/v1/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body) // all of it before answering: HTTP/1 may close it then
		if err != nil {
			t.Errorf("echo: reading the body: %v", err)
		}
		w.Write(b)
	}))
	srv.Handle("GET /api/v1/whoami", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	return &fixture{
		srv: srv,
		ctx: context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client()),
		cfg: econnect.Config{BaseURL: srv.URL, Username: testUser, Password: testPassword},
	}
}

func (f *fixture) logins() int { return f.srv.Stats().Logins }

// token logs in once with Config.Token.
func (f *fixture) token(t *testing.T) *oauth2.Token {
	t.Helper()
	tok, err := f.cfg.Token(f.ctx)
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	return tok
}

// holdLogins makes the next n logins wait until the server has seen the
// first of them, then lets them all answer.
func (f *fixture) holdLogins(n int) {
	release := make(chan struct{})
	f.srv.FailLogin(n, econnecttest.Fault{Wait: release})
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
		defer cancel()
		f.srv.WaitFor(ctx, func(st econnecttest.Stats) bool { return st.Logins > 0 })
		close(release)
	}()
}

// awaitLogins waits until the server has seen n logins; the bound guards
// against a deadlock and measures nothing. It may run off the test
// goroutine.
func (f *fixture) awaitLogins(t *testing.T, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
	defer cancel()
	if err := f.srv.WaitFor(ctx, func(st econnecttest.Stats) bool { return st.Logins >= n }); err != nil {
		t.Errorf("the server never saw %d logins: %v", n, err)
	}
}

func post(t *testing.T, hc *http.Client, url string, body io.Reader) (int, string) {
	t.Helper()
	resp, err := hc.Post(url, "text/plain", body)
	if err != nil {
		t.Errorf("Post(%s) error = %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Errorf("Get(%s) error = %v", url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// getWithin sends a GET whose context ends after timeout, and returns its
// status, or its error.
func getWithin(hc *http.Client, url string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// want503 fails the test unless err is the RetrieveError of a 503.
func want503(t *testing.T, what string, err error) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("%s error = %v, want the login's 503", what, err)
	}
}

// hourJWT is a JWT for testUser issued now, valid for an hour.
func hourJWT() string {
	now := time.Now().Unix()
	return testkit.FakeJWT(map[string]any{"unique_name": testUser, "iat": now, "exp": now + 3600})
}

func answer(jwt string) string { return `{"username":"` + testUser + `","token":"` + jwt + `"}` }

// otherOrigin starts a server on another origin that counts the requests
// reaching it, and those with an Authorization header.
func otherOrigin(t *testing.T) (srv *httptest.Server, requests, leaked *atomic.Int32) {
	t.Helper()
	requests, leaked = new(atomic.Int32), new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			leaked.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, requests, leaked
}

// recorder is a RoundTripper with no network behind it: it records the
// Authorization header of each request and answers 200 with an empty body,
// or, when login is set, answers the login endpoint with login as the token.
type recorder struct {
	login string

	mu   sync.Mutex // guards auth
	auth []string   // per request, in order; "" when it had none
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.mu.Unlock()
	if req.Body != nil {
		req.Body.Close()
	}
	body := ""
	if r.login != "" && strings.HasSuffix(req.URL.Path, "/api/v1/authenticate") {
		body = answer(r.login)
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Request: req,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
}

// calls returns the Authorization header of each request so far.
func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...)
}

// closeCounter is a request body that counts its Close calls.
type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }
