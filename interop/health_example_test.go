package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
)

// A health endpoint serves econnect.StatusOf of a Config.Client's token
// source as JSON, for a load balancer's readiness probe or a metrics
// scraper: 200 while the source holds a token that a request can use at
// once, 503 otherwise. StatusOf takes a lock for a few reads and makes no
// call, so the endpoint may be polled as often as a prober likes, and the
// status holds no secret.
func Example_health() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")
	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	client := cfg.Client(context.Background())
	ts := client.Transport.(*econnect.Transport).Source // a Client's source

	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		st, _ := econnect.StatusOf(ts)
		code := http.StatusServiceUnavailable
		if st.State == "fresh" || st.State == "due" {
			code = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(st)
	}))
	defer health.Close()

	probe := func(step string) {
		resp, err := health.Client().Get(health.URL)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		var st struct { // the fields that do not change from run to run
			State  string `json:"state"`
			Logins int    `json:"logins"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %d, state %s, logins %d\n", step, resp.StatusCode, st.State, st.Logins)
	}
	publish := func() {
		resp, err := client.Post(srv.URL+"/api/v1/faceEdge/publish", "application/json", strings.NewReader(
			`{"expanded":"aGVsbG8=","detectorName":"camera-1","ianaTimeZone":"UTC","detectTimeUtc":"2025-01-01T12:00:00Z"}`))
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
	}

	probe("before the first request")
	publish()
	probe("after a request")
	srv.RotateKey() // the next request is refused, and heals with a login
	publish()
	probe("after a key rotation")
	// Output:
	// before the first request: 503, state none, logins 0
	// after a request: 200, state fresh, logins 1
	// after a key rotation: 200, state fresh, logins 2
}
