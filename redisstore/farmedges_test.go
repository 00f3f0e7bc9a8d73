package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/redis/go-redis/v9"
)

// The tests of this file pin down, with a source or two and exact steps,
// what the farm runs turned up.

// A peer renews the farm's token, and the server's key rotates before this
// source reaches its own renewal point: its request with the token before
// the peer's is refused, and the token the peer saved, issued under the old
// key too, is refused as well. The source must go on to a token the new
// key signed, as it does when no peer renewed: no request fails.
func TestARotationJustAfterAPeerRenewedCostsNoRequest(t *testing.T) {
	t.Parallel()
	f := newFarm(t, 0, leased, sharedRedis(t).addr)
	// 5 usable seconds: the peer renews 2.5 to 3.1 s into them; the late
	// source, with 1 s of EarlyExpiry (the floor of twice the 0.5 s safety
	// margin), 4 s into them.
	f.srv.SetLifetime(6 * time.Second)
	peer := f.join(nil)
	late := f.join(func(c *econnect.Config) { c.EarlyExpiry = time.Second })

	first := tokenOf(t, peer)
	f.flush(t)
	if got := tokenOf(t, late); got != first {
		t.Fatal("the late source did not take the peer's token from the store")
	}
	st, _ := econnect.StatusOf(peer.ts)
	hold(time.Until(st.RenewAt))
	tokenOf(t, peer) // due: its renewal starts
	f.flush(t)
	if got := f.srv.Stats().Renewals; got != 1 {
		t.Fatalf("server saw %d renewals, want the peer's 1", got)
	}
	if st, _ := econnect.StatusOf(late.ts); !time.Now().Before(st.RenewAt) || st.Adopted != 1 {
		t.Fatalf("late source: %+v, want it holding the first token, not yet due", st)
	}

	f.srv.RotateKey()
	url := f.srv.URL + "/api/v1/work"
	for i := range 3 {
		if err := late.send(t.Context(), url); err != nil {
			t.Errorf("request %d of the late source after the rotation: %v, want 200", i+1, err)
		}
	}
	if got := f.srv.Stats().Logins; got > 2 {
		t.Errorf("server saw %d logins, want at most 2: the first, and one after the rotation", got)
	}
}

// tokenOf returns the access token m's source hands out.
func tokenOf(t *testing.T, m *member) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	tok, err := econnect.TokenContext(ctx, m.ts)
	if err != nil {
		t.Fatalf("TokenContext() error = %v", err)
	}
	return tok.AccessToken
}

// Behind a Redis that stopped answering, each load before a renewal waits
// out the store's bound of about a second; with a token of 3 s (2 usable),
// that is past the last moment a renewal may be sent, so the source logs in
// instead. Its Status counts the calls it made, as the server does.
func TestStatusCountsTheAuthCallsTheServerSaw(t *testing.T) {
	t.Parallel()
	srv := econnecttest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddUser(farmUser, farmPassword)
	srv.SetLifetime(3 * time.Second)
	client := newClient(t, &redis.Options{Addr: blackHole(t)})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg := &econnect.Config{BaseURL: srv.URL, Username: farmUser, Password: farmPassword, Store: New(client, "test:")}
	ts := cfg.TokenSource(ctx)

	if _, err := econnect.TokenContext(t.Context(), ts); err != nil {
		t.Fatalf("TokenContext() error = %v", err)
	}
	st, _ := econnect.StatusOf(ts)
	hold(time.Until(st.RenewAt))
	if _, err := econnect.TokenContext(t.Context(), ts); err != nil { // due: a renewal starts
		t.Fatalf("TokenContext() at the renewal point error = %v", err)
	}
	flushCtx, flushCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer flushCancel()
	if err := econnect.Flush(flushCtx, ts); err != nil {
		t.Fatalf("Flush() error = %v", err)
	}

	saw := srv.Stats()
	st, _ = econnect.StatusOf(ts)
	if st.Logins != saw.Logins || st.Renewals != saw.Renewals {
		t.Errorf("StatusOf() counts %d logins and %d renewals, the server saw %d and %d",
			st.Logins, st.Renewals, saw.Logins, saw.Renewals)
	}
}
