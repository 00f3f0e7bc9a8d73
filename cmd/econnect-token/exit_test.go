package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	status := func(code int) error {
		return fmt.Errorf("econnect: login: %w", &oauth2.RetrieveError{Response: &http.Response{StatusCode: code}})
	}
	wrapped := func(err error) error { return fmt.Errorf("econnect: login: %w", &tlsError{err}) }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"usage", usagef("no server URL"), exitUsage},
		{"plain http", fmt.Errorf("x: %w", econnect.ErrInsecureHTTP), exitUsage},
		{"certificate verification", wrapped(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), exitUsage},
		{"unknown authority", wrapped(x509.UnknownAuthorityError{}), exitUsage},
		{"host name", wrapped(x509.HostnameError{Host: "h"}), exitUsage},
		{"expired certificate", wrapped(x509.CertificateInvalidError{Reason: x509.Expired}), exitUsage},
		{"bad credentials", fmt.Errorf("x: %w", econnect.ErrBadCredentials), exitRefused},
		{"expired cached token", errExpired, exitRefused},
		{"302", status(http.StatusFound), exitUsage},
		{"400", status(http.StatusBadRequest), exitRefused},
		{"401", status(http.StatusUnauthorized), exitRefused},
		{"403", status(http.StatusForbidden), exitRefused},
		{"404", status(http.StatusNotFound), exitUsage},
		{"408", status(http.StatusRequestTimeout), exitUnavailable},
		{"418", status(http.StatusTeapot), exitRefused},
		{"429", status(http.StatusTooManyRequests), exitUnavailable},
		{"500", status(http.StatusInternalServerError), exitUnavailable},
		{"503", status(http.StatusServiceUnavailable), exitUnavailable},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, exitUnavailable},
		{"timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), exitUnavailable},
		{"garbled answer", errors.New("econnect: login: bad answer: no token"), exitUnavailable},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// tlsError wraps an error as a failed TLS handshake inside an HTTP client
// would, behind a net.Error.
type tlsError struct{ err error }

func (e *tlsError) Error() string   { return "tls: " + e.err.Error() }
func (e *tlsError) Unwrap() error   { return e.err }
func (e *tlsError) Timeout() bool   { return false }
func (e *tlsError) Temporary() bool { return false }

// TestExitStatus runs the command against servers that fail in each way a
// script must tell apart: stop (1), fix the configuration (2), retry later
// (3).
func TestExitStatus(t *testing.T) {
	t.Parallel()
	type setup func(t *testing.T) (env map[string]string, args []string)
	// -timeout 1s: a run retries a login that failed for a passing reason
	// while -timeout allows; the backoff after the first ends past 1 s.
	fault := func(f econnecttest.Fault) setup {
		return func(t *testing.T) (map[string]string, []string) {
			s := newServer(t, false)
			s.FailLogin(10, f)
			return loginEnv(s), []string{"-timeout", "1s"}
		}
	}
	tests := []struct {
		name  string
		setup setup
		want  int
	}{
		{"ok", fault(econnecttest.Fault{}), exitOK},
		{"wrong password", wrongPassword, exitRefused},
		{"400", fault(econnecttest.Fault{Status: http.StatusBadRequest}), exitRefused},
		{"403", fault(econnecttest.Fault{Status: http.StatusForbidden}), exitRefused},
		{"refused token", refusedToken, exitRefused},
		{"connection refused", connectionRefused, exitUnavailable},
		{"hung call", hungLogin, exitUnavailable},
		{"500", fault(econnecttest.Fault{Status: http.StatusInternalServerError}), exitUnavailable},
		{"429", fault(econnecttest.Fault{Status: http.StatusTooManyRequests}), exitUnavailable},
		{"garbled answer", fault(econnecttest.Fault{Body: "<html>maintenance</html>"}), exitUnavailable},
		{"404", notTheServiceRoot, exitUsage},
		{"302", fault(econnecttest.Fault{Status: http.StatusFound, Header: http.Header{"Location": {"https://login.example/"}}}), exitUsage},
		{"self-signed certificate without -cacert", selfSigned, exitUsage},
		{"expired certificate", expiredCertificate, exitUsage},
		{"plain http", plainHTTP, exitUsage},
		{"missing user", func(t *testing.T) (map[string]string, []string) {
			return map[string]string{"ECONNECT_URL": "https://127.0.0.1:1", "ECONNECT_PASSWORD": testPassword}, nil
		}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, args := tt.setup(t)
			r := runBinary(t, env, "", args...)
			if r.code != tt.want {
				t.Errorf("exit %d, stderr %q; want %d", r.code, r.stderr, tt.want)
			}
			if tt.want != exitOK && (r.stdout != "" || r.stderr == "") {
				t.Errorf("stdout %q, stderr %q; want nothing on stdout and why on stderr", r.stdout, r.stderr)
			}
		})
	}
}

func wrongPassword(t *testing.T) (map[string]string, []string) {
	env := loginEnv(newServer(t, false))
	env["ECONNECT_PASSWORD"] = "wrong-SENTINEL-93"
	return env, nil
}

// refusedToken renews a token the server no longer accepts.
func refusedToken(t *testing.T) (map[string]string, []string) {
	s := newServer(t, false)
	tok := login(t, s)
	s.RotateKey()
	return map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_TOKEN": tok}, []string{"-renew"}
}

func connectionRefused(t *testing.T) (map[string]string, []string) {
	s := newServer(t, false)
	s.Close()
	return loginEnv(s), []string{"-timeout", "1s"} // one attempt; see fault
}

func hungLogin(t *testing.T) (map[string]string, []string) {
	s := newServer(t, false)
	s.FailLogin(10, econnecttest.Fault{Hang: true})
	return loginEnv(s), []string{"-timeout", "500ms"}
}

func notTheServiceRoot(t *testing.T) (map[string]string, []string) {
	env := loginEnv(newServer(t, false))
	env["ECONNECT_URL"] += "/nope"
	return env, nil
}

func selfSigned(t *testing.T) (map[string]string, []string) {
	return loginEnv(newServer(t, true)), nil
}

func plainHTTP(t *testing.T) (map[string]string, []string) {
	env := loginEnv(newServer(t, false))
	env["ECONNECT_URL"] = "http://192.0.2.1:6009" // TEST-NET-1: refused before any I/O
	return env, nil
}

// expiredCertificate serves on loopback with a certificate that expired an
// hour ago, trusted with -cacert.
func expiredCertificate(t *testing.T) (map[string]string, []string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: "expired"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-2 * time.Hour),
		NotAfter:              time.Now().Add(-time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request %s %s reached a server whose certificate has expired", r.Method, r.URL.Path)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	env := map[string]string{"ECONNECT_URL": srv.URL, "ECONNECT_USERNAME": testUser, "ECONNECT_PASSWORD": testPassword}
	return env, []string{"-cacert", writePEM(t, der)}
}
