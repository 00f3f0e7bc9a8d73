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
// Unauthenticated, it reports the refused token to its source, which logs
// in, and retries once.
func TestGRPCKeyRotation(t *testing.T) {
	srv := newTLSServer(t)
	cfg, ctx := setup(t, srv)
	g := startGRPC(t, srv)
	plain := g.dial(t, grpc.WithPerRPCCredentials(oauth.TokenSource{TokenSource: cfg.TokenSource(ctx)}))
	healing := g.dial(t, grpc.WithUnaryInterceptor(reauth(cfg.TokenSource(ctx))))
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
	for i := range 3 {
		if err := check(ctx, healing); err != nil {
			t.Errorf("reauth, after RotateKey: Check() #%d error = %v", i+1, err)
		}
	}
	checkStats(t, srv, econnecttest.Stats{Logins: 3})
}

// TestGRPCReauthConcurrent: 50 concurrent RPCs that all see their token
// refused after a key rotation all succeed on their retry, for one login.
func TestGRPCReauthConcurrent(t *testing.T) {
	srv := newTLSServer(t)
	cfg, ctx := setup(t, srv)
	g := startGRPC(t, srv)
	client := g.dial(t, grpc.WithUnaryInterceptor(reauth(cfg.TokenSource(ctx))))
	if err := check(ctx, client); err != nil {
		t.Fatalf("before the rotation: Check() error = %v", err)
	}

	const rpcs = 50
	srv.RotateKey()
	g.holdRefusals(rpcs) // no RPC recovers before all have been refused
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range rpcs {
		wg.Go(func() {
			if err := check(ctx, client); err != nil {
				t.Errorf("after RotateKey: Check() error = %v", err)
			}
		})
	}
	wg.Wait()
	if got := g.refused.Load(); got != rpcs {
		t.Errorf("the service refused %d RPCs, want %d", got, rpcs)
	}
	checkStats(t, srv, econnecttest.Stats{Logins: 2})
}

// TestGRPCReauthKeepsBackoff checks that the recovery of reauth does not
// defeat the backoff after a failed login: with a wrong password, RPCs fail
// with codes.Unauthenticated, and only the first one reaches the server.
func TestGRPCReauthKeepsBackoff(t *testing.T) {
	srv := newTLSServer(t)
	cfg, ctx := setup(t, srv)
	cfg.Password = "wrong"
	g := startGRPC(t, srv)
	client := g.dial(t, grpc.WithUnaryInterceptor(reauth(cfg.TokenSource(ctx))))
	for i := range 5 {
		if err := check(ctx, client); status.Code(err) != codes.Unauthenticated {
			t.Errorf("Check() #%d error = %v, want code Unauthenticated", i+1, err)
		}
	}
	// The login backoff lasts at least 0.8 s, far longer than the 5 RPCs.
	checkStats(t, srv, econnecttest.Stats{Logins: 1, Refused: 1})
	if got := g.refused.Load(); got != 0 {
		t.Errorf("the service saw %d RPCs, want 0: none has a token to send", got)
	}
}

// TestGRPCReauthDeadline: an RPC that waits for a login waits no longer
// than its own deadline, 100 ms here, while logins fail or hang, and
// returns a gRPC status: the refusal it saw, or DeadlineExceeded when it
// never had a token. A token source's Token, which knows no RPC, would
// wait out the next attempt of a failed login (1 s later) or a hung login
// (30 s).
func TestGRPCReauthDeadline(t *testing.T) {
	tests := []struct {
		name   string
		warm   bool // log in and rotate the key first, so that the RPC is refused
		fault  econnecttest.Fault
		want   codes.Code
		logins int
	}{
		{"at a cold start, logins hang", false, econnecttest.Fault{Hang: true}, codes.DeadlineExceeded, 1},
		{"after a key rotation, logins answer 503", true, econnecttest.Fault{Status: 503}, codes.Unauthenticated, 2},
		{"after a key rotation, logins hang", true, econnecttest.Fault{Hang: true}, codes.Unauthenticated, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTLSServer(t)
			cfg, ctx := setup(t, srv)
			g := startGRPC(t, srv)
			client := g.dial(t, grpc.WithUnaryInterceptor(reauth(cfg.TokenSource(ctx))))
			if tt.warm {
				if err := check(ctx, client); err != nil {
					t.Fatalf("before the rotation: Check() error = %v", err)
				}
				srv.RotateKey()
			}
			srv.FailLogin(5, tt.fault)

			const deadline = 100 * time.Millisecond
			rctx, cancel := context.WithTimeout(ctx, deadline)
			defer cancel()
			start := time.Now()
			err := check(rctx, client)
			took := time.Since(start)
			if st, ok := status.FromError(err); !ok || st.Code() != tt.want {
				t.Errorf("Check() error = %v, want a status with code %v", err, tt.want)
			}
			// A bound far above the deadline, for a loaded machine, and
			// below the next login attempt.
			if took > deadline+900*time.Millisecond {
				t.Errorf("Check() returned after %v, want by its %v deadline", took, deadline)
			}
			if got := srv.Stats().Logins; got != tt.logins {
				t.Errorf("Stats().Logins = %d, want %d", got, tt.logins)
			}
		})
	}
}

// TestGRPCReauthSpacesRefusals: against a service that refuses every
// token, RPCs over 3 s cause about one login a second, not one per RPC,
// and an RPC is retried only when its source brought a new token.
func TestGRPCReauthSpacesRefusals(t *testing.T) {
	t.Parallel()
	srv := newTLSServer(t)
	cfg, ctx := setup(t, srv)
	g := startGRPC(t, srv)
	g.refuseAll.Store(true)
	client := g.dial(t, grpc.WithUnaryInterceptor(reauth(cfg.TokenSource(ctx))))

	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	start := time.Now()
	rpcs := 0
	for time.Since(start) < 3*time.Second {
		if err := check(ctx, client); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("RPC %d: Check() error = %v, want code Unauthenticated", rpcs+1, err)
		}
		rpcs++
		<-pace.C
	}
	took := time.Since(start)

	logins := srv.Stats().Logins
	// The first login, then one at the first refusal, then one a second at
	// most, doubling while the server refuses each new token.
	if most := 2 + int(took/time.Second); logins < 2 || logins > most {
		t.Errorf("%d RPCs over %v caused %d logins, want 2 to %d", rpcs, took.Round(time.Millisecond), logins, most)
	}
	// Each RPC is sent once, and once more after each login a refusal
	// caused: the first login was the first RPC's own.
	if got, want := int(g.refused.Load()), rpcs+logins-1; got != want {
		t.Errorf("the service saw %d RPCs, want %d: %d RPCs and %d retries", got, want, rpcs, logins-1)
	}
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
