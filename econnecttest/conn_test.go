package econnecttest

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/testkit"
)

func TestEnableHTTP2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tls, h2   bool
		wantProto int
	}{
		{"HTTP/1.1 over TLS", true, false, 1},
		{"HTTP/2", true, true, 2},
		{"plain HTTP ignores it", false, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewUnstartedServer()
			s.EnableHTTP2 = tt.h2
			if tt.tls {
				s.StartTLS()
			} else {
				s.Start()
			}
			t.Cleanup(s.Close)
			addUsers(s)
			a := mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword))
			if a.proto != tt.wantProto {
				t.Errorf("login over HTTP/%d, want HTTP/%d", a.proto, tt.wantProto)
			}
			p := mustDo(t, s, publishRequest(t.Context(), s, tokenOf(t, a), publishBody))
			if p.status != http.StatusOK || p.proto != tt.wantProto {
				t.Errorf("publish = %d over HTTP/%d, want 200 over HTTP/%d", p.status, p.proto, tt.wantProto)
			}
		})
	}
}

func TestConnections(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		h2, close, fresh bool // HTTP/2; req.Close; a client each
		want             int
	}{
		{"HTTP/1.1 kept alive", false, false, false, 1},
		{"HTTP/1.1 closed after each", false, true, false, 3},
		{"HTTP/1.1 a client each", false, false, true, 3},
		{"HTTP/2 kept alive", true, false, false, 1},
		{"HTTP/2 a client each", true, false, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewUnstartedServer()
			s.EnableHTTP2 = tt.h2
			s.StartTLS()
			t.Cleanup(s.Close)
			addUsers(s)
			for range 3 {
				hc := s.Client()
				if tt.fresh {
					hc = freshClient(t, s)
				}
				req := loginRequest(t.Context(), s, "alice", alicePassword)
				req.Close = tt.close
				if a, err := doWith(hc, req); err != nil || a.status != http.StatusOK {
					t.Fatalf("login = %d, %v, want 200", a.status, err)
				}
			}
			checkStats(t, s, Stats{Logins: 3})
			if got := s.Stats().Connections; got != tt.want {
				t.Errorf("Stats().Connections = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestConnHooksKept(t *testing.T) {
	t.Parallel()
	s := NewUnstartedServer()
	var states, contexts atomic.Int32
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			states.Add(1)
		}
	}
	s.srv.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		contexts.Add(1)
		return ctx
	}
	s.Start()
	t.Cleanup(s.Close)
	addUsers(s)
	login(t, s, "alice", alicePassword)
	if st, ctx, conns := states.Load(), contexts.Load(), s.Stats().Connections; st != 1 || ctx != 1 || conns != 1 {
		t.Errorf("ConnState(StateNew), ConnContext, Stats().Connections = %d, %d, %d, want 1, 1, 1", st, ctx, conns)
	}
}

// TestFreeze: a frozen login is never answered; over HTTP/2 another request
// on its connection is never answered either; a request on a fresh
// connection is answered. The frozen request ends when its client gives up
// on the connection or the server closes.
func TestFreeze(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		h2        bool
		serverEnd bool // the server closes, not the client
	}{
		{"HTTP/1.1, the client gives up", false, false},
		{"HTTP/1.1, the server closes", false, true},
		{"HTTP/2, the client gives up", true, false},
		{"HTTP/2, the server closes", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _, left := startTLS(t, tt.h2)
			s.FailLogin(1, Fault{Freeze: true, Status: http.StatusOK, Body: "ignored"})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			first := freshClient(t, s)
			closeConns := recordDials(first)
			frozen := goDoWith(first, loginRequest(ctx, s, "alice", alicePassword))
			waitStats(t, s, "the frozen login", func(st Stats) bool { return st.Logins == 1 })
			if tt.h2 {
				checkFrozenStream(t, s, first)
			}
			a, err := doWith(freshClient(t, s), loginRequest(t.Context(), s, "alice", alicePassword))
			if err != nil || a.status != http.StatusOK || a.proto != map[bool]int{false: 1, true: 2}[tt.h2] {
				t.Fatalf("login on a fresh connection = %d over HTTP/%d, %v; want 200", a.status, a.proto, err)
			}
			testkit.Await(t, left, "the fresh login's handler")
			checkStats(t, s, Stats{Logins: 2})
			if got := s.Stats().Connections; got != 2 {
				t.Errorf("Stats().Connections = %d, want 2", got)
			}
			giveUp := func() {
				cancel()
				// Over HTTP/2 the client keeps the connection: a stream
				// reset it sent is still unacknowledged.
				closeConns()
			}
			endFrozen(t, s, giveUp, tt.serverEnd, frozen)
			testkit.Await(t, left, "the frozen login's handler")
		})
	}
}

// checkFrozenStream checks that a request through hc, on the HTTP/2
// connection of a frozen call, is never answered.
func checkFrozenStream(t *testing.T, s *Server, hc *http.Client) {
	t.Helper()
	// A short timeout, as a guard: the answer can never come.
	guarded := &http.Client{Transport: hc.Transport, Timeout: 100 * time.Millisecond}
	if a, err := doWith(guarded, loginRequest(t.Context(), s, "alice", alicePassword)); err == nil {
		t.Errorf("login on a frozen connection answered %d, want no answer", a.status)
	}
	if st := s.Stats(); st.Logins != 1 || st.Connections != 1 {
		t.Errorf("after a login on a frozen connection, Stats() = %+v, want 1 login and 1 connection", st)
	}
}

// endFrozen ends the frozen request, by giving up on it or by closing the
// server, and checks that it failed.
func endFrozen(t *testing.T, s *Server, giveUp func(), serverEnd bool, frozen <-chan result) {
	t.Helper()
	if serverEnd {
		closed := make(chan struct{})
		go func() {
			s.Close()
			close(closed)
		}()
		testkit.Await(t, closed, "Close")
	} else {
		giveUp()
	}
	if r := testkit.Await(t, frozen, "the frozen login's error"); r.err == nil {
		t.Errorf("frozen login answered %d, want an error", r.a.status)
	}
}

// recordDials makes hc keep the connections it dials, and returns a
// function that closes them: a client giving up on its connections.
func recordDials(hc *http.Client) (closeAll func()) {
	tr := hc.Transport.(*http.Transport)
	dial := tr.DialContext
	var mu sync.Mutex
	var conns []net.Conn
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}
	return func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
}
