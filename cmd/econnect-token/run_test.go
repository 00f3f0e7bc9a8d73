package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// runInProcess runs the command in-process with env as its whole
// environment.
func runInProcess(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := run(t.Context(), args, getenv, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestRunUsage(t *testing.T) {
	t.Parallel()
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{"ECONNECT_URL": "https://127.0.0.1:1", "ECONNECT_USERNAME": testUser, "ECONNECT_PASSWORD": testPassword}
	noPassword := map[string]string{"ECONNECT_URL": "https://127.0.0.1:1", "ECONNECT_USERNAME": testUser}
	tests := []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		want  string
	}{
		{name: "no url", want: "no server URL: use -url or set ECONNECT_URL"},
		{name: "no user", env: map[string]string{"ECONNECT_URL": "https://127.0.0.1:1"}, want: "use -user or set ECONNECT_USERNAME"},
		{name: "no password", env: noPassword, want: "no password: set ECONNECT_PASSWORD or use -password-stdin"},
		{name: "empty stdin", env: noPassword, args: []string{"-password-stdin"}, want: "the first line of stdin is empty"},
		{name: "password flag", env: noPassword, args: []string{"-password=hunter2"}, want: "there is no -password flag"},
		{name: "value for password-stdin", env: noPassword, args: []string{"-password-stdin=hunter2"}, want: "invalid value for -password-stdin"},
		{name: "password as argument", env: noPassword, args: []string{"hunter2"}, want: "unexpected arguments after the flags"},
		{name: "bad timeout", env: full, args: []string{"-timeout", "hunter2"}, want: "invalid value for -timeout"},
		{name: "zero timeout", env: full, args: []string{"-timeout", "0s"}, want: "-timeout must be positive"},
		{name: "bad syntax", env: full, args: []string{"-=hunter2"}, want: "bad flag syntax"},
		{name: "credentials in url", env: full, args: []string{"-url", "https://bob:hunter2@127.0.0.1:1"}, want: "must not hold a username or password"},
		{name: "relative url", env: full, args: []string{"-url", "customer.econnectcloud.com/identities"}, want: "must be an absolute https:// (or http://) URL"},
		{name: "not a url", env: full, args: []string{"-url", "https://hunter2:%zz@127.0.0.1"}, want: "the server URL is not a URL"},
		{name: "plain http", env: full, args: []string{"-url", "http://192.0.2.1:6009"}, want: "refusing plain http to 192.0.2.1:6009"},
		{name: "cacert and insecure", env: full, args: []string{"-cacert", notPEM, "-insecure-skip-verify"}, want: "contradict each other"},
		{name: "cacert not PEM", env: full, args: []string{"-cacert", notPEM}, want: "holds no PEM certificate"},
		{name: "cacert missing", env: full, args: []string{"-cacert", notPEM + ".missing"}, want: "no such file"},
		{name: "renew with password-stdin", env: full, args: []string{"-renew", "-password-stdin"}, want: "-renew needs no password"},
		{name: "renew without token", env: full, args: []string{"-renew"}, want: "set ECONNECT_TOKEN or give the token on stdin"},
		{name: "renew garbage", env: full, stdin: "hunter2\n", args: []string{"-renew"}, want: "the token to renew is not usable"},
		{name: "demo with url", args: []string{"-demo", "-url", "https://127.0.0.1:1"}, want: "-demo runs its own server and takes no -url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runInProcess(t, tt.env, tt.stdin, tt.args...)
			checkFailure(t, r, exitUsage, tt.want, "hunter2")
			if n := strings.Count(r.stderr, "\n"); n != 1 {
				t.Errorf("stderr = %q, want one line", r.stderr)
			}
		})
	}
}

func TestRunRenew(t *testing.T) {
	t.Parallel()
	s := newServer(t, true)
	old := login(t, s)
	env := map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_TOKEN": old}
	r := runInProcess(t, env, "", "-renew", "-cacert", writeCACert(t, s))
	if tok := checkToken(t, s, r); tok == old {
		t.Errorf("-renew printed the old token")
	}
}

func TestRunDemo(t *testing.T) {
	t.Parallel()
	r := runInProcess(t, nil, "", "-demo", "-json")
	if r.code != exitOK {
		t.Fatalf("-demo -json: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, `{"token":"eyJ`) || !strings.Contains(r.stdout, `"username":"camera-1"}`) {
		t.Errorf("-demo -json printed %q, want the token as JSON", r.stdout)
	}
}

func TestFirstLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "", want: ""},
		{in: "pw", want: "pw"},
		{in: "pw\n", want: "pw"},
		{in: "pw\r\n", want: "pw"},
		{in: " pw \t\n", want: " pw \t"},
		{in: "pw\nsecond\n", want: "pw"},
		{in: "\npw\n", want: ""},
		{in: strings.Repeat("x", maxLine-1) + "\n", want: strings.Repeat("x", maxLine-1)},
		{in: strings.Repeat("x", maxLine+1), wantErr: true},
	}
	for _, tt := range tests {
		got, err := firstLine(strings.NewReader(tt.in))
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("firstLine(%.20q) = %.20q, %v, want %.20q, error %t", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url       string
		allowHTTP bool
		wantErr   bool
	}{
		{url: "https://customer.econnectcloud.com/identities"},
		{url: "https://10.0.0.5:5009"},
		{url: "http://localhost:6009"},
		{url: "http://LOCALHOST:6009"},
		{url: "http://127.0.0.1:6009/identities/"},
		{url: "http://127.255.255.254"},
		{url: "http://[::1]:6009"},
		{url: "http://[::ffff:127.0.0.1]:6009"},
		{url: "http://10.0.0.5:6009", wantErr: true},
		{url: "http://0.0.0.0:6009", wantErr: true},
		{url: "http://localhost.example:6009", wantErr: true},
		{url: "http://10.0.0.5:6009", allowHTTP: true},
		{url: "ftp://10.0.0.5", wantErr: true},
		{url: "/identities", wantErr: true},
		{url: "https://u:p@host", wantErr: true},
	}
	for _, tt := range tests {
		if err := checkURL(tt.url, tt.allowHTTP); (err != nil) != tt.wantErr {
			t.Errorf("checkURL(%q, %t) = %v, want error %t", tt.url, tt.allowHTTP, err, tt.wantErr)
		}
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	o := &options{url: "http://10.0.0.5:6009", user: testUser, password: testPassword, allowHTTP: true}
	cfg := newConfig(o)
	if cfg.BaseURL != o.url || cfg.Username != testUser || cfg.Password != testPassword || !cfg.AllowInsecureHTTP {
		t.Errorf("newConfig(%+v) = %v, want its URL, user, password and AllowInsecureHTTP", o, cfg)
	}
}

func TestNewTokenJSON(t *testing.T) {
	t.Parallel()
	expiry := time.Date(2030, 1, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600))
	tok := (&oauth2.Token{AccessToken: "a.b.c", Expiry: expiry}).WithExtra(map[string]any{"username": testUser})
	want := tokenJSON{Token: "a.b.c", Expiry: "2030-01-02T02:04:05Z", Username: testUser}
	if got := newTokenJSON(tok); got != want {
		t.Errorf("newTokenJSON() = %+v, want %+v", got, want)
	}
	if got := newTokenJSON(&oauth2.Token{AccessToken: "a.b.c"}); got != (tokenJSON{Token: "a.b.c"}) {
		t.Errorf("newTokenJSON(no expiry, no username) = %+v, want only the token", got)
	}
}

func TestHint(t *testing.T) {
	t.Parallel()
	status := func(code int) error {
		return fmt.Errorf("econnect: x: %w", &oauth2.RetrieveError{Response: &http.Response{StatusCode: code}})
	}
	tests := []struct {
		name  string
		err   error
		renew bool
		want  string
	}{
		{"bad credentials", fmt.Errorf("x: %w", econnect.ErrBadCredentials), false, "check the username"},
		{"renewal refused", status(http.StatusUnauthorized), true, "log in again without -renew"},
		{"not found", status(http.StatusNotFound), false, "check -url: it must be the service root"},
		{"too many", status(http.StatusTooManyRequests), false, "try again later"},
		{"server error", status(http.StatusBadGateway), false, "try again later"},
		{"forbidden", status(http.StatusForbidden), false, "check -url and the account"},
		{"timeout", fmt.Errorf("x: %w", context.DeadlineExceeded), false, "raise -timeout"},
		{"interrupted", fmt.Errorf("x: %w", context.Canceled), false, "interrupted"},
		{"network", &net.OpError{Op: "dial", Err: errors.New("refused")}, false, "that the server is reachable"},
		{"other", errors.New("econnect: login: bad answer: no token"), false, "check -url"},
	}
	for _, tt := range tests {
		if got := hint(tt.err, &options{renew: tt.renew}); !strings.Contains(got, tt.want) {
			t.Errorf("%s: hint(%v) = %q, want it to contain %q", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	t.Parallel()
	got := scrub("login failed for pw123 with a.b.c", "pw123", "", "a.b.c")
	if want := "login failed for [redacted] with [redacted]"; got != want {
		t.Errorf("scrub() = %q, want %q", got, want)
	}
}
