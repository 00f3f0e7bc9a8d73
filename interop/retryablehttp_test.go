package interop

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/hashicorp/go-retryablehttp"
)

// TestRetryableHTTP wraps go-retryablehttp around cfg.Client: retryablehttp
// retries 503s, and the client heals a 401 inside one attempt, whichever
// comes first. The body arrives whole on every attempt that reaches the
// endpoint, and the 401 costs exactly one new login.
func TestRetryableHTTP(t *testing.T) {
	tests := []struct {
		name string
		// rotateAt is the endpoint call, from 1, during which the server's
		// key rotates, or 0 to rotate it before the request.
		rotateAt int
	}{
		{name: "401 then 503s", rotateAt: 0},
		{name: "503 then 401 on the retry", rotateAt: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			cfg, ctx := setup(t, srv)
			payload := []byte(`{"detectorName":"gate-2","expanded":"` + strings.Repeat("QUJD", 8<<10) + `"}`)
			const unavailable = 2 // 503s before the 200
			var calls atomic.Int32
			srv.Handle("POST /api/v1/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				body, err := io.ReadAll(r.Body)
				if err != nil || !bytes.Equal(body, payload) || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("call %d: body of %d bytes (error %v), Content-Type %q; want the %d-byte payload, application/json",
						n, len(body), err, r.Header.Get("Content-Type"), len(payload))
				}
				if n == tt.rotateAt {
					srv.RotateKey()
				}
				if n <= unavailable {
					http.Error(w, "try again", http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Write(body)
			}))
			srv.Handle("GET /api/v1/me", whoAmI(t, srv))

			var attempts atomic.Int32
			rc := &retryablehttp.Client{
				HTTPClient:   cfg.Client(ctx), // heals a 401 within one attempt
				RetryWaitMin: time.Millisecond,
				RetryWaitMax: 10 * time.Millisecond,
				RetryMax:     4,
				CheckRetry:   retryablehttp.DefaultRetryPolicy,
				Backoff:      retryablehttp.DefaultBackoff,
				RequestLogHook: func(retryablehttp.Logger, *http.Request, int) {
					attempts.Add(1)
				},
			}
			// Log in first, so that a rotation before the request refuses
			// a token the client holds.
			get(t, ctx, rc, srv.URL+"/api/v1/me")
			if tt.rotateAt == 0 {
				srv.RotateKey()
			}
			attempts.Store(0)

			req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/api/v1/echo", payload)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := rc.Do(req)
			if err != nil {
				t.Fatalf("Do() error = %v", err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || err != nil || !bytes.Equal(got, payload) {
				t.Errorf("Do() = %s with %d bytes (read error %v), want 200 OK echoing the %d-byte payload",
					resp.Status, len(got), err, len(payload))
			}
			// The 401 and its retry happen inside one retryablehttp attempt.
			if got, want := attempts.Load(), int32(unavailable+1); got != want {
				t.Errorf("retryablehttp made %d attempts, want %d", got, want)
			}
			if got, want := calls.Load(), int32(unavailable+1); got != want {
				t.Errorf("the endpoint saw %d calls, want %d", got, want)
			}
			// One login before and one after the rotation; the API calls are
			// the first GET, the attempts that reached the endpoint, and the
			// refused one.
			checkStats(t, srv, econnecttest.Stats{Logins: 2, Refused: 1, APICalls: 1 + unavailable + 1 + 1})
		})
	}
}

// get makes a GET request that must answer 200.
func get(t *testing.T, ctx context.Context, rc *retryablehttp.Client, url string) {
	t.Helper()
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, want 200 OK", url, resp.Status)
	}
}
