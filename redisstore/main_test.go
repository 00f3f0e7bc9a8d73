package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis logs failed dials to stderr; the tests that cause them check
	// the errors themselves.
	redis.SetLogger(quiet{})
	code := m.Run()
	if shared.srv != nil {
		shared.srv.stop()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// A backend is a Redis the behaviour tests run against, with a Store on
// it under a prefix of its own.
type backend struct {
	client redis.UniversalClient
	store  *Store
	// lapse lets d pass on the server's clock. miniredis only moves when
	// told to; a real server's time passes by itself, and a Lock that waits
	// out a lease polls until it lapses.
	lapse func(d time.Duration)
}

// forEachBackend runs test against miniredis and against a real
// redis-server.
func forEachBackend(t *testing.T, test func(t *testing.T, b *backend)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) { test(t, newMiniredis(t)) })
	t.Run("redis-server", func(t *testing.T) { test(t, newRealRedis(t)) })
}

// newMiniredis returns a backend on a miniredis of its own.
func newMiniredis(t *testing.T) *backend {
	t.Helper()
	mr := miniredis.RunT(t)
	client := newClient(t, &redis.Options{Addr: mr.Addr()})
	return &backend{client: client, store: New(client, "test:"), lapse: mr.FastForward}
}

// prefixes makes the prefix of each backend on the shared redis-server
// unique, so that no test sees another's keys, with -count too.
var prefixes atomic.Int64

// newRealRedis returns a backend on the redis-server the tests share.
func newRealRedis(t *testing.T) *backend {
	t.Helper()
	srv := sharedRedis(t)
	client := newClient(t, &redis.Options{Addr: srv.addr})
	prefix := "test" + strconv.FormatInt(prefixes.Add(1), 10) + ":"
	return &backend{client: client, store: New(client, prefix), lapse: func(time.Duration) {}}
}

// newClient returns a client closed when the test ends.
func newClient(t *testing.T, opt *redis.Options) *redis.Client {
	t.Helper()
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// shared is the redis-server the behaviour tests share, started by the
// first that needs it and stopped by TestMain.
var shared struct {
	once sync.Once
	srv  *redisServer
	err  error
}

func sharedRedis(t *testing.T) *redisServer {
	t.Helper()
	path := redisServerPath(t)
	shared.once.Do(func() { shared.srv, shared.err = startRedisServer(path) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// startRedis starts a redis-server of the test's own, stopped when the test
// ends, for tests that stop it themselves.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	srv, err := startRedisServer(redisServerPath(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	return srv
}

// restartRedis starts a redis-server of the test's own where stopped
// listened, stopped when the test ends.
func restartRedis(t *testing.T, stopped *redisServer) *redisServer {
	t.Helper()
	_, port, err := net.SplitHostPort(stopped.addr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startRedisServerOn(redisServerPath(t), port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.stop)
	return srv
}

// redisServerPath finds redis-server on PATH, or skips the test, unless
// ECONNECT_REQUIRE_REDIS=1 says a missing server is a failure (as in CI).
func redisServerPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	switch {
	case err == nil:
		return path
	case os.Getenv("ECONNECT_REQUIRE_REDIS") == "1":
		t.Fatalf("redis-server is required (ECONNECT_REQUIRE_REDIS=1) but: %v", err)
	default:
		t.Skipf("redis-server not on PATH (%v); ECONNECT_REQUIRE_REDIS=1 makes this a failure", err)
	}
	return ""
}

// A redisServer is a redis-server process on a loopback port, without
// persistence.
type redisServer struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been waited for
	output bytes.Buffer  // what it printed, for the error when it fails to start
	once   sync.Once
}

// startRedisServer starts redis-server on a free loopback port and returns
// once it answers PING.
func startRedisServer(path string) (*redisServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startRedisServerOn(path, port)
}

// startRedisServerOn starts redis-server on port of 127.0.0.1, where one
// that was stopped listened: a Redis that comes back empty after a crash.
func startRedisServerOn(path, port string) (*redisServer, error) {
	srv := &redisServer{addr: net.JoinHostPort("127.0.0.1", port), exited: make(chan struct{})}
	srv.cmd = exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	srv.cmd.Stdout, srv.cmd.Stderr = &srv.output, &srv.output
	if err := srv.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	go func() {
		srv.cmd.Wait()
		close(srv.exited)
	}()
	if err := srv.waitReady(10 * time.Second); err != nil {
		srv.stop()
		return nil, err
	}
	return srv, nil
}

// freePort returns a loopback port nothing listened on a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// waitReady pings the server until it answers, exits, or limit passes.
func (srv *redisServer) waitReady(limit time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: srv.addr, MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	deadline := time.After(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-srv.exited:
			return fmt.Errorf("redis-server on %s exited: %s", srv.addr, bytes.TrimSpace(srv.output.Bytes()))
		case <-deadline:
			return fmt.Errorf("redis-server on %s does not answer PING: %v", srv.addr, err)
		case <-tick.C:
		}
	}
}

// stop kills the server and waits for it to exit; it may be called again.
func (srv *redisServer) stop() {
	srv.once.Do(func() { srv.cmd.Process.Kill() })
	<-srv.exited
}
