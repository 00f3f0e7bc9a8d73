package chaos

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"
)

// canned is a transport that answers each request with the next of its
// answers.
type canned []answer

type answer struct {
	status int
	header http.Header
	body   string
	err    error // of reading the body, after it
}

func (c *canned) RoundTrip(req *http.Request) (*http.Response, error) {
	a := (*c)[0]
	*c = (*c)[1:]
	var body io.Reader = strings.NewReader(a.body)
	if a.err != nil {
		body = io.MultiReader(body, iotest.ErrReader(a.err))
	}
	return &http.Response{StatusCode: a.status, Header: a.header, Body: io.NopCloser(body), Request: req}, nil
}

// fakeJWT returns an unsigned JWT whose exp is exp.
func fakeJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc([]byte(`{"unique_name":"u","exp":`+strconv.FormatInt(exp.Unix(), 10)+`}`)) + "." + enc([]byte("sig"))
}

// newRequest returns a request for path under a base URL.
func newRequest(path string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/identities"+path, nil)
	if err != nil {
		panic(err)
	}
	return req
}

func retryAfter(secs string) http.Header { return http.Header{"Retry-After": {secs}} }

// read reads and closes the body of resp.
func read(t *testing.T, resp *http.Response) (string, error) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestRecorderRetryAfterWindow(t *testing.T) {
	// In the bubble, time moves only while every goroutine waits: the
	// sleeps below move the clock and take no time.
	synctest.Test(t, func(t *testing.T) {
		base := &canned{
			{status: 429, header: retryAfter("2")},
			{status: 200}, // at +1 s: inside
			{status: 200}, // an API call at +1.5 s: not an auth call
			{status: 503}, // at +2 s, the window's end: outside; no Retry-After
			{status: 503, header: retryAfter("soon")},
			{status: 200}, // at +3 s: outside
		}
		r := newRecorder(base)
		steps := []struct {
			after time.Duration
			path  string
		}{
			{0, "/api/v1/authenticate"},
			{time.Second, "/api/v1/renewToken"},
			{time.Second / 2, "/api/v1/echo"},
			{time.Second / 2, "/api/v1/authenticate"},
			{0, "/api/v1/authenticate"},
			{time.Second, "/api/v1/authenticate"},
		}
		for _, s := range steps {
			time.Sleep(s.after)
			resp, err := r.RoundTrip(newRequest(s.path))
			if err != nil {
				t.Fatalf("RoundTrip(%s) error = %v", s.path, err)
			}
			read(t, resp)
		}
		if calls, inWindow := r.authCalls(); calls != 5 || inWindow != 1 {
			t.Errorf("authCalls() = %d, %d, want 5, 1", calls, inWindow)
		}
	})
}

func TestRecorderLastToken(t *testing.T) {
	exp := time.Date(2025, 1, 1, 12, 0, 5, 0, time.UTC)
	good := `{"username":"u","token":"` + fakeJWT(exp) + `"}`
	later := `{"username":"u","token":"` + fakeJWT(exp.Add(time.Hour)) + `"}`
	tests := []struct {
		name    string
		second  answer // after a first, good answer
		wantExp time.Time
	}{
		{"renewed", answer{status: 200, body: later}, exp.Add(time.Hour)},
		{"half JSON", answer{status: 200, body: later[:len(later)/2]}, exp},
		{"cut", answer{status: 200, body: later[:len(later)/2], err: io.ErrUnexpectedEOF}, exp},
		{"refused", answer{status: 401, body: later}, exp},
		{"not a JWT", answer{status: 200, body: `{"token":"nope"}`}, exp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(&canned{{status: 200, body: good}, tt.second})
			for i, a := range []answer{{status: 200, body: good}, tt.second} {
				resp, err := r.RoundTrip(newRequest("/api/v1/authenticate"))
				if err != nil {
					t.Fatalf("RoundTrip %d error = %v", i, err)
				}
				// The client reads what the server sent, error included.
				if body, err := read(t, resp); body != a.body || !errors.Is(err, a.err) {
					t.Errorf("answer %d: body, error = %.20q…, %v, want %.20q…, %v", i, body, err, a.body, a.err)
				}
			}
			if _, gotExp := r.last(); !gotExp.Equal(tt.wantExp) {
				t.Errorf("last() exp = %v, want %v", gotExp, tt.wantExp)
			}
		})
	}
}
