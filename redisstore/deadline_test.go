package redisstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// secret stands for a token in the values the tests save: no error may
// hold it.
const secret = "SECRET-TOKEN-VALUE"

// calls are the Store's methods, each as one call.
var calls = []struct {
	name string
	call func(ctx context.Context, s *Store) error
}{
	{"Load", func(ctx context.Context, s *Store) error {
		_, err := s.Load(ctx, "k")
		return err
	}},
	{"Save", func(ctx context.Context, s *Store) error {
		return s.Save(ctx, "k", []byte(secret), time.Hour)
	}},
	{"Delete", func(ctx context.Context, s *Store) error {
		return s.Delete(ctx, "k")
	}},
	{"Lock", func(ctx context.Context, s *Store) error {
		unlock, err := s.Lock(ctx, "k", time.Minute)
		if err == nil {
			unlock()
		}
		return err
	}},
}

// returns runs f and fails the test unless it returns within 10 s: far
// longer than any bound under test, far shorter than the client's own
// minute.
func returns(t *testing.T, what string, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10 s", what)
		return nil
	}
}

func TestEveryCallReturnsByItsDeadlineWhenRedisNeverAnswers(t *testing.T) {
	addr := blackHole(t)
	// Timeouts of a minute, and no ContextTimeoutEnabled: go-redis alone
	// would wait that long.
	client := newClient(t, &redis.Options{Addr: addr, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	s := New(client, "test:")
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			err := returns(t, c.name+"()", func() error { return c.call(ctx, s) })
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s() error = %v, want DeadlineExceeded", c.name, err)
			}
		})
	}
}

// blackHole returns the address of a loopback listener that accepts
// connections and never answers; it closes them when the test ends.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn // guarded by mu until accepting is closed
	)
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-accepting
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestUnlockReturnsWhenRedisStopsAnswering(t *testing.T) {
	s, g, _ := gatedStore(t)
	unlock := mustLock(t, s, "k", time.Minute)
	g.shut()
	returns(t, "unlock()", func() error { unlock(); return nil })
}

func TestALeaseTakenAfterTheCallerGaveUpIsReleased(t *testing.T) {
	s, g, mr := gatedStore(t)
	g.shut() // Redis runs the SET, its answer is held back
	_, err := lockWithin(t, s, "k", time.Minute, 200*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock() with its answer held back error = %v, want DeadlineExceeded", err)
	}
	if !mr.Exists(s.leaseKey("k")) {
		t.Fatal("the lease was not taken while its answer was held back: nothing to test")
	}
	g.open()
	// The lease would last a minute, and miniredis's clock does not move:
	// only its release lets this Lock through.
	mustLock(t, s, "k", time.Minute)()
}

// gatedStore returns a Store on a miniredis of its own, through
// connections whose answers g can hold back, with a first connection made.
func gatedStore(t *testing.T) (*Store, *gate, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	g := newGate()
	client := newClient(t, &redis.Options{
		Addr:         mr.Addr(),
		Dialer:       g.dial,
		ReadTimeout:  time.Minute,
		WriteTimeout: time.Minute,
	})
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	return New(client, "test:"), g, mr
}

// A gate holds back what Redis answers on the connections dialled through
// it while it is shut: their reads wait until it opens or they are closed,
// whatever their deadlines.
type gate struct {
	mu     sync.Mutex
	opened chan struct{} // closed while the gate is open; guarded by mu
}

func newGate() *gate {
	g := &gate{opened: make(chan struct{})}
	close(g.opened)
	return g
}

func (g *gate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.opened = make(chan struct{})
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.opened)
}

func (g *gate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.opened
}

// dial is a go-redis Dialer.
func (g *gate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &gatedConn{Conn: c, gate: g, closed: make(chan struct{})}, nil
}

type gatedConn struct {
	net.Conn
	gate   *gate
	once   sync.Once
	closed chan struct{}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	select {
	case <-c.gate.wait():
		return c.Conn.Read(p)
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *gatedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func TestCallsFailWhenRedisIsKilled(t *testing.T) {
	srv := startRedis(t)
	// No retries, so that each call fails at its first error.
	client := newClient(t, &redis.Options{Addr: srv.addr, MaxRetries: -1, DialerRetries: 1})
	s := New(client, "test:")
	if err := s.Save(t.Context(), "k", []byte(secret), time.Hour); err != nil {
		t.Fatal(err)
	}
	unlock := mustLock(t, s, "held", time.Minute)
	srv.stop()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			err := returns(t, c.name+"()", func() error { return c.call(ctx, s) })
			switch {
			case err == nil:
				t.Fatalf("%s() with Redis killed error = nil, want an error", c.name)
			case errors.Is(err, context.DeadlineExceeded):
				t.Errorf("%s() with Redis killed error = %v, want it to fail, not wait", c.name, err)
			case strings.Contains(err.Error(), secret):
				t.Errorf("%s() error = %q, holds the value", c.name, err)
			case !strings.HasPrefix(err.Error(), "econnect: redisstore: "):
				t.Errorf("%s() error = %q, want the prefix %q", c.name, err, "econnect: redisstore: ")
			}
		})
	}
	returns(t, "unlock()", func() error { unlock(); return nil })
}
