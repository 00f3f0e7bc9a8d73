package econnecttest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
)

// freezeListener hands out connections that a Fault can freeze.
type freezeListener struct {
	net.Listener
}

func (l freezeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &freezeConn{Conn: c, frozen: make(chan struct{}), gone: make(chan struct{}), dead: make(chan struct{})}, nil
}

// freezeConn is a connection that can be frozen: from then on nothing more
// is read from it or written to it, as over a network path that drops
// every packet. Reads still drain the socket, unseen, so that the server
// learns when the client gives up and closes it.
type freezeConn struct {
	net.Conn
	frozen     chan struct{} // closed by freeze
	freezeOnce sync.Once
	gone       chan struct{} // closed when a frozen read meets the end of the connection
	goneOnce   sync.Once
	dead       chan struct{} // closed by Close
	closeOnce  sync.Once
	closeErr   error
}

// freeze freezes the connection until it is closed, by its server or its
// client; closed is the server's channel of Close.
func (c *freezeConn) freeze(closed <-chan struct{}) {
	c.freezeOnce.Do(func() {
		close(c.frozen)
		go func() {
			select {
			case <-c.dead:
			case <-closed:
				c.Close() // releases the server's reads and writes on it
			}
		}()
	})
}

func (c *freezeConn) isFrozen() bool {
	select {
	case <-c.frozen:
		return true
	default:
		return false
	}
}

// Read reads as the connection does until it is frozen. A read under way
// when it freezes returns what it read only if the freeze came after.
func (c *freezeConn) Read(p []byte) (int, error) {
	if c.isFrozen() {
		return 0, c.drain()
	}
	n, err := c.Conn.Read(p)
	if c.isFrozen() {
		if err != nil {
			return 0, c.ended(err)
		}
		return 0, c.drain()
	}
	return n, err
}

// drain reads and drops what comes on the connection, and returns the
// error that ends the read: a deadline, the server closing it, or the
// client.
func (c *freezeConn) drain() error {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Conn.Read(buf); err != nil {
			return c.ended(err)
		}
	}
}

// ended notes that a frozen read met err, and returns it. Unless err is a
// timeout, the connection is of no more use, and frozen writes end.
func (c *freezeConn) ended(err error) error {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.goneOnce.Do(func() { close(c.gone) })
	}
	return err
}

// Write writes as the connection does until it is frozen. Then it blocks
// until the connection is closed or its client has closed it.
func (c *freezeConn) Write(p []byte) (int, error) {
	if !c.isFrozen() {
		return c.Conn.Write(p)
	}
	select {
	case <-c.dead:
	case <-c.gone:
	}
	return 0, net.ErrClosed
}

func (c *freezeConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.dead)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// connKey is the context key of a request's *freezeConn.
type connKey struct{}

// hookConns makes cfg count the connections it accepts in
// Stats.Connections and give each request its connection, for Freeze. It
// keeps the hooks cfg has.
func (s *Server) hookConns(cfg *http.Server) {
	state, connCtx := cfg.ConnState, cfg.ConnContext
	cfg.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.count(&s.stats.Connections)
		}
		if state != nil {
			state(c, st)
		}
	}
	cfg.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connCtx != nil {
			ctx = connCtx(ctx, c)
		}
		if fc := unwrapConn(c); fc != nil {
			ctx = context.WithValue(ctx, connKey{}, fc)
		}
		return ctx
	}
}

// unwrapConn returns the *freezeConn beneath c (a *tls.Conn over it, for
// one), or nil.
func unwrapConn(c net.Conn) *freezeConn {
	for {
		if fc, ok := c.(*freezeConn); ok {
			return fc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
}

// freeze freezes the connection a request arrived on.
func (s *Server) freeze(ctx context.Context) {
	if fc, ok := ctx.Value(connKey{}).(*freezeConn); ok {
		fc.freeze(s.closed)
	}
}
