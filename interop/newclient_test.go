package interop

import (
	"context"
	"net/http"
	"testing"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/go-resty/resty/v2"
	"golang.org/x/oauth2"
)

// TestNewClientResty hands oauth2.NewClient(ctx, cfg.TokenSource(ctx)) to
// resty, a third-party client built on an *http.Client: the requests reach
// the server authenticated as the user, on one login.
func TestNewClientResty(t *testing.T) {
	srv := newServer(t)
	srv.Handle("GET /api/v1/me", whoAmI(t, srv))
	cfg, ctx := setup(t, srv)
	ts := cfg.TokenSource(ctx)
	hc := oauth2.NewClient(ctx, ts)
	// oauth2.NewClient must use the source as it is, and so keep its
	// renewal point, rather than wrap it in a cache of its own.
	if tr, ok := hc.Transport.(*oauth2.Transport); !ok || tr.Source != ts {
		t.Errorf("oauth2.NewClient did not use cfg.TokenSource as its Source")
	}

	rc := resty.NewWithClient(hc).SetBaseURL(srv.URL)
	for i := range 3 {
		var got me
		resp, err := rc.R().SetContext(ctx).SetResult(&got).Get("/api/v1/me")
		if err != nil {
			t.Fatalf("request %d: Get() error = %v", i+1, err)
		}
		if resp.StatusCode() != http.StatusOK || got.Username != username {
			t.Errorf("request %d: Get() = %s, username %q; want 200 OK, %q", i+1, resp.Status(), got.Username, username)
		}
	}
	checkStats(t, srv, econnecttest.Stats{Logins: 1, APICalls: 3})
}

// TestNewClientKeyRotation pins down which client, handed to resty, heals
// a 401 after a key rotation: oauth2.NewClient cannot tell the source that
// its token was refused, so the 401 reaches the caller; cfg.Client logs in
// again and retries.
func TestNewClientKeyRotation(t *testing.T) {
	tests := []struct {
		name       string
		client     func(*econnect.Config, context.Context) *http.Client
		wantStatus int
		want       econnecttest.Stats // after the rotation
	}{
		{
			name: "oauth2.NewClient",
			client: func(cfg *econnect.Config, ctx context.Context) *http.Client {
				return oauth2.NewClient(ctx, cfg.TokenSource(ctx))
			},
			wantStatus: http.StatusUnauthorized,
			want:       econnecttest.Stats{Logins: 1, Refused: 1, APICalls: 2},
		},
		{
			name:       "Config.Client",
			client:     (*econnect.Config).Client,
			wantStatus: http.StatusOK,
			want:       econnecttest.Stats{Logins: 2, Refused: 1, APICalls: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.Handle("GET /api/v1/me", whoAmI(t, srv))
			cfg, ctx := setup(t, srv)
			rc := resty.NewWithClient(tt.client(cfg, ctx)).SetBaseURL(srv.URL)
			if got := getStatus(t, ctx, rc); got != http.StatusOK {
				t.Fatalf("before the rotation: Get() status = %d, want 200", got)
			}
			srv.RotateKey()
			if got := getStatus(t, ctx, rc); got != tt.wantStatus {
				t.Errorf("after the rotation: Get() status = %d, want %d", got, tt.wantStatus)
			}
			checkStats(t, srv, tt.want)
		})
	}
}

// getStatus makes one GET request to the whoAmI endpoint and returns its status.
func getStatus(t *testing.T, ctx context.Context, rc *resty.Client) int {
	t.Helper()
	resp, err := rc.R().SetContext(ctx).Get("/api/v1/me")
	if err != nil {
		t.Fatalf("Get() error = %v", err)
	}
	return resp.StatusCode()
}
