package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// conns counts a server's open connections and tells when that changes.
type conns struct {
	mu      sync.Mutex
	open    int
	changed chan struct{} // closed and replaced at every change
}

func (c *conns) track(_ net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.open++
	case http.StateClosed, http.StateHijacked:
		c.open--
	default:
		return
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// awaitClosed waits until the server has no open connection. The 10 s bound
// guards against a leak; it measures nothing.
func (c *conns) awaitClosed(t *testing.T) {
	t.Helper()
	guard := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		open, changed := c.open, c.changed
		c.mu.Unlock()
		if open == 0 {
			return
		}
		select {
		case <-changed:
		case <-guard:
			t.Fatalf("%d connections still open 10 s after the calls, want 0", open)
		}
	}
}

// tlsServer starts a TLS server, speaking HTTP/2 too when h2, whose
// handler is h, and a Call to it hedged after hedge.
func tlsServer(t *testing.T, h2 bool, h http.HandlerFunc, hedge time.Duration) (Call, *conns) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = h2
	cs := &conns{changed: make(chan struct{})}
	srv.Config.ConnState = cs.track
	srv.StartTLS()
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL + "/identities")
	return Call{Client: srv.Client(), Base: base, Now: time.Now, Hedge: hedge}, cs
}

// TestHedgeOnFreshConnection: over HTTP/1.1 and over HTTP/2 alike, the
// hedge of an attempt that hangs on the pooled connection arrives on a
// connection of its own, and answers.
func TestHedgeOnFreshConnection(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("HTTP/2 %t", h2), func(t *testing.T) {
			var n atomic.Int32
			var mu sync.Mutex
			addrs := map[int32]string{}
			protos := map[int32]int{}
			c, _ := tlsServer(t, h2, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				i := n.Add(1)
				mu.Lock()
				addrs[i], protos[i] = r.RemoteAddr, r.ProtoMajor
				mu.Unlock()
				if i == 2 {
					<-r.Context().Done() // the pooled connection is dead to this call
					return
				}
				fmt.Fprint(w, good)
			}, 20*time.Millisecond)
			warm := c
			warm.Hedge = 0
			if _, err := warm.Login(context.Background(), "cam", "pw"); err != nil {
				t.Fatalf("warm-up Login() error = %v", err)
			}
			if _, err := c.Login(context.Background(), "cam", "pw"); err != nil {
				t.Fatalf("Login() error = %v, want the hedge's answer", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := map[bool]int{false: 1, true: 2}[h2]; protos[1] != want {
				t.Fatalf("the pool speaks HTTP/%d, want HTTP/%d", protos[1], want)
			}
			if addrs[3] == addrs[1] || addrs[3] == addrs[2] {
				t.Errorf("the hedge came from %s, the pooled connection (%s, %s); want a connection of its own", addrs[3], addrs[1], addrs[2])
			}
		})
	}
}

// wrapper is a RoundTripper around another, as tracing or retrying
// middleware is: no new connection can be had below it.
type wrapper struct{ next http.RoundTripper }

func (w wrapper) RoundTrip(r *http.Request) (*http.Response, error) { return w.next.RoundTrip(r) }

// TestNoHedgeBehindAWrapper: a call through a client whose transport is not
// an *http.Transport is not hedged: a second attempt would ride the same
// connection, or a dead sibling of it.
func TestNoHedgeBehindAWrapper(t *testing.T) {
	var n atomic.Int32
	c, _ := tlsServer(t, true, func(w http.ResponseWriter, r *http.Request) { n.Add(1); <-r.Context().Done() }, 10*time.Millisecond)
	c.Client = &http.Client{Transport: wrapper{c.Client.Transport}}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Login(ctx, "cam", "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Login() error = %v, want context.DeadlineExceeded", err)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("server saw %d attempts, want 1: no hedge behind a wrapper", got)
	}
}

// TestLostHedgesLeaveNoConnection: after 20 calls whose hedge lost (the
// first attempt answered once the hedge was under way), and the client's
// idle connections closed, no connection is left open, on HTTP/1.1 and
// HTTP/2.
func TestLostHedgesLeaveNoConnection(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("HTTP/2 %t", h2), func(t *testing.T) {
			var n atomic.Int32
			hedged := make(chan struct{})
			c, cs := tlsServer(t, h2, func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if n.Add(1)%2 == 0 { // every call's second request: its hedge
					hedged <- struct{}{}
					<-r.Context().Done() // held until the first attempt wins
					return
				}
				select {
				case <-hedged: // the first attempt answers once the hedge is under way
				case <-r.Context().Done():
					return
				}
				fmt.Fprint(w, good)
			}, 20*time.Millisecond)
			for range 20 {
				if _, err := c.Login(context.Background(), "cam", "pw"); err != nil {
					t.Fatalf("Login() error = %v", err)
				}
			}
			if got := n.Load(); got != 40 {
				t.Fatalf("server saw %d requests, want 40: 20 calls, each hedged", got)
			}
			c.Client.CloseIdleConnections()
			cs.awaitClosed(t)
		})
	}
}

// TestHedgeDialsAsTheTransportWould: a hedge's connection is dialled with
// the transport's own dialer, the deprecated Dial included, and closed once
// the call is over.
func TestHedgeDialsAsTheTransportWould(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if n.Add(1) == 1 {
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, good)
	}))
	t.Cleanup(srv.Close)
	var dialled atomic.Int32
	//lint:ignore SA1019 the deprecated dialer is what this test is about
	tr := &http.Transport{Dial: func(network, addr string) (net.Conn, error) {
		dialled.Add(1)
		return net.Dial(network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	base, _ := url.Parse(srv.URL + "/identities")
	c := Call{Client: &http.Client{Transport: tr}, Base: base, Now: time.Now, Hedge: 20 * time.Millisecond}
	if _, err := c.Login(context.Background(), "cam", "pw"); err != nil {
		t.Fatalf("Login() error = %v, want the hedge's answer", err)
	}
	if got := dialled.Load(); got != 2 {
		t.Errorf("the transport's Dial was called %d times, want 2: the first attempt's and the hedge's", got)
	}
}
