package interop

import (
	"context"
	"crypto/tls"
	"fmt"
	"slices"

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
// sends each RPC with a token from ts, one cfg.TokenSource(ctx) for the
// interceptor's life, and, when the server answers codes.Unauthenticated,
// reports the refused token with econnect.Invalidate and retries the RPC
// once with the token that replaces it.
//
// The token comes from econnect.TokenContext with the RPC's own context, so
// an RPC waits for a login no longer than its deadline allows; per-RPC
// credentials would call ts.Token(), which knows no RPC. Taking the token
// here also keeps a failed login from being mistaken for a refusal by the
// server: it is answered Unauthenticated, as with per-RPC credentials given
// as a dial option, or with the RPC's DeadlineExceeded or Canceled if its
// context ended first.
//
// Invalidate keeps one source, and its limits, for every refusal: the
// source drops a refused token once, however many RPCs report it, logs in
// again at most once a second (less often while the server refuses even
// fresh tokens), and keeps its backoff after failed logins. When it does
// not log in, TokenContext gives back the refused token, and the refusal
// goes back to the caller without a retry that could only be refused
// again. Retrying is safe when the server checks the token before running
// the method, as an interceptor does. Do not also dial with
// grpc.WithPerRPCCredentials: both tokens would be sent.
func reauth(ts oauth2.TokenSource) grpc.UnaryClientInterceptor {
	return func(rctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		tok, err := rpcToken(rctx, ts)
		if err != nil {
			return err
		}
		err = invoke(rctx, method, req, reply, cc, withToken(opts, tok)...)
		if status.Code(err) != codes.Unauthenticated {
			return err
		}
		econnect.Invalidate(ts, tok)
		next, terr := econnect.TokenContext(rctx, ts)
		if terr != nil || next.AccessToken == tok.AccessToken {
			return err // the server's refusal says more than a failed login would
		}
		return invoke(rctx, method, req, reply, cc, withToken(opts, next)...)
	}
}

// rpcToken returns a token for an RPC whose context is rctx, or the gRPC
// status of the failure to get one.
func rpcToken(rctx context.Context, ts oauth2.TokenSource) (*oauth2.Token, error) {
	tok, err := econnect.TokenContext(rctx, ts)
	switch {
	case err == nil:
		return tok, nil
	case rctx.Err() != nil:
		return nil, status.Error(status.FromContextError(rctx.Err()).Code(), err.Error())
	}
	return nil, status.Error(codes.Unauthenticated, err.Error())
}

// withToken returns opts and per-RPC credentials that send tok.
func withToken(opts []grpc.CallOption, tok *oauth2.Token) []grpc.CallOption {
	creds := grpc.PerRPCCredentials(oauth.TokenSource{TokenSource: oauth2.StaticTokenSource(tok)})
	// Clip: opts may share its array with other calls.
	return append(slices.Clip(opts), creds)
}

// Per-RPC credentials cannot tell a token source that the server refused
// its token: after a key rotation, a server restart or a revoked session,
// every RPC would fail with codes.Unauthenticated until the renewal point.
// The reauth interceptor above recovers at once, with one login. Here a
// gRPC health service on loopback checks each bearer token with an
// econnecttest server, which then rotates its key.
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
	ts := cfg.TokenSource(ctx) // one source for the connection's life
	conn, err := grpc.NewClient(g.addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: g.roots})),
		grpc.WithUnaryInterceptor(reauth(ts)))
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
