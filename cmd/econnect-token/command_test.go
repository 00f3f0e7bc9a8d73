package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

// writeOtherCA writes as PEM a self-signed CA certificate that signed
// nothing, and returns the file name. (Every httptest server has the same
// certificate.)
func writeOtherCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "another CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, der)
}

func TestLogin(t *testing.T) {
	t.Parallel()
	plain, secure := newServer(t, false), newServer(t, true)
	caFile := writeCACert(t, secure)
	tests := []struct {
		name       string
		srv        *econnecttest.Server
		env        map[string]string
		stdin      string
		args       []string
		wantStderr string
	}{
		{name: "env", srv: plain, env: loginEnv(plain)},
		{name: "flags override env", srv: plain,
			env:  map[string]string{"ECONNECT_URL": "http://127.0.0.1:1", "ECONNECT_USERNAME": "nobody", "ECONNECT_PASSWORD": testPassword},
			args: []string{"-url", plain.URL, "-user", testUser}},
		{name: "password-stdin CRLF", srv: plain, stdin: testPassword + "\r\nnext line\n",
			env:  map[string]string{"ECONNECT_URL": plain.URL, "ECONNECT_USERNAME": testUser, "ECONNECT_PASSWORD": "not this one"},
			args: []string{"-password-stdin"}},
		{name: "password-stdin without newline", srv: plain, stdin: testPassword,
			args: []string{"-url", plain.URL, "-user", testUser, "-password-stdin"}},
		{name: "cacert", srv: secure, env: loginEnv(secure), args: []string{"-cacert", caFile}},
		{name: "insecure-skip-verify", srv: secure, env: loginEnv(secure), args: []string{"-insecure-skip-verify"},
			wantStderr: "econnect-token: warning: -insecure-skip-verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, tt.env, tt.stdin, tt.args...)
			checkToken(t, tt.srv, r)
			if tt.wantStderr == "" && r.stderr != "" || !strings.HasPrefix(r.stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want %q", r.stderr, tt.wantStderr)
			}
		})
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		omit     []string
		wantKeys int
	}{
		{name: "with expiry", wantKeys: 3},
		{name: "never expires", omit: []string{"exp"}, wantKeys: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, false)
			s.SetLifetime(time.Hour)
			s.OmitClaims(tt.omit...)
			r := runBinary(t, loginEnv(s), "", "-json")
			if r.code != exitOK || r.stderr != "" || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and one line of JSON", r.code, r.stdout, r.stderr)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
				t.Fatalf("stdout %q: %v", r.stdout, err)
			}
			checkJSON(t, s, got, tt.wantKeys)
		})
	}
}

// checkJSON checks the fields of -json's output.
func checkJSON(t *testing.T, s *econnecttest.Server, got map[string]string, wantKeys int) {
	t.Helper()
	if len(got) != wantKeys || got["username"] != testUser {
		t.Errorf("JSON = %v, want %d keys and username %q", got, wantKeys, testUser)
	}
	if name, err := s.VerifyToken(got["token"]); err != nil || name != testUser {
		t.Errorf("VerifyToken(token) = %q, %v, want %q, nil", name, err, testUser)
	}
	exp, ok := got["expiry"]
	if !ok {
		return
	}
	expiry, err := time.Parse(time.RFC3339, exp)
	if left := time.Until(expiry); err != nil || left < 58*time.Minute || left > time.Hour {
		t.Errorf("expiry = %q (%v), want about an hour from now in RFC 3339", exp, err)
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		env    func(tok string) map[string]string
		stdin  func(tok string) string
		rotate bool // the server refuses the token
	}{
		{name: "ECONNECT_TOKEN", env: func(tok string) map[string]string { return map[string]string{"ECONNECT_TOKEN": tok} }},
		{name: "stdin", stdin: func(tok string) string { return tok + "\n" }},
		{name: "stdin CRLF", stdin: func(tok string) string { return tok + "\r\n" }},
		{name: "refused", rotate: true, env: func(tok string) map[string]string { return map[string]string{"ECONNECT_TOKEN": tok} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, false)
			old := login(t, s)
			env, stdin := map[string]string{}, ""
			if tt.env != nil {
				env = tt.env(old)
			}
			if tt.stdin != nil {
				stdin = tt.stdin(old)
			}
			env["ECONNECT_URL"] = s.URL // and no username or password
			if tt.rotate {
				s.RotateKey()
				checkFailure(t, runBinary(t, env, stdin, "-renew"), exitRefused, "log in again without -renew", old)
				return
			}
			if tok := checkToken(t, s, runBinary(t, env, stdin, "-renew")); tok == old {
				t.Errorf("-renew printed the old token")
			}
			if st := s.Stats(); st.Logins != 1 || st.Renewals != 1 {
				t.Errorf("server saw %+v, want 1 login (the test's) and 1 renewal", st)
			}
		})
	}
}

// login returns a token of the test user, logged in with the library.
func login(t *testing.T, s *econnecttest.Server) string {
	t.Helper()
	cfg := &econnect.Config{BaseURL: s.URL, Username: testUser, Password: testPassword}
	tok, err := cfg.Token(context.WithValue(t.Context(), oauth2.HTTPClient, s.Client()))
	if err != nil {
		t.Fatalf("Token() error = %v", err)
	}
	return tok.AccessToken
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	plain, secure, closed := newServer(t, false), newServer(t, true), newServer(t, false)
	closed.Close()
	otherCA := writeOtherCA(t)
	wrong := loginEnv(plain)
	wrong["ECONNECT_PASSWORD"] = "wrong-SENTINEL-93"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{name: "wrong password", env: wrong, code: exitRefused, want: "check the username (-user or ECONNECT_USERNAME) and the password"},
		{name: "unknown user", env: loginEnv(plain), args: []string{"-user", "nobody"}, code: exitRefused, want: "wrong username or password"},
		{name: "server gone", env: loginEnv(closed), args: []string{"-timeout", "1s"}, code: exitUnavailable,
			want: "check -url and that the server is reachable"},
		{name: "untrusted certificate", env: loginEnv(secure), code: exitUsage, want: "give its CA certificate with -cacert FILE"},
		{name: "wrong cacert", env: loginEnv(secure), args: []string{"-cacert", otherCA}, code: exitUsage,
			want: "not signed by a certificate in the -cacert file"},
		{name: "not the service root", env: loginEnv(plain), args: []string{"-url", plain.URL + "/nope"}, code: exitUsage,
			want: "check -url: it must be the service root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runBinary(t, tt.env, "", tt.args...)
			checkFailure(t, r, tt.code, tt.want, "wrong-SENTINEL-93")
		})
	}
}

func TestAllowHTTP(t *testing.T) {
	t.Parallel()
	// 192.0.2.0/24 is TEST-NET-1: the command must refuse it before any I/O.
	env := map[string]string{"ECONNECT_URL": "http://192.0.2.1:6009", "ECONNECT_USERNAME": testUser, "ECONNECT_PASSWORD": testPassword}
	start := time.Now()
	r := runBinary(t, env, "")
	checkFailure(t, r, exitUsage, "use https, or -allow-http on a network you trust")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusal took %v: it must come before any network I/O", d)
	}

	if runtime.GOOS != "linux" {
		t.Skip("0.0.0.0 reaches the local host only on Linux")
	}
	// Linux routes 0.0.0.0 to the local host, which the library does not
	// count as loopback: a non-loopback URL that stays on this machine.
	s := newServer(t, false)
	env = loginEnv(s)
	env["ECONNECT_URL"] = strings.Replace(s.URL, "127.0.0.1", "0.0.0.0", 1)
	checkFailure(t, runBinary(t, env, ""), exitUsage, "-allow-http")
	checkToken(t, s, runBinary(t, env, "", "-allow-http"))
}

func TestUsageBinary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "nothing set", want: "use -url or set ECONNECT_URL"},
		{name: "password flag", args: []string{"-password", "hunter2"}, want: "set ECONNECT_PASSWORD or use -password-stdin"},
		{name: "unknown flag", args: []string{"-verbose"}, want: "an unknown flag, or a flag without its value; run econnect-token -h"},
		{name: "missing cacert", env: map[string]string{"ECONNECT_URL": "https://127.0.0.1:1", "ECONNECT_USERNAME": testUser, "ECONNECT_PASSWORD": testPassword},
			args: []string{"-cacert", "/nonexistent/ca.pem"}, want: "give a PEM file with the server's CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkFailure(t, runBinary(t, tt.env, "", tt.args...), exitUsage, tt.want, "hunter2")
		})
	}
}
