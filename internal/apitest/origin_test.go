package apitest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/econnect-oss/econnect"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

// TestInsecureHTTP: a login over plain http to a host that is not loopback
// is refused before any network I/O, unless the Config allows it.
func TestInsecureHTTP(t *testing.T) {
	tests := []struct {
		base      string
		allow     bool
		wantCalls int
	}{
		{"http://192.0.2.10:6009", false, 0},
		{"http://identities.example.com/identities", false, 0},
		{"http://192.0.2.10:6009", true, 1},
		{"http://127.0.0.1:6009", false, 1},
		{"http://127.9.9.9:6009", false, 1},
		{"http://[::1]:6009", false, 1},
		{"http://localhost:6009/identities", false, 1},
		{"https://192.0.2.10:5009", false, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s allow=%t", tt.base, tt.allow), func(t *testing.T) {
			rec := &recorder{}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rec})
			cfg := econnect.Config{BaseURL: tt.base, Username: testUser, Password: testPassword, AllowInsecureHTTP: tt.allow}
			_, err := cfg.Token(ctx)
			if n := len(rec.calls()); n != tt.wantCalls {
				t.Errorf("Token() made %d requests, want %d", n, tt.wantCalls)
			}
			if refused := errors.Is(err, econnect.ErrInsecureHTTP); refused != (tt.wantCalls == 0) {
				t.Errorf("Token() error = %v; errors.Is(err, ErrInsecureHTTP) = %t, want %t", err, refused, tt.wantCalls == 0)
			}
			if tt.wantCalls == 0 && !strings.Contains(err.Error(), "AllowInsecureHTTP") {
				t.Errorf("Token() error = %v, want one naming AllowInsecureHTTP", err)
			}
		})
	}
}

// TestBadBaseURL: a BaseURL that is not an absolute http or https URL, or
// that holds credentials, is an error that does not repeat the password.
func TestBadBaseURL(t *testing.T) {
	for _, base := range []string{"", "identities.example.com", "ftp://host/x", "https://user:" + testPassword + "@host/", "https://host:bad:port"} {
		cfg := econnect.Config{BaseURL: base, Username: testUser, Password: testPassword}
		_, err := cfg.Token(context.Background())
		if err == nil || !strings.HasPrefix(err.Error(), "econnect: ") || strings.Contains(err.Error(), testPassword) {
			t.Errorf("Token() with BaseURL %q: error = %v, want a prefixed error without the password", base, err)
		}
	}
}

// TestNoOriginNoToken: with a BaseURL that has no origin, a Transport around
// a saved token, and a Client, send no token anywhere (fail closed), and
// still pass the requests on.
func TestNoOriginNoToken(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t)
	a, aRequests, aLeaked := otherOrigin(t)
	b, bRequests, bLeaked := otherOrigin(t)
	bases := []string{"", "relative/path", "://bad", "https://host:bad:port"}
	for _, base := range bases {
		t.Run(fmt.Sprintf("%q", base), func(t *testing.T) {
			cfg := econnect.Config{BaseURL: base, Username: testUser, Password: testPassword}
			clients := map[string]*http.Client{
				"Transport around TokenSourceFrom": {Transport: &econnect.Transport{Source: cfg.TokenSourceFrom(f.ctx, tok)}},
				"Client":                           cfg.Client(f.ctx),
			}
			for name, hc := range clients {
				for _, url := range []string{a.URL + "/api/v1/people", b.URL} {
					if code, _ := get(t, hc, url); code != http.StatusOK {
						t.Errorf("%s: Get(%s) status = %d, want 200", name, url, code)
					}
				}
			}
		})
	}
	want := int32(2 * len(bases))
	if aRequests.Load() != want || bRequests.Load() != want {
		t.Errorf("servers got %d and %d requests, want %d each", aRequests.Load(), bRequests.Load(), want)
	}
	if aLeaked.Load() != 0 || bLeaked.Load() != 0 {
		t.Errorf("servers got %d and %d requests with Authorization, want 0", aLeaked.Load(), bLeaked.Load())
	}
	if n := f.logins(); n != 1 {
		t.Errorf("auth server saw %d logins, want the 1 of the setup", n)
	}
}

// TestPlainHTTPNeverCarriesAToken: with a plain http BaseURL to a host that
// is not loopback, every way of sending a token refuses that origin before
// any network I/O, with an error that wraps ErrInsecureHTTP, and still
// passes requests to other origins without a token.
func TestPlainHTTPNeverCarriesAToken(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t)
	const camera = "http://camera.example:6009"
	ways := []struct {
		name   string
		client func(cfg *econnect.Config, ctx context.Context, base http.RoundTripper) *http.Client
	}{
		{"Transport around TokenSourceFrom", func(cfg *econnect.Config, ctx context.Context, base http.RoundTripper) *http.Client {
			return &http.Client{Transport: &econnect.Transport{Source: cfg.TokenSourceFrom(ctx, tok), Base: base}}
		}},
		{"Transport around TokenSource", func(cfg *econnect.Config, ctx context.Context, base http.RoundTripper) *http.Client {
			return &http.Client{Transport: &econnect.Transport{Source: cfg.TokenSource(ctx), Base: base}}
		}},
		{"Client", func(cfg *econnect.Config, ctx context.Context, _ http.RoundTripper) *http.Client {
			return cfg.Client(ctx)
		}},
	}
	for _, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			rec := &recorder{}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rec})
			cfg := econnect.Config{BaseURL: camera, Username: testUser, Password: testPassword}
			hc := way.client(&cfg, ctx, rec)
			body := &closeCounter{Reader: strings.NewReader("face")}
			req, _ := http.NewRequest(http.MethodPost, camera+"/api/v1/faceEdge/publish", body)
			_, err := hc.Do(req)
			if !errors.Is(err, econnect.ErrInsecureHTTP) || !strings.Contains(err.Error(), "AllowInsecureHTTP") {
				t.Errorf("Do(%s) error = %v, want one wrapping ErrInsecureHTTP and naming AllowInsecureHTTP", camera, err)
			}
			if n := body.closed.Load(); n != 1 {
				t.Errorf("request body closed %d times, want 1", n)
			}
			if code, _ := get(t, hc, "http://elsewhere.example/x"); code != http.StatusOK {
				t.Errorf("Get(another origin) status = %d, want 200", code)
			}
			if diff := cmp.Diff([]string{""}, rec.calls()); diff != "" {
				t.Errorf("requests on the network, by Authorization (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("Token and Renew", func(t *testing.T) {
		rec := &recorder{}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rec})
		cfg := econnect.Config{BaseURL: camera, Username: testUser, Password: testPassword}
		if _, err := cfg.Token(ctx); !errors.Is(err, econnect.ErrInsecureHTTP) {
			t.Errorf("Token() error = %v, want one wrapping ErrInsecureHTTP", err)
		}
		if _, err := cfg.Renew(ctx, tok); !errors.Is(err, econnect.ErrInsecureHTTP) {
			t.Errorf("Renew() error = %v, want one wrapping ErrInsecureHTTP", err)
		}
		if n := len(rec.calls()); n != 0 {
			t.Errorf("Token and Renew made %d requests, want 0", n)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		rec := &recorder{}
		cfg := econnect.Config{BaseURL: camera, Username: testUser, AllowInsecureHTTP: true}
		hc := &http.Client{Transport: &econnect.Transport{Source: cfg.TokenSourceFrom(f.ctx, tok), Base: rec}}
		get(t, hc, camera+"/api/v1/people")
		if diff := cmp.Diff([]string{"Bearer " + tok.AccessToken}, rec.calls()); diff != "" {
			t.Errorf("with AllowInsecureHTTP, requests by Authorization (-want +got):\n%s", diff)
		}
	})
}

// TestSameOrigin: through a Client, the bearer goes to BaseURL's origin
// (scheme, host and port; the host's case and a default port spelled out
// do not matter) and nowhere else.
func TestSameOrigin(t *testing.T) {
	jwt := hourJWT()
	rec := &recorder{login: jwt}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: rec})
	cfg := econnect.Config{BaseURL: "https://Host.example.com/identities", Username: testUser, Password: testPassword}
	hc := cfg.Client(ctx)
	tests := []struct {
		url  string
		want bool
	}{
		{"https://host.example.com/identities/api/v1/people", true},
		{"https://HOST.example.com:443/other", true},
		{"https://Host.example.com/", true},
		{"http://host.example.com/identities", false},
		{"https://host.example.com:5009/identities", false},
		{"https://host.example.com.evil.net/identities", false},
		{"https://evil.net/host.example.com", false},
		{"https://evil.net/?u=https://host.example.com", false},
	}
	for _, tt := range tests {
		get(t, hc, tt.url)
	}
	got := rec.calls()
	if len(got) != 1+len(tests) || got[0] != "" {
		t.Fatalf("requests by Authorization = %q, want a login and then %d requests", got, len(tests))
	}
	for i, tt := range tests {
		if carried := got[i+1] == "Bearer "+jwt; carried != tt.want || !carried && got[i+1] != "" {
			t.Errorf("Get(%s) carried Authorization %.20q, want the bearer %t", tt.url, got[i+1], tt.want)
		}
	}
}

// TestClientOrigin: the bearer goes only to BaseURL's origin, also when a
// request there is redirected to another.
func TestClientOrigin(t *testing.T) {
	f := newFixture(t)
	hc := f.cfg.Client(f.ctx)
	other, _, leaked := otherOrigin(t)
	f.srv.Handle("/api/v1/redirect", http.RedirectHandler(other.URL+"/landing", http.StatusFound))
	for _, url := range []string{other.URL + "/direct", f.srv.URL + "/api/v1/redirect"} {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("Get(%s) error = %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Request.URL.Host != strings.TrimPrefix(other.URL, "http://") {
			t.Errorf("Get(%s) ended at %s with %d, want 200 from the other server", url, resp.Request.URL, resp.StatusCode)
		}
	}
	if n := leaked.Load(); n != 0 {
		t.Errorf("the other origin received %d requests with Authorization, want 0", n)
	}
	if st := f.srv.Stats(); st.APICalls != 1 || st.Logins != 1 {
		t.Errorf("Stats = %+v, want the redirecting call authorized after 1 login", st)
	}
}
