package interop

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
)

const (
	username = "camera-1"
	password = "s3cret-Pa55word"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newServer starts a plain-HTTP econnecttest server with one user, closed
// when the test ends.
func newServer(t *testing.T) *econnecttest.Server {
	t.Helper()
	srv := econnecttest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddUser(username, password)
	return srv
}

// newTLSServer is newServer over TLS, with a self-signed certificate that
// srv.Client() trusts.
func newTLSServer(t *testing.T) *econnecttest.Server {
	t.Helper()
	srv := econnecttest.NewTLSServer()
	t.Cleanup(srv.Close)
	srv.AddUser(username, password)
	return srv
}

// setup returns the Config of the server's user and a context whose HTTP
// client, used for logins and renewals, is srv.Client(): it trusts the
// server's certificate and its idle connections close with the server. The
// context ends with the test, and with it every later auth call.
func setup(t *testing.T, srv *econnecttest.Server) (*econnect.Config, context.Context) {
	t.Helper()
	cfg := &econnect.Config{BaseURL: srv.URL, Username: username, Password: password}
	return cfg, context.WithValue(t.Context(), oauth2.HTTPClient, srv.Client())
}

// checkStats reports the counters of srv that differ from want.
// Connections is not compared: it depends on the client's pool.
func checkStats(t *testing.T, srv *econnecttest.Server, want econnecttest.Stats) {
	t.Helper()
	got := srv.Stats()
	got.Connections = want.Connections
	if got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// whoAmI answers the username its bearer token names, as JSON. It runs
// behind srv.Handle, so the token has already been checked.
func whoAmI(t *testing.T, srv *econnecttest.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, err := srv.VerifyToken(bearer(r.Header.Get("Authorization")))
		if err != nil {
			t.Errorf("VerifyToken() in a protected handler: %v", err)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(me{Username: name})
	})
}

// me is the answer of whoAmI.
type me struct {
	Username string `json:"username"`
}

// bearer returns the token of an Authorization value "Bearer <token>", or "".
func bearer(auth string) string {
	tok, _ := strings.CutPrefix(auth, "Bearer ")
	if tok == auth {
		return ""
	}
	return tok
}
