package interop

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/oauth"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// reauth is the recovery recipe for gRPC: a unary client interceptor that
// sends each RPC with a token from the current token source and, when the
// server answers codes.Unauthenticated, replaces that source with a fresh
// cfg.TokenSource(ctx), which logs in again, and retries the RPC once.
//
// It takes the token itself, rather than leaving that to per-RPC
// credentials, so that a failed login, which credentials would report as a
// gRPC status (Unauthenticated as a dial option, Internal as a call option),
// is never mistaken for a refusal by the server: replacing the source then
// would log in again on every RPC and defeat its backoff. A failed login is
// answered Unauthenticated, as with the dial option. Compare-and-swap
// replaces each refused source once, however many RPCs saw it refused, so
// concurrent refusals cost one login; an idle source holds no goroutine, so
// dropping it leaks nothing. Retrying is safe when the server checks the
// token before running the method, as an interceptor does. Do not also dial
// with grpc.WithPerRPCCredentials: both tokens would be sent.
func reauth(ctx context.Context, cfg *econnect.Config) grpc.UnaryClientInterceptor {
	fresh := func() *oauth2.TokenSource {
		ts := cfg.TokenSource(ctx)
		return &ts
	}
	var cur atomic.Pointer[oauth2.TokenSource]
	cur.Store(fresh())
	return func(rctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		call := func(ts *oauth2.TokenSource) (refused bool, err error) {
			tok, err := (*ts).Token()
			if err != nil {
				return false, status.Error(codes.Unauthenticated, err.Error())
			}
			creds := grpc.PerRPCCredentials(oauth.TokenSource{TokenSource: oauth2.StaticTokenSource(tok)})
			// Clip: opts may share its array with other calls.
			err = invoke(rctx, method, req, reply, cc, append(slices.Clip(opts), creds)...)
			return status.Code(err) == codes.Unauthenticated, err
		}
		ts := cur.Load()
		if refused, err := call(ts); !refused {
			return err
		}
		cur.CompareAndSwap(ts, fresh())
		_, err := call(cur.Load())
		return err
	}
}

// Per-RPC credentials cannot tell a token source that the server refused
// its token: after a key rotation, a server restart or a revoked session,
// every RPC would fail with codes.Unauthenticated until the source's
// renewal point. The reauth interceptor above recovers at once, with one
// login. Here a gRPC health service on loopback checks each bearer token
// with an econnecttest server, which then rotates its key.
func Example_reauth() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")
	g, err := serveGRPC(srv) // TLS on 127.0.0.1; g.roots trusts its certificate
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.stop()

	ctx := context.Background()
	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	conn, err := grpc.NewClient(g.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: g.roots})),
		grpc.WithUnaryInterceptor(reauth(ctx, cfg)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)

	check := func(step string) {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			fmt.Println(step+":", status.Code(err))
			return
		}
		fmt.Println(step+":", resp.GetStatus())
	}
	check("first RPC")
	srv.RotateKey() // every token issued so far is refused from now on
	check("after a key rotation")
	fmt.Println("logins:", srv.Stats().Logins)
	// Output:
	// first RPC: SERVING
	// after a key rotation: SERVING
	// logins: 2
}
