package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

// lineWriter is a stderr whose lines a test can wait for.
type lineWriter struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	lines   chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 1000)} }

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(b)
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		select {
		case w.lines <- string(w.partial[:i]):
		default:
		}
		w.partial = w.partial[i+1:]
	}
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.all.String()
}

// waitLine returns the next line written to w, failing t after a while.
func waitLine(t *testing.T, w *lineWriter) string {
	t.Helper()
	select {
	case l := <-w.lines:
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("no line on stderr; so far %q", w.String())
		return ""
	}
}

var listening = regexp.MustCompile(`^econnect-token: proxy listening on (http://127\.0\.0\.1:[0-9]+|unix:.+)$`)

// A runningProxy is econnect-token proxy, run in-process.
type runningProxy struct {
	where  string // http://HOST:PORT or unix:PATH
	client *http.Client
	stderr *lineWriter
	stop   func() result // SIGTERM, as a cause: waits for the end
}

// startProxy runs econnect-token proxy in-process with env and args, and
// returns once it said where it listens.
func startProxy(t *testing.T, env map[string]string, args ...string) *runningProxy {
	t.Helper()
	ctx, cancel := context.WithCancelCause(t.Context())
	p := &process{stdin: strings.NewReader("")}
	setEnv(t, p, env)
	var stdout bytes.Buffer
	rp := &runningProxy{stderr: newLineWriter()}
	p.stdout, p.stderr = &stdout, rp.stderr
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"proxy"}, args...), p) }()
	var once sync.Once
	var r result
	rp.stop = func() result {
		once.Do(func() {
			cancel(newInterruption(syscall.SIGTERM))
			r = result{code: <-done, stdout: stdout.String(), stderr: rp.stderr.String()}
			rp.client.CloseIdleConnections()
		})
		return r
	}
	t.Cleanup(func() { rp.stop() })
	first := waitLine(t, rp.stderr)
	m := listening.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("first line on stderr %q, want %q", first, listening)
	}
	rp.where = m[1]
	rp.client = proxyClient(rp.where)
	return rp
}

// proxyClient returns a client for a proxy at where, and the URL to use.
func proxyClient(where string) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	if path, ok := strings.CutPrefix(where, "unix:"); ok {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}
	}
	return &http.Client{Transport: tr}
}

// url is the proxy's URL for path.
func (rp *runningProxy) url(path string) string {
	if strings.HasPrefix(rp.where, "unix:") {
		return "http://proxy" + path
	}
	return rp.where + path
}

// echoServer is newServer with echo at POST /api/v1/echo.
func echoServer(t *testing.T) *econnecttest.Server {
	t.Helper()
	s := newServer(t, false)
	s.Handle("POST /api/v1/echo", http.HandlerFunc(echo))
	return s
}

// echo answers a request with its own body, read whole first: an HTTP/1
// server may close the body once its answer's headers are out.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Write(b)
}

// post sends body to the proxy's path and returns the answer's status and
// body.
func (rp *runningProxy) post(path string, body io.Reader) (int, string, error) {
	resp, err := rp.client.Post(rp.url(path), "application/octet-stream", body)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestProxyAcrossRenewalsAndRotation sends 1,000 requests through the proxy
// over a few token lifetimes and a key rotation: every one must answer 200
// with its own body.
func TestProxyAcrossRenewalsAndRotation(t *testing.T) {
	t.Parallel()
	s := echoServer(t)
	s.SetLifetime(3 * time.Second)
	rp := startProxy(t, loginEnv(s))
	const requests, workers = 1000, 8
	// Renewals come with time, not with load: the requests are spread over
	// about 4 s, more on a slow machine (a ticker drops the ticks it cannot
	// deliver), so that they span more than one renewal point.
	jobs := make(chan int)
	go func() {
		tick := time.NewTicker(4 * time.Millisecond)
		defer tick.Stop()
		for i := range requests {
			<-tick.C
			jobs <- i
		}
		close(jobs)
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if i == requests*3/4 {
					s.RotateKey() // every token issued so far is refused from now on
				}
				body := fmt.Sprintf("request %d: %s", i, strings.Repeat("x", i))
				code, got, err := rp.post("/api/v1/echo", strings.NewReader(body))
				if err != nil || code != http.StatusOK || got != body {
					t.Errorf("request %d: %d %d bytes %.40q, %v; want 200 and its body (%d bytes)", i, code, len(got), got, err, len(body))
				}
			}
		})
	}
	wg.Wait()
	if r := rp.stop(); r.code != 143 {
		t.Errorf("proxy exit %d, stderr %q; want 143", r.code, r.stderr)
	}
	st := s.Stats()
	t.Logf("server: %+v", st)
	if st.Logins != 2 || st.Renewals < 1 || st.APICalls < requests {
		t.Errorf("server saw %+v; want 2 logins (start-up, rotation), renewals, and every request", st)
	}
}

func TestProxyReplacesAuthorization(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	var seen []string
	var mu sync.Mutex
	s.Handle("GET /api/v1/whoami", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Values("Authorization")
		mu.Unlock()
		w.Header().Set("X-Path", r.URL.Path)
	}))
	rp := startProxy(t, loginEnv(s))
	req, _ := http.NewRequest(http.MethodGet, rp.url("/api/v1/whoami"), nil)
	req.Header.Set("Authorization", "Bearer the-client's-own")
	resp, err := rp.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != http.StatusOK || len(seen) != 1 || resp.Header.Get("X-Path") != "/identities/api/v1/whoami" {
		t.Fatalf("answer %d, path %q, server saw Authorization %q; want 200, -url's path joined, one Authorization",
			resp.StatusCode, resp.Header.Get("X-Path"), seen)
	}
	tok := strings.TrimPrefix(seen[0], "Bearer ")
	if _, err := s.VerifyToken(tok); err != nil {
		t.Errorf("the server got %q, not the proxy's token: %v", seen[0], err)
	}
	if dump := fmt.Sprint(resp.Header) + string(body); strings.Contains(dump, tok) {
		t.Errorf("the answer holds the token: %s", dump)
	}
}

// TestProxyFailedLogin changes the password while the proxy serves, and
// fails its renewals: once its token expires, its clients get 502 with a
// short text, and no secret.
func TestProxyFailedLogin(t *testing.T) {
	t.Parallel()
	s := echoServer(t)
	s.SetLifetime(2 * time.Second)
	rp := startProxy(t, loginEnv(s))
	s.AddUser(testUser, "changed-SENTINEL-5")
	s.FailRenew(1000, econnecttest.Fault{Status: http.StatusServiceUnavailable})
	// The token expires with time: ask every 50 ms, for at most 10 s.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var code int
	var body string
	for range 200 {
		c, b, err := rp.post("/api/v1/echo", strings.NewReader("ping"))
		if err != nil {
			t.Fatal(err)
		}
		if code, body = c, b; c != http.StatusOK {
			break
		}
		<-tick.C
	}
	if code != http.StatusBadGateway || body != "econnect-token proxy: the server refused the proxy's login or request\n" {
		t.Errorf("answer %d %q, want 502 and why", code, body)
	}
	r := rp.stop()
	for _, out := range []string{body, r.stderr} {
		if strings.Contains(out, testPassword) || strings.Contains(out, "changed-SENTINEL-5") || strings.Contains(out, "eyJ") {
			t.Errorf("output %q holds a secret", out)
		}
	}
	if !strings.Contains(r.stderr, "econnect-token: proxy: POST /identities/api/v1/echo: answered 502: econnect: login refused: 400") {
		t.Errorf("stderr %q, want the failure logged", r.stderr)
	}
}

func TestProxyErrorStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"bad credentials", fmt.Errorf("econnect: login: %w", econnect.ErrBadCredentials), http.StatusBadGateway},
		{"refused", fmt.Errorf("x: %w", &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusForbidden}}), http.StatusBadGateway},
		{"certificate", fmt.Errorf("x: %w", econnect.ErrInsecureHTTP), http.StatusBadGateway},
		{"server failing", fmt.Errorf("x: %w", &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusServiceUnavailable}}), http.StatusServiceUnavailable},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, http.StatusServiceUnavailable},
	}
	p := &process{stderr: io.Discard}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		proxyError(p)(w, httptest.NewRequest(http.MethodGet, "/x", nil), tt.err)
		if w.Code != tt.want || !strings.HasPrefix(w.Body.String(), "econnect-token proxy: ") {
			t.Errorf("%s: answer %d %q, want %d", tt.name, w.Code, w.Body, tt.want)
		}
	}
}

// TestProxyLargeBodyStreams sends a body larger than the proxy holds: the
// server must see its start before the client has sent the rest, and after
// a key rotation, its 401 comes back since it cannot be sent again.
func TestProxyLargeBodyStreams(t *testing.T) {
	t.Parallel()
	s := echoServer(t)
	started := make(chan struct{}, 1)
	s.Handle("POST /api/v1/upload", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.CopyN(h, r.Body, 1<<20); err != nil {
			t.Errorf("reading the first MiB: %v", err)
		}
		started <- struct{}{}
		io.Copy(h, r.Body)
		fmt.Fprintf(w, "%x", h.Sum(nil))
	}))
	rp := startProxy(t, loginEnv(s))
	const size = 20 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	code, got := rp.upload(t, data, started)
	if want := fmt.Sprintf("%x", sha256.Sum256(data)); code != http.StatusOK || got != want {
		t.Errorf("20 MiB upload: %d %q, want 200 %q", code, got, want)
	}
	s.RotateKey()
	if code, _ := rp.upload(t, data, nil); code != http.StatusUnauthorized {
		t.Errorf("20 MiB upload after a key rotation: %d, want the server's 401", code)
	}
	if code, _, err := rp.post("/api/v1/echo", strings.NewReader("ping")); err != nil || code != http.StatusOK {
		t.Errorf("next request: %d, %v; want 200 with a new token", code, err)
	}
}

// upload posts data, with its length known, in two parts: the second only
// once started says the server has read the first (nil: at once).
func (rp *runningProxy) upload(t *testing.T, data []byte, started <-chan struct{}) (int, string) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		pw.Write(data[:1<<20])
		if started != nil {
			select {
			case <-started:
			case <-time.After(20 * time.Second):
				pw.CloseWithError(errors.New("the server did not see the body's start: the proxy held it back"))
				return
			}
		}
		pw.Write(data[1<<20:])
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, rp.url("/api/v1/upload"), pr)
	req.ContentLength = int64(len(data))
	resp, err := rp.client.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pr.CloseWithError(io.EOF) // a refused upload leaves the writer waiting
	return resp.StatusCode, string(b)
}

// TestProxyStreamsAnswers: the client reads the start of a slow answer
// before the server has written the rest.
func TestProxyStreamsAnswers(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	release := make(chan struct{})
	s.Handle("GET /api/v1/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	}))
	rp := startProxy(t, loginEnv(s))
	resp, err := rp.client.Get(rp.url("/api/v1/stream"))
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make([]byte, len("first\n"))
	_, err = io.ReadFull(resp.Body, line)
	close(release)
	if err != nil || string(line) != "first\n" {
		t.Fatalf("read %q, %v; want the first line before the server wrote the second", line, err)
	}
	if rest, _ := io.ReadAll(resp.Body); string(rest) != "second\n" {
		t.Errorf("then %q, want the second line", rest)
	}
}

func TestProxyUnixSocket(t *testing.T) {
	t.Parallel()
	s := echoServer(t)
	dir, err := os.MkdirTemp("", "ect") // a short path: sockets' are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "p.sock")
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("no unix sockets here: %v", err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // a socket file nobody listens on, as a killed proxy leaves
	rp := startProxy(t, loginEnv(s), "-listen", "unix:"+path)
	if rp.where != "unix:"+path {
		t.Errorf("listening on %q, want unix:%s", rp.where, path)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket %v, %v; want a socket with mode 0600", fi.Mode(), err)
	}
	if code, _, err := rp.post("/api/v1/echo", strings.NewReader("ping")); err != nil || code != http.StatusOK {
		t.Errorf("request through the socket: %d, %v; want 200", code, err)
	}
	if r := rp.stop(); r.code != 143 {
		t.Errorf("exit %d, want 143", r.code)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("left %d files behind, want none", len(names))
	}
}

func TestProxyListenRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "file")
	if err := os.WriteFile(notSocket, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, listen, want string }{
		{"all interfaces", ":0", "with a loopback host"},
		{"IPv4 any", "0.0.0.0:0", "with a loopback host"},
		{"IPv6 any", "[::]:0", "with a loopback host"},
		{"another host", "192.0.2.1:80", "with a loopback host"},
		{"a host name", "example.com:80", "with a loopback host"},
		{"no port", "127.0.0.1", "with a loopback host"},
		{"empty socket path", "unix:", "with a loopback host"},
		{"not a socket", "unix:" + notSocket, "exists and is not a socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runInProcess(t, loginEnv(s), "", "proxy", "-listen", tt.listen)
			checkFailure(t, r, exitUsage, tt.want)
		})
	}
	if data, err := os.ReadFile(notSocket); err != nil || string(data) != "keep me" {
		t.Errorf("the file at -listen's path: %q, %v; want it left alone", data, err)
	}
	if st := s.Stats(); st.Logins != 0 {
		t.Errorf("server saw %d logins, want none: -listen is checked first", st.Logins)
	}
}

// TestProxyWrongPassword: the proxy logs in on start-up, even with a good
// token cached, so that a wrong password ends it at once.
func TestProxyWrongPassword(t *testing.T) {
	t.Parallel()
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("cached=%t", cached), func(t *testing.T) {
			t.Parallel()
			s, dir := newServer(t, false), t.TempDir()
			if cached {
				seedCache(t, s, dir, 30*time.Minute)
			}
			env := cacheEnv(s, dir)
			env["ECONNECT_PASSWORD"] = "wrong-SENTINEL-93"
			r := runBinary(t, env, "", "proxy")
			checkFailure(t, r, exitRefused, "check the username", "wrong-SENTINEL-93")
			if strings.Contains(r.stderr, "listening") {
				t.Errorf("stderr %q: a proxy that cannot log in must not say it listens", r.stderr)
			}
		})
	}
}

// TestProxySIGTERMLetsRequestsFinish sends SIGTERM to a proxy while a slow
// request is under way: the request gets its whole answer, then the proxy
// exits 143.
func TestProxySIGTERMLetsRequestsFinish(t *testing.T) {
	t.Parallel()
	skipWithoutSignals(t)
	s := newServer(t, false)
	arrived, release := make(chan struct{}), make(chan struct{})
	s.Handle("GET /api/v1/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "done")
	}))
	cmd, stderr := startChild(t, loginEnv(s), "proxy")
	m := listening.FindStringSubmatch(readLineOf(t, stderr))
	if m == nil {
		t.Fatal("the proxy did not say where it listens")
	}
	client := proxyClient(m[1])
	defer client.CloseIdleConnections()
	type answer struct {
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := client.Get(m[1] + "/api/v1/slow")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{string(b), err}
	}()
	<-arrived
	cmd.Process.Signal(syscall.SIGTERM)
	for !strings.Contains(readLineOf(t, stderr), "proxy: stopping") {
	}
	close(release)
	if a := <-answered; a.err != nil || a.body != "done" {
		t.Errorf("slow request: %q, %v; want it to finish", a.body, a.err)
	}
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 143 {
		t.Errorf("proxy exit %v, want 143", err)
	}
}

// startChild starts the command as a process of its own, and returns it
// and its stderr.
func startChild(t *testing.T, env map[string]string, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := commandProcess(t, env, args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewReader(pipe)
}

// readLineOf reads one line from r, failing t at its end.
func readLineOf(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %q, %v", l, err)
	}
	return strings.TrimSuffix(l, "\n")
}

func skipWithoutSignals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT or SIGTERM to send on Windows")
	}
}

// TestProxySharesTheCache: the proxy and the runs of scripts beside it
// share the token cache: a run takes the token the proxy logged in with,
// and the token the proxy gets after a 401 is cached for the runs after
// it.
func TestProxySharesTheCache(t *testing.T) {
	t.Parallel()
	s, dir := echoServer(t), t.TempDir()
	env := cacheEnv(s, dir)
	rp := startProxy(t, env)
	first := checkToken(t, s, runInProcess(t, env, ""))
	checkStats(t, s, econnecttest.Stats{}, 1, 0)
	s.RotateKey()
	if code, _, err := rp.post("/api/v1/echo", strings.NewReader("ping")); err != nil || code != http.StatusOK {
		t.Fatalf("request after a key rotation: %d, %v; want 200 with a new token", code, err)
	}
	if r := rp.stop(); r.code != 143 {
		t.Errorf("proxy exit %d, stderr %q; want 143", r.code, r.stderr)
	}
	e := loadEntry(t, s, dir)
	if e == nil || e.Token == first {
		t.Fatal("the cache does not hold the token the proxy got after the 401")
	}
	if tok := checkToken(t, s, runInProcess(t, env, "")); tok != e.Token {
		t.Errorf("a run after the proxy printed another token than the one it cached")
	}
	checkStats(t, s, econnecttest.Stats{}, 2, 0)
}

// TestProxyCachesItsRenewals: a token the proxy renews is cached.
func TestProxyCachesItsRenewals(t *testing.T) {
	t.Parallel()
	s, dir := echoServer(t), t.TempDir()
	s.SetLifetime(3 * time.Second) // usable for 2 s: renewed after about 1 s
	rp := startProxy(t, cacheEnv(s, dir))
	e := loadEntry(t, s, dir)
	if e == nil {
		t.Fatal("the proxy did not cache the token it logged in with before it listened")
	}
	// Renewals come with time and a request: one every 50 ms, 10 s at most.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 200 && s.Stats().Renewals == 0; i++ {
		if code, _, err := rp.post("/api/v1/echo", strings.NewReader("ping")); err != nil || code != http.StatusOK {
			t.Fatalf("request: %d, %v; want 200", code, err)
		}
		<-tick.C
	}
	rp.stop()
	if st := s.Stats(); st.Renewals == 0 || st.Logins != 1 {
		t.Fatalf("server saw %+v, want renewals and 1 login", st)
	}
	if renewed := loadEntry(t, s, dir); renewed == nil || renewed.Token == e.Token {
		t.Error("the cache does not hold the renewed token")
	} else if _, err := s.VerifyToken(renewed.Token); err != nil {
		t.Errorf("the cached token: %v", err)
	}
}
