package redisstore

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
)

var (
	farmEnabled   = flag.Bool("farm", false, "run the farm benchmark (TestFarmTable), and the farm tests over -farm.lifetimes token lifetimes")
	farmLifetimes = flag.Int("farm.lifetimes", 10, "how many token lifetimes the farm runs last with -farm (without it: 3)")
	farmOut       = flag.String("farm.out", "", "also write the farm benchmark's Markdown table to this file")
)

// lifetimes is how many token lifetimes a farm under load runs for: a few
// in every run, -farm.lifetimes with -farm.
func lifetimes() int {
	if *farmEnabled {
		return *farmLifetimes
	}
	return 3
}

const (
	// lifetime is the lifetime of the tokens the farms' servers issue:
	// short, so that runs of several lifetimes take seconds. Its claims are
	// whole seconds, so a source uses 3 s of it and renews each token 1.5 to
	// 1.9 s after asking for it.
	lifetime = 4 * time.Second
	// pace is the mean time between two requests of one source: a few
	// requests a second each.
	pace = 250 * time.Millisecond
	// requestTimeout bounds one request of the load, the wait for a token
	// included: far longer than any wait the tests expect.
	requestTimeout = 10 * time.Second

	farmUser     = "farm"
	farmPassword = "farm-password"
)

// storeKind is what a farm's sources keep their tokens in.
type storeKind int

const (
	noStore  storeKind = iota // memory only: each source logs in and renews on its own
	unlocked                  // Redis, without the lease: sources share tokens, not logins in flight
	leased                    // Redis with the lease: what redisstore.New gives
)

func (k storeKind) String() string {
	return [...]string{"no store", "store without lease", "store with lease"}[k]
}

// unleased hides the Lock of the Store it holds: only the three methods of
// econnect.Store are promoted, so a source sees a store without the lease.
type unleased struct{ econnect.Store }

// A farm is n token sources logging in as one user to one server of its
// own, each with its own Config, HTTP transport and Redis client, as n
// processes would: one source per process.
type farm struct {
	srv     *econnecttest.Server
	members []*member
	tally   tally
	kind    storeKind
	addr    string // the Redis, unless kind is noStore
	prefix  string // the farm's keys in it
	ctx     context.Context
	cancel  context.CancelFunc // ends ctx, which the sources were made with
}

// A member is one source of a farm and the client that sends its requests.
type member struct {
	client *http.Client
	ts     oauth2.TokenSource // the Client's source, for StatusOf and Flush
	tr     *http.Transport
	redis  *redis.Client // nil without a store
}

// farmPrefixes keeps each farm's keys apart on a Redis that farms share.
var farmPrefixes atomic.Int64

// newFarm starts a server with the farm's user and a protected endpoint,
// and n sources on it keeping their tokens as kind says, in the Redis at
// addr. Everything is closed when the test ends.
func newFarm(t *testing.T, n int, kind storeKind, addr string) *farm {
	t.Helper()
	f := &farm{srv: econnecttest.NewServer(), kind: kind, addr: addr,
		prefix: "farm" + strconv.FormatInt(farmPrefixes.Add(1), 10) + ":"}
	f.srv.AddUser(farmUser, farmPassword)
	f.srv.SetLifetime(lifetime)
	f.srv.Handle("GET /api/v1/work", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	f.ctx, f.cancel = context.WithCancel(context.Background())
	t.Cleanup(f.close)
	for range n {
		f.join(nil)
	}
	return f
}

// join adds a member: a Config of its own, changed by configure if it is
// not nil, and a Redis client of its own unless the farm has no store.
func (f *farm) join(configure func(*econnect.Config)) *member {
	m := &member{tr: http.DefaultTransport.(*http.Transport).Clone()}
	cfg := &econnect.Config{BaseURL: f.srv.URL, Username: farmUser, Password: farmPassword}
	if f.kind != noStore {
		m.redis = redis.NewClient(&redis.Options{Addr: f.addr})
		cfg.Store = New(m.redis, f.prefix)
		if f.kind == unlocked {
			cfg.Store = unleased{cfg.Store}
		}
	}
	if configure != nil {
		configure(cfg)
	}
	m.client = cfg.Client(context.WithValue(f.ctx, oauth2.HTTPClient, &http.Client{Transport: m.tr}))
	m.ts = m.client.Transport.(*econnect.Transport).Source
	f.members = append(f.members, m)
	return m
}

// close waits for each source's store work, then closes the sources'
// connections and Redis clients, and the server.
func (f *farm) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, m := range f.members {
		econnect.Flush(ctx, m.ts)
	}
	f.cancel()
	for _, m := range f.members {
		m.tr.CloseIdleConnections()
		if m.redis != nil {
			m.redis.Close()
		}
	}
	f.srv.Close()
}

// flush waits until every source has done its store work, so that the
// server's counts include every auth call the load caused.
func (f *farm) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i, m := range f.members {
		if err := econnect.Flush(ctx, m.ts); err != nil {
			t.Errorf("Flush() of source %d error = %v", i, err)
		}
	}
}

// status sums the counts of every source.
func (f *farm) status() econnect.Status {
	var sum econnect.Status
	for _, m := range f.members {
		st, _ := econnect.StatusOf(m.ts)
		sum.Logins += st.Logins
		sum.Renewals += st.Renewals
		sum.Adopted += st.Adopted
	}
	return sum
}

// startLoads makes every source of the farms send a request at once, as a
// farm started together does, then one about every pace, and returns what
// stops them: it waits for the last request to answer. The test's end
// stops them too, if it comes first.
func startLoads(t *testing.T, farms ...*farm) (stop func()) {
	ctx := t.Context()
	begin, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range farms {
		url := f.srv.URL + "/api/v1/work"
		for _, m := range f.members {
			wg.Go(func() {
				<-begin
				m.load(ctx, done, url, &f.tally)
			})
		}
	}
	close(begin)
	var once sync.Once
	stop = func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
	t.Cleanup(stop)
	return stop
}

// load sends a request to url, then one at intervals drawn around pace,
// until done is closed; a request under way when it is still gets its
// answer.
func (m *member) load(ctx context.Context, done <-chan struct{}, url string, tl *tally) {
	tl.record(m.send(ctx, url))
	timer := time.NewTimer(pace/2 + rand.N(pace))
	defer timer.Stop()
	for {
		select {
		case <-done:
			return
		case <-timer.C:
		}
		tl.record(m.send(ctx, url))
		timer.Reset(pace/2 + rand.N(pace))
	}
}

// send makes one request and returns what went wrong, if anything: an
// error, or a status other than 200.
func (m *member) send(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", req.URL.Path, resp.Status)
	}
	return nil
}

// A tally counts the requests of a farm's load, and keeps the first few
// failures to show.
type tally struct {
	sent, failed atomic.Int64
	mu           sync.Mutex
	first        []string // guarded by mu
}

func (t *tally) record(err error) {
	t.sent.Add(1)
	if err == nil {
		return
	}
	t.failed.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.first) < 3 {
		t.first = append(t.first, err.Error())
	}
}

// checkEveryRequestOK reports an error unless every request of the farm's
// load answered 200, and unless there was a load at all.
func (f *farm) checkEveryRequestOK(t *testing.T, name string) {
	t.Helper()
	sent, failed := f.tally.sent.Load(), f.tally.failed.Load()
	f.tally.mu.Lock()
	first := f.tally.first
	f.tally.mu.Unlock()
	switch {
	case sent == 0:
		t.Errorf("%s: no request sent", name)
	case failed > 0:
		t.Errorf("%s: %d of %d requests failed, want none; first: %q", name, failed, sent, first)
	}
}

// A sample is a server's counts at a moment.
type sample struct {
	at    time.Time
	stats econnecttest.Stats
}

func (f *farm) sample() sample {
	return sample{time.Now(), f.srv.Stats()}
}

// A span is what a server saw between two samples.
type span struct {
	elapsed                   time.Duration
	logins, renewals, refused int
}

func between(a, b sample) span {
	return span{b.at.Sub(a.at), b.stats.Logins - a.stats.Logins, b.stats.Renewals - a.stats.Renewals,
		b.stats.Refused - a.stats.Refused}
}

// auth is the span's auth calls, logins and renewals.
func (s span) auth() int { return s.logins + s.renewals }

// perLifetime is n calls over the span, per token lifetime.
func (s span) perLifetime(n int) float64 {
	return float64(n) / (s.elapsed.Seconds() / lifetime.Seconds())
}

// hold lets d pass while the load runs: the time is the load, no result is
// waited for.
func hold(d time.Duration) {
	<-time.After(d)
}
