// Package wire speaks the Identities server's auth protocol: it builds the
// login and renewal requests, sends them following no redirect and hedging a
// call that does not answer, reads at most 1 MiB, and turns each answer into
// a token or an error that holds no secret.
//
// It decides nothing about when to call, nor whether BaseURL may be used:
// those are the token source's and the endpoint's jobs.
package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/econnect-oss/econnect/internal/jwtclaims"
)

const (
	// Timeout bounds every auth call, whatever the context allows.
	Timeout = 30 * time.Second
	// MaxAnswer is how many bytes of an auth answer are read at most.
	MaxAnswer = 1 << 20
	// MaxErrorBody is how many bytes of a refusal are kept, once redacted.
	MaxErrorBody = 512
	// MaxRetryAfter caps how long a server's Retry-After holds auth calls.
	MaxRetryAfter = 5 * time.Minute
)

// Answer is a good answer of the login or renewal endpoint.
type Answer struct {
	Token    string           // the JWT
	Username string           // the answer's username, else the JWT's unique_name
	Claims   jwtclaims.Claims // the JWT's claims, unverified
	Sent     time.Time        // when the request that got it left, on the wall clock
	Received time.Time        // when the answer was read, on the wall clock
}

// Call is one auth call: where to send it and how.
type Call struct {
	Client *http.Client // the context's client; its CheckRedirect is ignored
	Base   *url.URL     // BaseURL, already checked
	Now    func() time.Time
	// Hedge is how long an attempt may go unanswered before one more starts
	// on a connection of its own; zero: never. Where Client cannot give an
	// attempt a connection of its own, the call is not hedged.
	Hedge time.Duration
	// BadCredentials is wrapped by the error of a login refused with 400.
	BadCredentials error
}

// Login logs in as username with password.
func (c Call) Login(ctx context.Context, username, password string) (Answer, error) {
	body, err := json.Marshal(struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}{username, password})
	if err != nil {
		return Answer{}, fmt.Errorf("econnect: login: %w", err)
	}
	build := func(ctx context.Context) *http.Request {
		r := c.request(ctx, http.MethodPost, "api/v1/authenticate", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		return r
	}
	return c.exchange(ctx, "login", password, build)
}

// Renew renews the JWT raw.
func (c Call) Renew(ctx context.Context, raw string) (Answer, error) {
	build := func(ctx context.Context) *http.Request {
		r := c.request(ctx, http.MethodGet, "api/v1/renewToken", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		return r
	}
	return c.exchange(ctx, "renewal", raw, build)
}

// request builds a request to path below Base, keeping Base's own path.
func (c Call) request(ctx context.Context, method, path string, body *bytes.Reader) *http.Request {
	u := c.Base.JoinPath(path).String()
	var r *http.Request
	if body != nil {
		r, _ = http.NewRequestWithContext(ctx, method, u, body)
	} else {
		r, _ = http.NewRequestWithContext(ctx, method, u, nil)
	}
	r.Header.Set("Accept", "application/json")
	return r
}
