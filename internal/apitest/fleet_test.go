package apitest_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

// fleetSize is how many sources TestRestartOfManySourcesMakesNoAuthCall
// restarts: few enough by default for every run, and 1000 for the figures
// the README gives (go test -run TestRestartOfMany -args -fleet=1000).
var fleetSize = flag.Int("fleet", 200, "how many sources, one account each, the fleet restart test restarts")

// fleetWorkers is how many sources of a fleet start at once, as a
// gateway process bringing up its cameras would.
const fleetWorkers = 32

// A fleet of sources, one account each, that logged in and saved to one
// DirStore restarts without an auth call while its tokens are usable:
// each new source takes the token its predecessor saved. The test logs
// how long both took.
func TestRestartOfManySourcesMakesNoAuthCall(t *testing.T) {
	n := *fleetSize
	srv := econnecttest.NewServer()
	t.Cleanup(srv.Close)
	accts := make([]account, n)
	for i := range accts {
		accts[i] = account{srv.URL, fmt.Sprintf("camera-%04d", i), fmt.Sprintf("pw-SENTINEL-%04d", i)}
		srv.AddUser(accts[i].user, accts[i].password)
	}
	store := econnect.DirStore(filepath.Join(t.TempDir(), "tokens"))
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())

	first, loggedIn := startFleet(ctx, t, accts, store)
	if got := srv.Stats(); got.Logins != n || got.Renewals != 0 {
		t.Fatalf("%d sources made %d logins and %d renewals, want %d and 0", n, got.Logins, got.Renewals, n)
	}
	again, restarted := startFleet(ctx, t, accts, store)
	got := srv.Stats()
	t.Logf("%d sources: %d logins, saved, in %v; restarted with %d more auth calls in %v",
		n, n, loggedIn.Round(time.Millisecond), got.Logins+got.Renewals-n, restarted.Round(time.Millisecond))
	if got.Logins != n || got.Renewals != 0 {
		t.Errorf("the restart made %d logins and %d renewals, want none", got.Logins-n, got.Renewals)
	}
	for i, s := range again {
		if s.token != first[i].token {
			t.Errorf("restarted source %d has another token than the one saved before the restart", i)
		}
		if s.st.Logins != 0 || s.st.Adopted != 1 {
			t.Errorf("restarted source %d made %d logins and adopted %d tokens, want 0 and 1", i, s.st.Logins, s.st.Adopted)
		}
	}
	wantPrivateStore(t, string(store), n)
}

// A started is what a source of a fleet got.
type started struct {
	token string
	st    econnect.Status
}

// startFleet makes a source for each account, fleetWorkers at a time, has
// each take a token and wait for its store, and returns what each got and
// how long it all took.
func startFleet(ctx context.Context, t *testing.T, accts []account, store econnect.Store) ([]started, time.Duration) {
	out := make([]started, len(accts))
	next := make(chan int)
	var wg sync.WaitGroup
	begin := time.Now()
	for range fleetWorkers {
		wg.Go(func() {
			for i := range next {
				a := accts[i]
				cfg := econnect.Config{BaseURL: a.url, Username: a.user, Password: a.password, Store: store}
				out[i] = startSource(ctx, t, &cfg)
			}
		})
	}
	for i := range accts {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, time.Since(begin)
}

// startSource takes a token from a new source of cfg and waits for its
// store. It reports failures with t.Errorf: it runs off the test goroutine.
func startSource(ctx context.Context, t *testing.T, cfg *econnect.Config) started {
	ts := cfg.TokenSource(ctx)
	tok, err := econnect.TokenContext(ctx, ts)
	if err != nil {
		t.Errorf("TokenContext() for %s error = %v, want nil", cfg.Username, err)
		return started{}
	}
	if err := econnect.Flush(ctx, ts); err != nil {
		t.Errorf("Flush() for %s error = %v, want nil", cfg.Username, err)
	}
	st, _ := econnect.StatusOf(ts)
	return started{token: tok.AccessToken, st: st}
}
