package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// runInProcess runs the command in-process with env as its whole
// environment, and a token cache of its own unless env names one.
func runInProcess(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runWith(t, &process{stdin: strings.NewReader(stdin)}, env, args...)
}

// runWith runs the command in-process as runInProcess does, with p's stdin.
func runWith(t *testing.T, p *process, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	setEnv(t, p, env)
	p.stdout, p.stderr = &stdout, &stderr
	code := run(t.Context(), args, p)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// setEnv makes env p's whole environment, with a token cache of its own
// unless env names one.
func setEnv(t *testing.T, p *process, env map[string]string) {
	t.Helper()
	cacheDir := t.TempDir()
	p.getenv = func(k string) string {
		if v, ok := env[k]; ok || k != "ECONNECT_CACHE_DIR" {
			return v
		}
		return cacheDir
	}
	p.environ = func() []string {
		kv := []string{"PATH=" + os.Getenv("PATH"), "ECONNECT_CACHE_DIR=" + p.getenv("ECONNECT_CACHE_DIR")}
		for k, v := range env {
			kv = append(kv, k+"="+v)
		}
		return kv
	}
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
		{name: "value for password-stdin", env: noPassword, args: []string{"-password-stdin=hunter2"}, want: "-password-stdin takes no value"},
		{name: "password as argument", env: noPassword, args: []string{"hunter2"}, want: "unexpected arguments after the flags"},
		{name: "bad timeout", env: full, args: []string{"-timeout", "hunter2"}, want: "-timeout takes a duration with a unit, such as 30s"},
		{name: "timeout without unit", env: full, args: []string{"-timeout", "5"}, want: "-timeout needs a unit, such as 5s"},
		{name: "timeout without value", env: full, args: []string{"-timeout"}, want: "or a flag without its value"},
		{name: "unknown flag", env: full, args: []string{"-verbose"}, want: "an unknown flag, or a flag without its value; run econnect-token -h"},
		{name: "unknown flag like a password", env: full, args: []string{"-Hunter2"}, want: "an unknown flag, or a flag without its value; run econnect-token -h"},
		{name: "password flag before a value", env: noPassword, args: []string{"-password", "hunter2"}, want: "there is no -password flag"},
		{name: "zero timeout", env: full, args: []string{"-timeout", "0s"}, want: "-timeout must be positive"},
		{name: "bad syntax", env: full, args: []string{"-=hunter2"}, want: "an unknown flag, or a flag without its value; run econnect-token -h"},
		{name: "bad syntax after two dashes", env: full, args: []string{"---hunter2"}, want: "an unknown flag, or a flag without its value; run econnect-token -h"},
		{name: "credentials in url", env: full, args: []string{"-url", "https://bob:hunter2@127.0.0.1:1"}, want: "must not hold a username or password"},
		{name: "relative url", env: full, args: []string{"-url", "customer.econnectcloud.com/identities"}, want: "must be an absolute https:// (or http://) URL"},
		{name: "not a url", env: full, args: []string{"-url", "https://hunter2:%zz@127.0.0.1"}, want: "the server URL is not a URL"},
		{name: "plain http", env: full, args: []string{"-url", "http://192.0.2.1:6009"}, want: "refusing plain http to 192.0.2.1:6009"},
		{name: "cacert and insecure", env: full, args: []string{"-cacert", notPEM, "-insecure-skip-verify"}, want: "contradict each other"},
		{name: "cacert not PEM", env: full, args: []string{"-cacert", notPEM}, want: "holds no PEM certificate"},
		{name: "cacert missing", env: full, args: []string{"-cacert", notPEM + ".missing"}, want: "no such file"},
		{name: "renew with password-stdin", env: full, args: []string{"-renew", "-password-stdin"}, want: "-renew uses no password; drop -password-stdin"},
		{name: "renew with fresh", env: full, args: []string{"-renew", "-fresh"}, want: "-fresh logs in and -renew does not"},
		{name: "renew without token or cache", env: full, args: []string{"-renew", "-no-cache"}, want: "set ECONNECT_TOKEN or give the token on stdin"},
		{name: "renew without token, user or cached token", env: map[string]string{"ECONNECT_URL": "https://127.0.0.1:1"}, args: []string{"-renew"},
			want: "or name the user whose cached token to renew with -user"},
		{name: "renew without token or cached token", env: full, args: []string{"-renew"}, want: "none cached for this -user and -url"},
		{name: "renew garbage", env: full, stdin: "hunter2\n", args: []string{"-renew"}, want: "the token to renew is not usable"},
		{name: "refused without token", env: full, args: []string{"-refused"}, want: "-refused: no token: set ECONNECT_TOKEN"},
		{name: "refused garbage", env: full, stdin: "hunter2\n", args: []string{"-refused"}, want: "-refused: the refused token is not usable"},
		{name: "refused with renew", env: full, args: []string{"-refused", "-renew"}, want: "-renew renews a token and -refused replaces one"},
		{name: "refused with fresh", env: full, args: []string{"-refused", "-fresh"}, want: "-fresh logs in whatever the cache holds"},
		{name: "refused with password-stdin", env: noPassword, stdin: "hunter2\n", args: []string{"-refused", "-password-stdin"},
			want: "stdin holds the password; set ECONNECT_TOKEN to the refused token"},
		{name: "demo with url", args: []string{"-demo", "-url", "https://127.0.0.1:1"}, want: "-demo runs its own server and takes no -url"},
		{name: "demo with no-cache", args: []string{"-demo", "-no-cache"}, want: "-demo runs its own server and takes no -no-cache"},
		{name: "json and header", env: full, args: []string{"-json", "-header"}, want: "-json and -header are two ways to print the token"},
		{name: "a plain run's flag before proxy", env: full, args: []string{"-json", "proxy"}, want: "econnect-token proxy takes no -json; drop it"},
		{name: "a flag before fake", args: []string{"-no-cache", "fake"}, want: "econnect-token fake takes no -no-cache; drop it"},
		{name: "flags before and after exec", env: full, args: []string{"-timeout", "0s", "exec", "-status", "3", "--", "true"}, want: "-timeout must be positive"},
		{name: "proxy without url", args: []string{"proxy"}, want: "no server URL"},
		{name: "proxy with a plain run's flag", env: full, args: []string{"proxy", "-json"}, want: "an unknown flag, or a flag without its value; run econnect-token proxy -h"},
		{name: "proxy with an argument", env: full, args: []string{"proxy", "hunter2"}, want: "unexpected arguments after the flags"},
		{name: "proxy on all interfaces", env: full, args: []string{"proxy", "-listen", ":8080"}, want: "-listen takes host:port with a loopback host"},
		{name: "proxy plain http", env: full, args: []string{"proxy", "-url", "http://192.0.2.1:6009"}, want: "refusing plain http to 192.0.2.1:6009"},
		{name: "exec without command", env: full, args: []string{"exec"}, want: "exec: no command to run"},
		{name: "exec without command after --", env: full, args: []string{"exec", "--"}, want: "exec: no command to run"},
		{name: "exec status 0", env: full, args: []string{"exec", "-status", "0", "--", "true"}, want: "-status takes an exit status from 1 to 255"},
		{name: "exec status not a number", env: full, args: []string{"exec", "-status", "hunter2", "--", "true"}, want: "invalid value for -status"},
		{name: "exec without password", env: noPassword, args: []string{"exec", "--", "true"}, want: "no password"},
		{name: "fake with url", args: []string{"fake", "-url", "https://127.0.0.1:1"}, want: "an unknown flag, or a flag without its value; run econnect-token fake -h"},
		{name: "fake on another host", args: []string{"fake", "-listen", "192.0.2.1:80"}, want: "-listen takes host:port with a loopback host"},
		{name: "fake on a unix socket", args: []string{"fake", "-listen", "unix:/tmp/fake.sock"}, want: "fake listens on TCP only"},
		{name: "fake lifetime under a second", args: []string{"fake", "-lifetime", "500ms"}, want: "-lifetime must be at least 1s"},
		{name: "fake with an argument", args: []string{"fake", "hunter2"}, want: "fake takes no arguments"},
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

func TestHeader(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	r := runInProcess(t, loginEnv(s), "", "-header")
	tok, ok := strings.CutPrefix(r.stdout, "Authorization: Bearer ")
	if r.code != exitOK || r.stderr != "" || !ok || !jwtLine.MatchString(tok) {
		t.Fatalf("-header: exit %d, stdout %q, stderr %q; want 0 and one line \"Authorization: Bearer <JWT>\"", r.code, r.stdout, r.stderr)
	}
	if name, err := s.VerifyToken(strings.TrimSpace(tok)); err != nil || name != testUser {
		t.Errorf("VerifyToken(printed token) = %q, %v, want %q, nil", name, err, testUser)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url     string
		wantErr bool
	}{
		{url: "https://customer.econnectcloud.com/identities"},
		{url: "https://10.0.0.5:5009"},
		{url: "http://localhost:6009"},
		{url: "http://10.0.0.5:6009"}, // plain http is the library's to refuse
		{url: "ftp://10.0.0.5", wantErr: true},
		{url: "/identities", wantErr: true},
		{url: "customer.econnectcloud.com/identities", wantErr: true},
		{url: "https://u:p@host", wantErr: true},
		{url: "https://u:%zz@host", wantErr: true},
	}
	for _, tt := range tests {
		if _, err := parseURL(tt.url); (err != nil) != tt.wantErr {
			t.Errorf("parseURL(%q) error = %v, want error %t", tt.url, err, tt.wantErr)
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

func TestOutputDoesNotDependOnThePassword(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	failing := newServer(t, false)
	failing.FailLogin(100, econnecttest.Fault{Status: http.StatusServiceUnavailable, Body: `{"error":"down"}`})
	// Passwords that occur in the messages, or are part of words there.
	passwords := []string{"password", "e", "wrong", "x", "login", "refused", "econnect-token", " "}
	// Against the failing server, -timeout 1s: one login, whose backoff
	// ends past the deadline, so that no run waits for a second.
	tests := []struct {
		name string
		srv  *econnecttest.Server
		args []string
	}{
		{name: "wrong password", srv: s},
		{name: "wrong password, on stdin", srv: s, args: []string{"-password-stdin"}},
		{name: "server failing", srv: failing, args: []string{"-timeout", "1s"}},
		{name: "bad flag", srv: s, args: []string{"-timeout", "5"}},
		{name: "-header, wrong password", srv: s, args: []string{"-header"}},
		{name: "proxy, wrong password", srv: s, args: []string{"proxy"}},
		{name: "proxy, wrong password, on stdin", srv: s, args: []string{"proxy", "-password-stdin"}},
		{name: "proxy, server failing", srv: failing, args: []string{"proxy", "-timeout", "1s"}},
		{name: "exec, wrong password", srv: s, args: []string{"exec", "--", "true"}},
		{name: "exec, wrong password, on stdin", srv: s, args: []string{"exec", "-password-stdin", "--", "true"}},
		{name: "exec, server failing", srv: failing, args: []string{"exec", "-timeout", "1s", "--", "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var first result
			for i, pw := range passwords {
				env := map[string]string{"ECONNECT_URL": tt.srv.URL, "ECONNECT_USERNAME": testUser, "ECONNECT_PASSWORD": pw}
				r := runInProcess(t, env, pw+"\n", tt.args...)
				if i == 0 {
					first = r
					continue
				}
				if r != first {
					t.Errorf("password %q: %+v\nwant the same output as with %q: %+v", pw, r, passwords[0], first)
				}
			}
			if first.code == exitOK || first.stderr == "" {
				t.Errorf("exit %d, stderr %q; want a failure", first.code, first.stderr)
			}
		})
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	t.Parallel()
	r := runInProcess(t, nil, "", "-h")
	newFlagSet(plainMode, &options{}).VisitAll(func(f *flag.Flag) {
		if f.Usage == "" {
			if strings.Contains(r.stdout, "-"+f.Name+" ") {
				t.Errorf("-h lists the hidden -%s", f.Name)
			}
			return
		}
		if !strings.Contains(r.stdout, "  -"+f.Name+" ") && !strings.Contains(r.stdout, "  -"+f.Name+"\n") {
			t.Errorf("-h does not list -%s", f.Name)
		}
	})
	for _, want := range []string{"Token cache:", "ECONNECT_CACHE_DIR", "-no-cache", "-fresh", "130, 143"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := runBinary(t, nil, "", "-version")
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build information")
	}
	want := "econnect-token " + cmp.Or(bi.Main.Version, "(devel)") + " (" + runtime.Version() + " "
	if r.code != exitOK || r.stderr != "" || !strings.HasPrefix(r.stdout, want) || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("-version: exit %d, stdout %q, stderr %q; want 0 and one line starting %q", r.code, r.stdout, r.stderr, want)
	}
}

func TestTerminalPrompts(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	tests := []struct {
		name   string
		env    map[string]string
		stdin  string
		args   []string
		prompt string // empty: no prompt
	}{
		{name: "password", env: map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_USERNAME": testUser}, stdin: testPassword + "\n",
			args: []string{"-password-stdin"}, prompt: "econnect-token: -password-stdin: type the password and press Enter"},
		{name: "token", env: map[string]string{"ECONNECT_URL": s.URL}, stdin: login(t, s) + "\n",
			args: []string{"-renew"}, prompt: "econnect-token: -renew: paste the token to renew and press Enter"},
		{name: "token from the environment", env: map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_TOKEN": login(t, s)},
			args: []string{"-renew"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := &process{stdin: strings.NewReader(tt.stdin), stdinTerminal: true}
			r := runWith(t, p, tt.env, tt.args...)
			checkToken(t, s, r)
			if got := strings.TrimSuffix(r.stderr, "\n"); !strings.HasPrefix(got, tt.prompt) || tt.prompt == "" && got != "" {
				t.Errorf("stderr = %q, want one line starting %q", r.stderr, tt.prompt)
			}
		})
	}
}

func TestRenewFromTerminalUsesTheCache(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	cached := seedCache(t, s, dir, 30*time.Minute)
	env := map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_USERNAME": testUser, "ECONNECT_CACHE_DIR": dir}
	// Nothing to read: the cached token is renewed without waiting for one.
	p := &process{stdin: failingReader{}, stdinTerminal: true}
	r := runWith(t, p, env, "-renew")
	if tok := checkToken(t, s, r); tok == cached || r.stderr != "" {
		t.Errorf("stderr %q, printed the cached token: %t; want a renewed token and no prompt", r.stderr, tok == cached)
	}
}

// failingReader is a terminal that fails the run if the command reads it.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("the terminal was read") }

func TestFirstLineInterrupted(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := firstLine(ctx, pr); !errors.Is(err, context.Canceled) {
		t.Errorf("firstLine(cancelled, a reader that blocks) error = %v, want context.Canceled", err)
	}
}

func TestNameMismatchHint(t *testing.T) {
	t.Parallel()
	s := newServer(t, true) // its certificate: example.com, *.example.com, 127.0.0.1, ::1
	env := loginEnv(s)
	env["ECONNECT_URL"] = strings.Replace(s.URL, "127.0.0.1", "localhost", 1)
	r := runInProcess(t, env, "", "-cacert", writeCACert(t, s))
	checkFailure(t, r, exitUsage, "the server's certificate is for example.com, *.example.com, 127.0.0.1, ::1, not for localhost, the host in -url")
}
