package chaos

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing/iotest"
	"time"

	"github.com/econnect-oss/econnect"
)

// recorder is the base transport of one client. It sends every request
// with base and watches the client's auth calls on their way: how many it
// made, how many it sent inside a Retry-After window the server had
// announced to it, and the last token it received intact. It is safe for
// concurrent use by multiple goroutines.
type recorder struct {
	base http.RoundTripper

	// mu guards the fields below.
	mu       sync.Mutex
	calls    int       // auth calls sent
	inWindow int       // of them, sent before windowEnd
	window   time.Time // end of the latest Retry-After window announced
	token    string    // the last token received intact
	exp      time.Time // its exp claim, by the server's clock
}

func newRecorder(base http.RoundTripper) *recorder {
	return &recorder{base: base}
}

// RoundTrip sends req with r.base, and records it if it is an auth call.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isAuth(req) {
		return r.base.RoundTrip(req)
	}
	r.sent(time.Now())
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	r.answered(resp, time.Now())
	// Read the answer here, so that a token is seen whatever the client
	// does with the body; the client gets the same bytes and error.
	body, readErr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = readAhead(body, readErr)
	if readErr == nil && resp.StatusCode == http.StatusOK {
		r.received(body)
	}
	return resp, nil
}

// CloseIdleConnections closes the idle connections of the base transport.
func (r *recorder) CloseIdleConnections() {
	if c, ok := r.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// isAuth reports whether req is a login or a renewal.
func isAuth(req *http.Request) bool {
	p := req.URL.Path
	return strings.HasSuffix(p, "/api/v1/authenticate") || strings.HasSuffix(p, "/api/v1/renewToken")
}

// sent records an auth call sent at now.
func (r *recorder) sent(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if now.Before(r.window) {
		r.inWindow++
	}
}

// answered records the Retry-After window a 429 or 503 answer received at
// now announces. Only a number of seconds is understood: econnecttest
// sends no HTTP dates.
func (r *recorder) answered(resp *http.Response, now time.Time) {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs <= 0 {
		return
	}
	end := now.Add(time.Duration(secs) * time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	if end.After(r.window) {
		r.window = end
	}
}

// received records the token of a whole 200 answer, if it holds one.
func (r *recorder) received(body []byte) {
	var answer struct{ Token string }
	if json.Unmarshal(body, &answer) != nil || answer.Token == "" {
		return
	}
	t, err := econnect.ParseToken(answer.Token)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.token, r.exp = answer.Token, t.Expiry
}

// authCalls returns the number of auth calls sent, and how many of them
// were sent inside a Retry-After window.
func (r *recorder) authCalls() (calls, inWindow int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.inWindow
}

// last returns the last token received intact and its exp claim.
func (r *recorder) last() (string, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.token, r.exp
}

// readAhead returns a body that reads as the one read ahead did: body,
// then readErr if the read ended with one.
func readAhead(body []byte, readErr error) io.ReadCloser {
	if readErr == nil {
		return io.NopCloser(bytes.NewReader(body))
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(body), iotest.ErrReader(readErr)))
}
