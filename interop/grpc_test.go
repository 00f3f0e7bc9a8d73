package interop

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/oauth"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestGRPCRenewals calls a gRPC service with cfg.TokenSource as per-RPC
// credentials across several renewals: every RPC succeeds, and the service
// sees every renewed token.
//
// It waits in real time, about 5 s: the token source and oauth2's cache
// decide on the wall clock, which a test outside the package cannot move.
// Tokens live 3 s, the shortest whole-second lifetime for which the renewal
// at half life (1.5 s after the request was sent) still comes before the
// server's own expiry (more than 2 s after it, since iat is whole seconds).
func TestGRPCRenewals(t *testing.T) {
	t.Parallel()
	srv := newTLSServer(t)
	srv.SetLifetime(3 * time.Second)
	cfg, ctx := setup(t, srv)
	g := startGRPC(t, srv)
	client := g.dial(t, grpc.WithPerRPCCredentials(oauth.TokenSource{TokenSource: cfg.TokenSource(ctx)}))

	const renewals = 3
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	pace := time.NewTicker(50 * time.Millisecond)
	defer pace.Stop()
	rpcs := 0
	for g.tokensSeen() < 1+renewals {
		if err := check(ctx, client); err != nil {
			t.Fatalf("RPC %d: Check() error = %v; Stats() = %+v", rpcs+1, err, srv.Stats())
		}
		rpcs++
		select {
		case <-pace.C:
		case <-ctx.Done():
			t.Fatalf("after %d RPCs the service saw %d tokens, want %d; Stats() = %+v",
				rpcs, g.tokensSeen(), 1+renewals, srv.Stats())
		}
	}
	if st := srv.Stats(); st.Logins != 1 || st.Renewals < renewals || st.Refused != 0 {
		t.Errorf("Stats() = %+v, want 1 login, at least %d renewals, none refused", st, renewals)
	}
}

// TestGRPCKeyRotation pins down what a key rotation on the server (as after
// a restart, or a revoked session) does to gRPC calls, and shows the
// recovery.
//
// Per-RPC credentials cannot tell a token source that its token was refused,
// so plain oauth.TokenSource credentials keep sending the refused token and
// every RPC fails with codes.Unauthenticated until the renewal point, where
// the refused renewal makes the source log in again: up to half the token's
// lifetime. The recovery is reauth, the interceptor of Example_reauth: on
// Unauthenticated, replace the source with a fresh cfg.TokenSource, which
// logs in, and retry once.
func TestGRPCKeyRotation(t *testing.T) {
	srv := newTLSServer(t)
	cfg, ctx := setup(t, srv)
	g := startGRPC(t, srv)
	plain := g.dial(t, grpc.WithPerRPCCredentials(oauth.TokenSource{TokenSource: cfg.TokenSource(ctx)}))
	healing := g.dial(t, grpc.WithUnaryInterceptor(reauth(ctx, cfg)))
	for name, c := range map[string]healthpb.HealthClient{"plain": plain, "reauth": healing} {
		if err := check(ctx, c); err != nil {
			t.Fatalf("%s: Check() error = %v", name, err)
		}
	}
	checkStats(t, srv, econnecttest.Stats{Logins: 2})

	srv.RotateKey()
	for i := range 3 {
		if err := check(ctx, plain); status.Code(err) != codes.Unauthenticated {
			t.Errorf("plain, after RotateKey: Check() #%d error = %v, want code Unauthenticated", i+1, err)
		}
	}
	checkStats(t, srv, econnecttest.Stats{Logins: 2}) // the plain source never learns

	// Concurrent RPCs, whether they see the refusal or start after the
	// source was replaced, all succeed for one new login.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := check(ctx, healing); err != nil {
				t.Errorf("reauth, after RotateKey: Check() error = %v", err)
			}
		})
	}
	wg.Wait()
	checkStats(t, srv, econnecttest.Stats{Logins: 3})
}

// TestGRPCReauthKeepsBackoff checks that the recovery of reauth does not
// defeat the backoff after a failed login: with a wrong password, RPCs fail
// with codes.Unauthenticated, and only the first one reaches the server.
func TestGRPCReauthKeepsBackoff(t *testing.T) {
	srv := newTLSServer(t)
	cfg, ctx := setup(t, srv)
	cfg.Password = "wrong"
	g := startGRPC(t, srv)
	client := g.dial(t, grpc.WithUnaryInterceptor(reauth(ctx, cfg)))
	for i := range 5 {
		if err := check(ctx, client); status.Code(err) != codes.Unauthenticated {
			t.Errorf("Check() #%d error = %v, want code Unauthenticated", i+1, err)
		}
	}
	// The login backoff lasts at least 0.8 s, far longer than the 5 RPCs.
	checkStats(t, srv, econnecttest.Stats{Logins: 1, Refused: 1})
}

// check calls the health service once.
func check(ctx context.Context, c healthpb.HealthClient) error {
	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %v, want SERVING", resp.GetStatus())
	}
	return nil
}
