package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
)

// The account of the test servers. The password is a sentinel: it must
// never show up in any output.
const (
	testUser     = "camera-1"
	testPassword = "pw-SENTINEL-7f3a9c"
)

var jwtLine = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$`)

// The command is built once, into binDir, by the first test that needs it.
var (
	binDir   string
	buildBin = sync.OnceValues(build)
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// build compiles the command with the go tool that runs the tests.
func build() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	if binDir, err = os.MkdirTemp("", "econnect-token-test-"); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "econnect-token")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// result is what a run of the command printed and its exit status.
type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs the built command with only PATH, HOME and env in its
// environment, so that the developer's ECONNECT_* settings do not leak in.
func runBinary(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	bin, err := buildBin()
	if err != nil {
		t.Fatalf("building the command: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running econnect-token %q: %v", args, err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// newServer starts a fake server with the test account, over TLS if asked.
func newServer(t *testing.T, useTLS bool) *econnecttest.Server {
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
	for _, want := range []string{"1) login", `got a token for "camera-1", valid for 4s`, "2) POST", "200 OK",
		"3) renewal", "renewals 0 → 1", "4) the server rotates", "logged in once and retried", "done"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("-demo stderr = %q, want it to contain %q", stderr, want)
		}
	}
	if strings.Contains(stderr, tok) || strings.Contains(stderr, "eyJ") {
		t.Errorf("-demo stderr = %q, holds a token", stderr)
	}
}
