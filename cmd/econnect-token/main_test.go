package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/testkit"
)

// The account of the test servers. The password is a sentinel: it must
// never show up in any output.
const (
	testUser     = "camera-1"
	testPassword = "pw-SENTINEL-7f3a9c"
)

var jwtLine = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$`)

// asCommand, set to 1 in a process's environment, makes the test binary run
// as the command itself: the tests re-execute it rather than build the
// command a second time, which doubled the first run of go test.
const asCommand = "ECONNECT_TOKEN_TEST_AS_COMMAND"

func TestMain(m *testing.M) {
	switch {
	case len(os.Args) > 1 && os.Args[1] == fakeCurl:
		os.Exit(runFakeCurl(os.Args[2:]))
	case os.Getenv(asCommand) == "1":
		main()
	}
	testkit.Main(m)
}

// result is what a run of the command printed and its exit status.
type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs the command in a process of its own (the test binary, see
// asCommand) with only PATH, HOME, a token cache of its own and env in its
// environment, so that the developer's ECONNECT_* settings and token cache
// stay out of it.
func runBinary(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	cmd := commandProcess(t, env, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running econnect-token %q: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// commandProcess returns the command, not started, as runBinary runs it. A
// generous deadline kills it if it hangs.
func commandProcess(t *testing.T, env map[string]string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return testProcess(t, env, exe, args...)
}

// shellProcess returns sh -c script, not started, with the environment of
// commandProcess: the command is the test binary, $C in the script.
func shellProcess(t *testing.T, env map[string]string, script string) *exec.Cmd {
	t.Helper()
	return testProcess(t, env, "sh", "-c", script)
}

// testProcess returns the program name with args, not started, with only the
// variables commandProcess gives the command in its environment.
func testProcess(t *testing.T, env map[string]string, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	// Under -race, a process sleeps a second at exit unless told not to.
	cmd.Env = append(testkit.ChildEnv(t), asCommand+"=1", "PATH="+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	if _, ok := env["ECONNECT_CACHE_DIR"]; !ok {
		cmd.Env = append(cmd.Env, "ECONNECT_CACHE_DIR="+t.TempDir())
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// newServer starts a fake server with the test account, over TLS if asked.
func newServer(t testing.TB, useTLS bool) *econnecttest.Server {
	t.Helper()
	srv := econnecttest.NewServer
	if useTLS {
		srv = econnecttest.NewTLSServer
	}
	s := srv()
	t.Cleanup(s.Close)
	s.AddUser(testUser, testPassword)
	return s
}

// writeCACert writes the certificate of s as PEM and returns the file name.
func writeCACert(t *testing.T, s *econnecttest.Server) string {
	t.Helper()
	return writePEM(t, s.Certificate().Raw)
}

// writePEM writes a DER certificate as PEM and returns the file name.
func writePEM(t *testing.T, der []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// loginEnv is the environment of a login to s with the test account.
func loginEnv(s *econnecttest.Server) map[string]string {
	return map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_USERNAME": testUser, "ECONNECT_PASSWORD": testPassword}
}

// checkToken checks that r printed a token of s for the test user, alone.
func checkToken(t *testing.T, s *econnecttest.Server, r result) string {
	t.Helper()
	if r.code != exitOK || !jwtLine.MatchString(r.stdout) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and a token alone on its line", r.code, r.stdout, r.stderr)
	}
	tok := strings.TrimSuffix(r.stdout, "\n")
	if name, err := s.VerifyToken(tok); err != nil || name != testUser {
		t.Errorf("VerifyToken(printed token) = %q, %v, want %q, nil", name, err, testUser)
	}
	return tok
}

// checkFailure checks that r failed with code, printed nothing on stdout,
// and on stderr only lines that start with the command's name, contain
// want and none of the secrets.
func checkFailure(t *testing.T, r result, code int, want string, secrets ...string) {
	t.Helper()
	if r.code != code || r.stdout != "" {
		t.Errorf("exit %d, stdout %q; want exit %d and nothing on stdout", r.code, r.stdout, code)
	}
	for line := range strings.Lines(r.stderr) {
		if !strings.HasPrefix(line, "econnect-token: ") {
			t.Errorf("stderr line %q does not start with \"econnect-token: \"", line)
		}
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", r.stderr, want)
	}
	for _, sec := range append(secrets, testPassword) {
		if strings.Contains(r.stderr, sec) {
			t.Errorf("stderr = %q, holds the secret %q", r.stderr, sec)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	r := runBinary(t, nil, "", "-h")
	if r.code != exitOK || r.stderr != "" {
		t.Errorf("-h: exit %d, stderr %q; want 0 and nothing on stderr", r.code, r.stderr)
	}
	for _, want := range []string{"Usage: econnect-token [flags]", "Examples:", "-password-stdin", "ECONNECT_TOKEN", "Exit status:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("-h printed %q, want it to contain %q", r.stdout, want)
		}
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	r := runBinary(t, nil, "", "-demo")
	if r.code != exitOK || !jwtLine.MatchString(r.stdout) {
		t.Fatalf("-demo: exit %d, stdout %q, stderr %q; want 0 and a token alone on its line", r.code, r.stdout, r.stderr)
	}
	checkDemoStory(t, r.stderr, strings.TrimSpace(r.stdout))
}

// checkDemoStory checks that the demo told each step on stderr, and no token.
func checkDemoStory(t *testing.T, stderr, tok string) {
	t.Helper()
	for _, want := range []string{"1) login", `got a token for "camera-1", valid for `, "2) POST", "200 OK",
		"3) renewal", "renewals 0 → 1", "4) the server rotates", "logged in once and retried", "done"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("-demo stderr = %q, want it to contain %q", stderr, want)
		}
	}
	if strings.Contains(stderr, tok) || strings.Contains(stderr, "eyJ") {
		t.Errorf("-demo stderr = %q, holds a token", stderr)
	}
}
