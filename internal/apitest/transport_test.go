package apitest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/testkit"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

type idleCounter struct {
	recorder
	n int
}

func (c *idleCounter) CloseIdleConnections() { c.n++ }

type failingSource struct{}

func (failingSource) Token() (*oauth2.Token, error) { return nil, errors.New("no token today") }

// TestTransportContract: Transport follows the RoundTripper rules that
// oauth2.Transport follows, around any TokenSource.
func TestTransportContract(t *testing.T) {
	if _, ok := any(&econnect.Transport{}).(interface{ CancelRequest(*http.Request) }); ok {
		t.Error("Transport has a CancelRequest method, want none")
	}
	idle := &idleCounter{}
	(&http.Client{Transport: &econnect.Transport{Source: failingSource{}, Base: idle}}).CloseIdleConnections()
	if idle.n != 1 {
		t.Errorf("http.Client.CloseIdleConnections reached Base %d times, want 1", idle.n)
	}
	var typedNil *nilSource
	for _, src := range []oauth2.TokenSource{nil, failingSource{}, typedNil, panicking{}} {
		body := &closeCounter{Reader: strings.NewReader("x")}
		req, _ := http.NewRequest(http.MethodPost, "https://identities.example.com/", body)
		rec := &recorder{}
		resp, err := roundTripRecovered(&econnect.Transport{Source: src, Base: rec}, req)
		if err == nil || resp != nil || body.closed.Load() != 1 || len(rec.calls()) != 0 {
			t.Errorf("RoundTrip with source %T = %v, %v, body closed %d times, %d sent; want an error, no response, 1 close, none sent",
				src, resp, err, body.closed.Load(), len(rec.calls()))
		}
	}

	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	tr := &econnect.Transport{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static"})} // nil Base: http.DefaultTransport
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("X-Keep", "1")
	before := req.Header.Clone()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip() error = %v", err)
	}
	resp.Body.Close()
	if got.Load() != "Bearer static" {
		t.Errorf("server saw Authorization %q, want the static bearer as oauth2.Transport sends it", got.Load())
	}
	if diff := cmp.Diff(before, req.Header); diff != "" {
		t.Errorf("RoundTrip changed the caller's request headers (-before +after):\n%s", diff)
	}
}

// nilSource is a token source whose nil pointer cannot give a token.
type nilSource struct{ tok *oauth2.Token }

func (s *nilSource) Token() (*oauth2.Token, error) { return s.tok, nil }

// panicking is a token source that panics, as a typed nil often does.
type panicking struct{}

func (panicking) Token() (*oauth2.Token, error) { panic("no token") }

// roundTripRecovered is RoundTrip, with a panic turned into an error: the
// body must be closed either way, as oauth2.Transport closes it.
func roundTripRecovered(tr http.RoundTripper, req *http.Request) (resp *http.Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			resp, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return tr.RoundTrip(req)
}

// TestHandBuiltTransport: a Transport built by hand around
// Config.TokenSource behaves as Config.Client does.
func TestHandBuiltTransport(t *testing.T) {
	handBuilt := func(f *fixture) *http.Client {
		return &http.Client{Transport: &econnect.Transport{Source: f.cfg.TokenSource(f.ctx), Base: f.srv.Client().Transport}}
	}
	t.Run("the request's deadline bounds the wait for a held login", func(t *testing.T) {
		f := newFixture(t)
		hc := handBuilt(f)
		release := make(chan struct{})
		f.srv.FailLogin(2, econnecttest.Fault{Wait: release}) // the login and its hedge
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/api/v1/whoami", nil)
			_, err := hc.Do(req)
			done <- err
		}()
		if err := testkit.Await(t, done, "a request with a 200 ms deadline while the login is held"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Do() while the login is held: error = %v, want context.DeadlineExceeded", err)
		}
		close(release)
		if code, _ := get(t, hc, f.srv.URL+"/api/v1/whoami"); code != 200 || f.logins() != 1 {
			t.Errorf("next request: status %d after %d logins, want 200 from the held login, and 1", code, f.logins())
		}
	})
	t.Run("another origin never touches the source", func(t *testing.T) {
		f := newFixture(t)
		f.cfg.Password = "wrong"
		other, requests, leaked := otherOrigin(t)
		if code, _ := get(t, handBuilt(f), other.URL+"/x"); code != 200 {
			t.Errorf("Get(another origin) status = %d, want 200", code)
		}
		if requests.Load() != 1 || leaked.Load() != 0 || f.logins() != 0 {
			t.Errorf("other origin got %d requests, %d with Authorization; auth server %d logins; want 1, 0, 0",
				requests.Load(), leaked.Load(), f.logins())
		}
	})
	t.Run("a 401 heals with one login", func(t *testing.T) {
		f := newFixture(t)
		hc := handBuilt(f)
		other, _, leaked := otherOrigin(t)
		post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader("warm up"))
		f.srv.RotateKey()
		for i := range 3 {
			if code, body := post(t, hc, f.srv.URL+"/api/v1/echo", strings.NewReader("after rotation")); code != 200 || body != "after rotation" {
				t.Errorf("POST %d after the rotation: %d %q, want 200 and the body back", i, code, body)
			}
		}
		post(t, hc, other.URL, strings.NewReader("elsewhere"))
		if st := f.srv.Stats(); st.Logins != 2 || st.APICalls != 5 {
			t.Errorf("Stats = %+v, want 2 logins and 5 API calls (one retry)", st)
		}
		if leaked.Load() != 0 {
			t.Error("the other origin received the bearer")
		}
	})
}

type fakeJar struct{}

func (fakeJar) SetCookies(*url.URL, []*http.Cookie) {}
func (fakeJar) Cookies(*url.URL) []*http.Cookie     { return nil }

// TestClientBuildsOnContextClient: Timeout, Jar, CheckRedirect and the base
// Transport of the ctx client are kept, and the login goes through it.
func TestClientBuildsOnContextClient(t *testing.T) {
	rec := &recorder{}
	base := &http.Client{Transport: rec, Timeout: 7 * time.Second, Jar: fakeJar{},
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	cfg := econnect.Config{BaseURL: "https://identities.example.com/identities", Username: testUser, Password: testPassword}
	hc := cfg.Client(context.WithValue(context.Background(), oauth2.HTTPClient, base))
	if hc.Timeout != base.Timeout || hc.Jar == nil || hc.CheckRedirect == nil {
		t.Errorf("Client() = %+v, want Timeout, Jar and CheckRedirect of the ctx client", hc)
	}
	if tr, ok := hc.Transport.(*econnect.Transport); !ok || tr.Base != rec {
		t.Errorf("Client().Transport = %#v, want an *econnect.Transport over the ctx client's Transport", hc.Transport)
	}
	// The deadline ends the request before the backoff after the garbled
	// answer does.
	if _, err := getWithin(hc, "https://identities.example.com/identities/api/v1/people", 100*time.Millisecond); err == nil || len(rec.calls()) != 1 {
		t.Errorf("Get() = %v after %d round trips, want the login's error after it went through the ctx client's Transport", err, len(rec.calls()))
	}
}

// TestRequestContext: the request's own context ends a request through
// Client, also while it waits for a login held by the server.
func TestRequestContext(t *testing.T) {
	f := newFixture(t)
	hc := f.cfg.Client(f.ctx)
	hold := make(chan struct{})
	defer close(hold)
	f.srv.FailLogin(1, econnecttest.Fault{Wait: hold})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL+"/api/v1/echo", strings.NewReader("x"))
	if _, err := hc.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do() while the login is held: error = %v, want context.DeadlineExceeded", err)
	}
}
