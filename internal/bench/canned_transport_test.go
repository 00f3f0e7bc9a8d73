package bench

import (
	"net/http"
	"testing"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// The benchmarks fail on any answer but 200. These tests show that a 200
// from the canned transport means the client really sent its bearer.

func TestCannedRefusesAnotherBearer(t *testing.T) {
	rt := newCanned(newJWT(1))
	for _, tt := range []struct {
		name   string
		header string
		want   int
	}{
		{"its own token", rt.bearer, http.StatusOK},
		{"another token", "Bearer " + newJWT(2), http.StatusUnauthorized},
		{"no header", "", http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "https://camera.example/identities/api/v1/ping", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, _ := rt.RoundTrip(req)
			if resp.StatusCode != tt.want {
				t.Errorf("RoundTrip() status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestCannedClientLogsInAndSendsTheToken(t *testing.T) {
	jwt := newJWT(1)
	rt := newCanned(jwt)
	ctx := withClient(t.Context(), rt)
	cfg := &econnect.Config{BaseURL: "https://camera.example/identities", Username: "camera-1", Password: "s3cret"}
	req, _ := http.NewRequest(http.MethodPost, cfg.BaseURL+"/api/v1/faceEdge/publish", nil)
	for name, hc := range map[string]*http.Client{
		"Config.Client":    cfg.Client(ctx),
		"hand-set header":  {Transport: withHeader{bearer: rt.bearer, base: rt}},
		"oauth2.NewClient": oauth2.NewClient(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: jwt})),
	} {
		if err := send(hc, req); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
