package chaos

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

// kind is a way of making an authenticated client.
type kind struct {
	name string
	user string // usernames of its clients start with it
	new  func(ctx context.Context, cfg *econnect.Config) *http.Client
}

// kinds are the clients compared, side by side.
var kinds = []kind{
	{"Config.Client", "client", func(ctx context.Context, cfg *econnect.Config) *http.Client {
		return cfg.Client(ctx)
	}},
	{"oauth2.NewClient", "newclient", func(ctx context.Context, cfg *econnect.Config) *http.Client {
		return oauth2.NewClient(ctx, cfg.TokenSource(ctx))
	}},
	{"naive", "naive", func(ctx context.Context, cfg *econnect.Config) *http.Client {
		return oauth2.NewClient(ctx, oauth2.ReuseTokenSourceWithExpiry(nil, naive{ctx, cfg}, naiveMargin))
	}},
}

// naive logs in on every call: wrapped in oauth2's cache, it is a client
// that logs in whenever that cache says its token expired, and never renews.
// Its cache's margin is naiveMargin, not oauth2's default 10 s, which would
// call every 5 s token expired and make it log in on every request.
type naive struct {
	ctx context.Context
	cfg *econnect.Config
}

func (n naive) Token() (*oauth2.Token, error) {
	return n.cfg.Token(n.ctx)
}

const naiveMargin = 500 * time.Millisecond

// password is every user's. It is never printed.
const password = "chaos-SENTINEL-pw"

// client is one client of a kind, with what watches it.
type client struct {
	kind int
	hc   *http.Client
	rec  *recorder

	// mu guards the fields below, its side of an outage.
	mu        sync.Mutex
	failedIn  bool      // a request failed while the server was down
	recovered time.Time // the end of its first success after the outage
}

// run is one scenario being run.
type run struct {
	sc      scenario
	srv     *econnecttest.Server
	echo    string // URL of the protected echo endpoint
	clients []*client
	outage  outage
}

// outage is when the server went down and came back, as the scenario
// marked it; nil while it has not.
type outage struct {
	down, up atomic.Pointer[time.Time]
}

func (o *outage) began(t time.Time) { o.down.Store(&t) }
func (o *outage) ended(t time.Time) { o.up.Store(&t) }

// execute runs sc for d under the full load, and returns a row per kind.
func execute(t *testing.T, sc scenario, d time.Duration, seed uint64) []row {
	t.Helper()
	r := &run{sc: sc, srv: econnecttest.NewServer()}
	defer r.srv.Close()
	r.srv.SetLifetime(lifetime)
	r.srv.SetClockOffset(sc.offset)
	r.srv.Handle("POST /api/v1/echo", http.HandlerFunc(echo))
	r.echo = r.srv.URL + "/api/v1/echo"
	goroutinesBefore, heapBefore := runtime.NumGoroutine(), heap()

	clientCtx, cancelClients := context.WithCancel(context.Background())
	defer cancelClients()
	r.newClients(clientCtx)
	r.srv.SetChaos(econnecttest.Chaos{Faults: sc.faults, Seed: seed})

	tallies, elapsed := r.load(d, seed, cancelClients)
	goroutinesAfter, settled := r.settle(goroutinesBefore)
	rows := r.rows(tallies, elapsed)
	tallies = nil // the latencies are summed up: let the heap shed them
	heapAfter := heap()
	for i := range rows {
		rows[i].goroutinesBefore, rows[i].goroutinesAfter = goroutinesBefore, goroutinesAfter
		rows[i].heapBefore, rows[i].heapAfter = heapBefore, heapAfter
	}
	stats := r.srv.Stats()
	t.Logf("%s: the server saw %d logins and %d renewals (%d refused) and %d API calls; goroutines %d before, %d after %v of settling",
		sc.name, stats.Logins, stats.Renewals, stats.Refused, stats.APICalls, goroutinesBefore, goroutinesAfter, settled.Round(time.Millisecond))
	return rows
}

// echo answers a request with its body.
func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	w.Write(body)
}

// newClients makes the clients of every kind, each with a user and a
// transport of its own, their auth calls bound by ctx.
func (r *run) newClients(ctx context.Context) {
	for k, kd := range kinds {
		for i := range clientsPerKind {
			user := fmt.Sprintf("%s-%d", kd.user, i)
			r.srv.AddUser(user, password)
			rec := newRecorder(newTransport())
			cctx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: rec})
			cfg := &econnect.Config{BaseURL: r.srv.URL, Username: user, Password: password}
			r.clients = append(r.clients, &client{kind: k, hc: kd.new(cctx, cfg), rec: rec})
		}
	}
}

// newTransport returns a transport for loopback with enough idle
// connections for its workers.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:               nil, // loopback only
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        2 * workers,
		MaxIdleConnsPerHost: 2 * workers,
		IdleConnTimeout:     30 * time.Second,
	}
}

// load runs the workers of every client and the scenario's actions for d,
// then stops them: requests first, then the clients' auth calls with
// cancelClients. It returns a tally per kind and how long the load ran.
func (r *run) load(d time.Duration, seed uint64, cancelClients context.CancelFunc) ([]*tally, time.Duration) {
	ctx, stop := context.WithTimeout(context.Background(), d)
	defer stop()
	start := time.Now()
	tallies := make([][]*tally, len(kinds))
	var wg sync.WaitGroup
	for ci, c := range r.clients {
		for w := range workers {
			t := new(tally)
			tallies[c.kind] = append(tallies[c.kind], t)
			wg.Go(func() { r.work(ctx, c, newRand(seed, uint64(ci*workers+w)), t) })
		}
	}
	if r.sc.during != nil {
		wg.Go(func() { r.sc.during(ctx, r) })
	}
	<-ctx.Done()
	elapsed := time.Since(start)
	cancelClients()
	wg.Wait()
	merged := make([]*tally, len(kinds))
	for k, ts := range tallies {
		merged[k] = new(tally)
		for _, t := range ts {
			merged[k].merge(t)
		}
	}
	return merged, elapsed
}

// newRand returns the random source of a worker.
func newRand(seed, worker uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	binary.LittleEndian.PutUint64(s[8:], worker)
	return rand.NewChaCha8(s)
}

// work sends requests through c until ctx is done, and tallies them in t.
func (r *run) work(ctx context.Context, c *client, src *rand.ChaCha8, t *tally) {
	rnd := rand.New(src)
	for ctx.Err() == nil {
		body := make([]byte, minBody+rnd.IntN(maxBody-minBody+1))
		src.Read(body)
		if o, ok := r.send(ctx, c, body); ok {
			t.add(o)
		}
	}
}

// send POSTs body to the echo endpoint through c, and reports what became
// of it, unless the end of the run cut it short.
func (r *run) send(ctx context.Context, c *client, body []byte) (outcome, bool) {
	// The request's deadline is its own 10 s, not the end of the run: a
	// deadline cut short by the run's end would make a client that waits
	// for a token fail fast on every request of its last seconds. The end
	// of the run cancels it instead, and such requests are not counted.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, r.echo, bytes.NewReader(body))
	if err != nil {
		panic(err) // a bad harness, not a bad client
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	start := time.Now()
	got, status, err := do(c.hc, req)
	end := time.Now()
	if ctx.Err() != nil {
		return outcome{}, false
	}
	o := outcome{latency: end.Sub(start)}
	switch {
	case err != nil:
		o.cause = cause(err)
	case status != http.StatusOK:
		o.cause = fmt.Sprintf("status %d", status)
	case !bytes.Equal(got, body):
		o.cause, o.corrupted = "corrupted", true
	}
	if o.cause != "" {
		o.usable = r.usableToken(c, end)
	}
	c.observe(o.cause == "", end, &r.outage)
	return o, true
}

// do sends req with hc and reads the answer.
func do(hc *http.Client, req *http.Request) ([]byte, int, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}

// usableToken reports whether c held a usable token at now.
//
// A usable token is the last token c received intact (a whole 200 answer
// to a login or a renewal, seen by its transport), while the server still
// accepts it (its key was not rotated since) and it has more than its
// safety margin left by the server's clock; the margin is min(10 s,
// lifetime/10), under which econnect stops handing a token out. A request
// that fails at such a moment failed although its client had a token the
// server would have taken.
func (r *run) usableToken(c *client, now time.Time) bool {
	token, exp := c.rec.last()
	if token == "" {
		return false
	}
	if _, err := r.srv.VerifyToken(token); err != nil {
		return false
	}
	margin := min(10*time.Second, lifetime/10)
	return exp.Sub(now.Add(r.sc.offset)) > margin
}

// cause names why a request failed, without quoting the error, which
// could one day hold a secret.
func cause(err error) string {
	var re *oauth2.RetrieveError
	where := "request"
	if strings.Contains(err.Error(), "econnect: ") {
		where = "auth"
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.Is(err, econnect.ErrBadCredentials):
		return "bad credentials"
	case errors.As(err, &re) && re.Response != nil:
		return fmt.Sprintf("auth %d", re.Response.StatusCode)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return where + " cut or reset"
	}
	return where + " other"
}

// observe records an outcome of c that ended at end, for the recovery lag
// of an outage.
func (c *client) observe(ok bool, end time.Time, o *outage) {
	down := o.down.Load()
	if down == nil || end.Before(*down) {
		return
	}
	up := o.up.Load()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !ok && (up == nil || end.Before(*up)):
		c.failedIn = true
	case ok && up != nil && !end.Before(*up) && c.recovered.IsZero():
		c.recovered = end
	}
}

// recovery returns the lag between the server's return after an outage
// that ended at up and c's first success after it (0 if c never failed
// while the server was down), and false if c failed and never succeeded
// again.
func (c *client) recovery(up time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.failedIn:
		return 0, true
	case c.recovered.IsZero():
		return 0, false
	}
	return c.recovered.Sub(up), true
}

// rows sums up the run in a row per kind.
func (r *run) rows(tallies []*tally, elapsed time.Duration) []row {
	rows := make([]row, len(kinds))
	for k, t := range tallies {
		rows[k] = row{
			scenario: r.sc.name, kind: kinds[k].name,
			requests: t.requests, ok: t.ok, corrupted: t.corrupted, usable: t.usable, causes: t.causes,
			p50: percentile(t.latencies, 0.50), p99: percentile(t.latencies, 0.99),
			recovery: -1,
		}
	}
	lifetimes := elapsed.Seconds() / lifetime.Seconds()
	for _, c := range r.clients {
		rw := &rows[c.kind]
		calls, inWindow := c.rec.authCalls()
		rw.authPerLifetime = max(rw.authPerLifetime, float64(calls)/lifetimes)
		rw.inWindow += inWindow
		if up := r.outage.up.Load(); up != nil {
			lag, ok := c.recovery(*up)
			rw.recovery = max(rw.recovery, lag)
			if !ok {
				rw.unrecovered++
			}
		}
	}
	return rows
}

// settle waits, 10 s at most, for no more goroutines to run than want, and
// returns how many run and how long it waited. The clients' auth calls end
// with the run, but not in step with its workers: one answered as the run
// ended may hand its connection back to the pool after the pool was
// emptied, where it would idle for IdleConnTimeout. So settle empties the
// pools again each time it looks: an idle connection of the harness's own
// transport is not a goroutine the client left behind.
func (r *run) settle(want int) (int, time.Duration) {
	start := time.Now()
	for {
		for _, c := range r.clients {
			c.rec.CloseIdleConnections()
		}
		waited := time.Since(start)
		if n := runtime.NumGoroutine(); n <= want || waited >= settleBound {
			return n, waited
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settleBound is how long settle waits at most: far longer than any auth
// call takes to end once the run cancels its client's context. That holds
// in hang-20% too, whose held answers outlast a short run: the server
// drops a held answer as soon as the client gives up, so a short run
// judges goroutines as fairly as a full one.
const settleBound = 10 * time.Second

// heap returns the bytes of live heap objects, after a garbage collection.
func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
