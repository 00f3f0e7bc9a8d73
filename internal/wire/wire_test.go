package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func jwtWith(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

// server starts a server whose handler is h, and a Call to it.
func server(t *testing.T, h http.HandlerFunc, hedge time.Duration) Call {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base, err := url.Parse(srv.URL + "/identities")
	if err != nil {
		t.Fatal(err)
	}
	return Call{Client: srv.Client(), Base: base, Now: time.Now, Hedge: hedge, BadCredentials: errBad}
}

var errBad = errors.New("bad credentials")

var good = `{"username":"cam","token":"` + jwtWith(`{"unique_name":"cam","iat":1000,"exp":4600}`) + `"}`

// TestHedge: an attempt unanswered for the hedge delay gets one more, on a
// connection of its own; the first good answer wins; never more than two.
func TestHedge(t *testing.T) {
	var n atomic.Int32
	var mu sync.Mutex
	seen := map[string]bool{} // connections that were idle before the call
	var hedgedFrom string
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so that the server sees the client hang up
		switch n.Add(1) {
		case 1, 2:
			mu.Lock()
			seen[r.RemoteAddr] = true
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // both warm-up calls hold a connection at once
		case 3:
			<-r.Context().Done() // the first attempt hangs
			return
		case 4:
			mu.Lock()
			hedgedFrom = r.RemoteAddr
			mu.Unlock()
		}
		fmt.Fprint(w, good)
	}, 30*time.Millisecond)
	var wg sync.WaitGroup
	warm := c
	warm.Hedge = 0
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := warm.Login(context.Background(), "cam", "pw"); err != nil {
				t.Errorf("warm-up Login() error = %v", err)
			}
		}()
	}
	wg.Wait()
	a, err := c.Login(context.Background(), "cam", "pw")
	if err != nil || a.Username != "cam" {
		t.Fatalf("Login() = %+v, %v; want the hedged attempt's answer", a, err)
	}
	if got := n.Load(); got != 4 {
		t.Errorf("server saw %d requests, want 2 warm-ups and 2 attempts", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[hedgedFrom] {
		t.Errorf("the hedged attempt reused an idle connection %s, want a fresh one", hedgedFrom)
	}
}

func TestHedgeBounds(t *testing.T) {
	t.Run("at most two in flight", func(t *testing.T) {
		var n atomic.Int32
		c := server(t, func(w http.ResponseWriter, r *http.Request) { n.Add(1); <-r.Context().Done() }, 10*time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := c.Renew(ctx, "a.b.c"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Renew() error = %v, want context.DeadlineExceeded", err)
		}
		if got := n.Load(); got != 2 {
			t.Errorf("server saw %d attempts, want 2", got)
		}
	})
	t.Run("a quick failure is not hedged", func(t *testing.T) {
		var n atomic.Int32
		c := server(t, func(w http.ResponseWriter, r *http.Request) { n.Add(1); w.WriteHeader(503) }, 10*time.Millisecond)
		if _, err := c.Login(context.Background(), "cam", "pw"); !Transient(err) {
			t.Errorf("Login() error = %v, want a transient failure", err)
		}
		// Login has returned: no attempt can start after that.
		if got := n.Load(); got != 1 {
			t.Errorf("server saw %d attempts, want 1", got)
		}
	})
	t.Run("the hedge fails, the first attempt is overdue", func(t *testing.T) {
		var n atomic.Int32
		c := server(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if n.Add(1) == 1 {
				<-r.Context().Done()
				return
			}
			w.WriteHeader(503)
		}, 10*time.Millisecond)
		if _, err := c.Login(context.Background(), "cam", "pw"); RetryAfter(err) != 0 || !Transient(err) {
			t.Errorf("Login() error = %v, want the hedge's 503 at once", err)
		}
	})
}

func TestRequests(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/identities/api/v1/authenticate":
			if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "" {
				t.Errorf("login %s, Content-Type %q, Authorization %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("Authorization"))
			}
		case "/identities/api/v1/renewToken":
			if r.Method != "GET" || r.Header.Get("Authorization") != "Bearer a.b.c" {
				t.Errorf("renewal %s with Authorization %q", r.Method, r.Header.Get("Authorization"))
			}
		default:
			t.Errorf("request to %s", r.URL.Path)
		}
		fmt.Fprint(w, good)
	}, 0)
	if _, err := c.Login(context.Background(), "cam", "pw"); err != nil {
		t.Errorf("Login() error = %v", err)
	}
	if _, err := c.Renew(context.Background(), "a.b.c"); err != nil {
		t.Errorf("Renew() error = %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	tests := []struct {
		name  string
		h     http.Header
		want  time.Duration
		codes []int
	}{
		{"seconds", http.Header{"Retry-After": {"3"}}, 3 * time.Second, nil},
		{"capped", http.Header{"Retry-After": {"100000"}}, MaxRetryAfter, nil},
		{"beyond int64", http.Header{"Retry-After": {"99999999999999999999"}}, MaxRetryAfter, nil},
		{"2^64", http.Header{"Retry-After": {"18446744073709551616"}}, MaxRetryAfter, nil},
		{"spaces", http.Header{"Retry-After": {" 7 "}}, 7 * time.Second, nil},
		{"zero", http.Header{"Retry-After": {"0"}}, 0, nil},
		{"negative", http.Header{"Retry-After": {"-5"}}, 0, nil},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0, nil},
		{"none", http.Header{}, 0, nil},
		{"date against the answer's Date", http.Header{"Retry-After": {date(time.Hour + 2*time.Second)}, "Date": {date(time.Hour)}}, 2 * time.Second, nil},
		{"date against the local clock", http.Header{"Retry-After": {date(90 * time.Second)}}, 90 * time.Second, nil},
		{"date in the past", http.Header{"Retry-After": {date(-time.Minute)}}, 0, nil},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.h, now); got != tt.want {
			t.Errorf("%s: parseRetryAfter() = %v, want %v", tt.name, got, tt.want)
		}
	}
	for code, want := range map[int]time.Duration{429: 3 * time.Second, 503: 3 * time.Second, 500: 0, 401: 0} {
		resp := &http.Response{StatusCode: code, Header: http.Header{"Retry-After": {"3"}}, Request: httptest.NewRequest("GET", "/", nil)}
		if got := RetryAfter(Call{Now: func() time.Time { return now }}.refusal("login", resp, nil, "pw")); got != want {
			t.Errorf("RetryAfter(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	ref := func(code int) error { return &Refusal{Op: "renewal", Code: code} }
	tests := []struct {
		err                error
		transient, refused bool
	}{
		{ref(401), false, true},
		{ref(403), false, true},
		{ref(400), false, false},
		{ref(404), false, false},
		{ref(408), true, false},
		{ref(429), true, false},
		{ref(503), true, false},
		{&AnswerError{Op: "renewal", What: "no token"}, true, false},
		{errors.New("dial tcp: connection refused"), true, false},
		{fmt.Errorf("x: %w", context.Canceled), false, false},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true, false},
		{fmt.Errorf("login: %w", x509.UnknownAuthorityError{}), false, false},
		{fmt.Errorf("login: %w", x509.HostnameError{Host: "h"}), false, false},
		{fmt.Errorf("login: %w", x509.CertificateInvalidError{Reason: x509.Expired}), false, false},
		{fmt.Errorf("login: %w", &tls.CertificateVerificationError{Err: errors.New("x")}), false, false},
	}
	for _, tt := range tests {
		if Transient(tt.err) != tt.transient || Refused(tt.err) != tt.refused {
			t.Errorf("%v: Transient, Refused = %t, %t; want %t, %t", tt.err, Transient(tt.err), Refused(tt.err), tt.transient, tt.refused)
		}
	}
}

// TestRefusal: the body is redacted then cut, the request kept carries no
// secret, and a Location holding the password is named without it.
func TestRefusal(t *testing.T) {
	req := httptest.NewRequest("POST", "https://h/identities/api/v1/authenticate", strings.NewReader(`{"password":"pw-SECRET"}`))
	req.GetBody = func() (io.ReadCloser, error) { return nil, nil }
	req.Header.Set("Authorization", "Bearer a.b.c")
	loc := "https://evil.example/steal/pw-SECRET?pw=pw-SECRET#x"
	resp := &http.Response{StatusCode: 307, Header: http.Header{"Location": {loc}}, Request: req}
	err := Call{Now: time.Now}.refusal("login", resp, []byte(strings.Repeat("x", 508)+"pw-SECRET"), "pw-SECRET")
	var r *Refusal
	if !errors.As(err, &r) || strings.Contains(err.Error(), "pw-SECRET") || !strings.Contains(err.Error(), "evil.example") {
		t.Errorf("refusal() error = %q, want it to name evil.example without the password", err)
	}
	if b := string(r.re.Body); len(b) != 512 || strings.Contains(b, "pw-S") {
		t.Errorf("Body = …%q (%d bytes), want 512 bytes without the password", b[len(b)-10:], len(b))
	}
	if kept := r.re.Response.Request; kept.Header.Get("Authorization") != "" || kept.GetBody != nil || kept.Body != nil {
		t.Errorf("RetrieveError.Response.Request keeps Authorization %q, GetBody %t, Body %t; want none", kept.Header.Get("Authorization"), kept.GetBody != nil, kept.Body != nil)
	}
	if req.Header.Get("Authorization") == "" {
		t.Error("refusal() changed the request it was given")
	}
	u, _ := url.Parse(loc)
	if got := redactLocation(u, "other"); got != "https://evil.example/steal/pw-SECRET" {
		t.Errorf("redactLocation() = %q, want the path kept when it holds no secret", got)
	}
	u, _ = url.Parse("https://pw-secret.evil.example/x")
	if got := redactLocation(u, "pw-SECRET"); strings.Contains(strings.ToLower(got), "pw-secret") {
		t.Errorf("redactLocation() = %q, want the host holding the password withheld", got)
	}
}

// FuzzDecode: hostile answers give an error or a token, never a panic, and
// errors never quote the token.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"token":null,"username":null}`))
	f.Add([]byte(`{"token":"a.b.c"}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`{"token":"` + jwtWith(`{"exp":"x"}`) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := decode("login", body, time.Unix(0, 0), time.Unix(1, 0))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "econnect: login: ") {
				t.Errorf("error %q lacks its prefix", err)
			}
			return
		}
		if a.Token == "" || strings.ContainsAny(a.Token, " \n\t\r") {
			t.Errorf("decode(%q) = token %q, want a JWT", body, a.Token)
		}
	})
}

// TestBadCredentials: a login refused with 400 wraps the Call's
// BadCredentials and the RetrieveError; a renewal refused with 400 does not.
func TestBadCredentials(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 400) }, 0)
	_, err := c.Login(context.Background(), "cam", "pw")
	var re *oauth2.RetrieveError
	if !errors.Is(err, errBad) || !errors.As(err, &re) || re.Response.StatusCode != 400 {
		t.Errorf("Login() error = %v, want BadCredentials and a RetrieveError", err)
	}
	if _, err := c.Renew(context.Background(), "a.b.c"); errors.Is(err, errBad) {
		t.Errorf("Renew() error = %v, want no BadCredentials for a renewal", err)
	}
}

// TestCancelEndsTheCall: a call ends when its context does, even while an
// attempt is still busy reading an answer that never ends.
func TestCancelEndsTheCall(t *testing.T) {
	c := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the body never ends
	}, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := c.Login(ctx, "cam", "pw"); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Login() error = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Login() still running 10 s after its context ended")
	}
}
