package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcServer is a gRPC server on loopback with TLS. It serves the standard
// health service behind a unary interceptor that checks bearer tokens with
// the econnecttest server, as a real service would.
type grpcServer struct {
	addr  string
	roots *x509.CertPool // trusts the server's certificate
	stop  func() error   // stops the server, and returns what Serve returned

	// refuseAll, when set, makes the server refuse every token, as a
	// service configured for another issuer would.
	refuseAll atomic.Bool
	// refused counts the RPCs refused with codes.Unauthenticated.
	refused atomic.Int32

	mu     sync.Mutex // guards tokens and held
	tokens map[string]bool
	held   *barrier // holds refusals, or nil
}

// startGRPC starts a grpcServer, stopped when the test ends.
func startGRPC(t *testing.T, srv *econnecttest.Server) *grpcServer {
	t.Helper()
	g, err := serveGRPC(srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Errorf("Serve() error = %v", err)
		}
	})
	return g
}

// serveGRPC starts a grpcServer whose bearer tokens srv checks. The caller
// must call its stop method.
func serveGRPC(srv *econnecttest.Server) (*grpcServer, error) {
	cert, roots, err := selfSigned()
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &grpcServer{addr: lis.Addr().String(), roots: roots, tokens: make(map[string]bool)}
	gs := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})),
		grpc.UnaryInterceptor(g.checkBearer(srv)),
	)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	g.stop = func() error {
		gs.Stop()
		return <-served
	}
	return g, nil
}

// checkBearer refuses, with codes.Unauthenticated, RPCs without exactly one
// bearer token that srv accepts, and records the tokens it accepts.
func (g *grpcServer) checkBearer(srv *econnecttest.Server) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		auth := md.Get("authorization")
		if len(auth) != 1 {
			return nil, status.Errorf(codes.Unauthenticated, "%d authorization values, want 1", len(auth))
		}
		tok := bearer(auth[0])
		name, err := srv.VerifyToken(tok)
		if err == nil && g.refuseAll.Load() {
			err = errors.New("this service refuses every token")
		}
		if err != nil {
			return nil, g.refuse(ctx, err)
		}
		if name != username {
			return nil, status.Errorf(codes.PermissionDenied, "token names %q, want %q", name, username)
		}
		g.mu.Lock()
		g.tokens[tok] = true
		g.mu.Unlock()
		return handler(ctx, req)
	}
}

// refuse counts a refusal and returns it, once the barrier set by
// holdRefusals, if any, lets it go.
func (g *grpcServer) refuse(ctx context.Context, err error) error {
	g.refused.Add(1)
	g.mu.Lock()
	b := g.held
	g.mu.Unlock()
	if b != nil {
		b.arrive(ctx)
	}
	return status.Error(codes.Unauthenticated, err.Error())
}

// holdRefusals holds the next n refusals until all n are made, so that n
// concurrent RPCs all see their token refused before any of them recovers.
// Later refusals go through at once.
func (g *grpcServer) holdRefusals(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = &barrier{left: n, all: make(chan struct{})}
}

// barrier holds those who arrive until a number of them have.
type barrier struct {
	mu   sync.Mutex // guards left
	left int        // arrivals still awaited
	all  chan struct{}
}

// arrive waits until the last awaited arrival, or ctx ends.
func (b *barrier) arrive(ctx context.Context) {
	b.mu.Lock()
	b.left--
	if b.left == 0 {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-ctx.Done():
	}
}

// tokensSeen returns how many different tokens the server has accepted.
func (g *grpcServer) tokensSeen() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.tokens)
}

// dial returns a health client of the server over TLS, closed when the test
// ends.
func (g *grpcServer) dial(t *testing.T, opts ...grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	tlsConfig := &tls.Config{RootCAs: g.roots, MinVersion: tls.VersionTLS12}
	opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)))
	conn, err := grpc.NewClient(g.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// selfSigned returns a new self-signed certificate for 127.0.0.1 and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "econnect interop"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots, nil
}
