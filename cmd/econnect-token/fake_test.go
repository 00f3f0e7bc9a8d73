package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/testkit"
)

var fakeLines = []*regexp.Regexp{
	regexp.MustCompile(`^ECONNECT_URL=http://127\.0\.0\.1:[0-9]+/identities$`),
	regexp.MustCompile(`^ECONNECT_USERNAME=camera-1$`),
	regexp.MustCompile(`^ECONNECT_PASSWORD=[A-Za-z0-9]{20,}$`),
}

// TestFake runs econnect-token fake as a process, reads its three lines,
// gets a token from it with the command, and stops it with SIGTERM.
func TestFake(t *testing.T) {
	t.Parallel()
	skipWithoutSignals(t)
	cmd := commandProcess(t, nil, "fake", "-lifetime", "7s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	env := map[string]string{}
	for _, re := range fakeLines {
		l := readLineOf(t, out)
		if !re.MatchString(l) {
			t.Fatalf("fake printed %q, want a line like %s", l, re)
		}
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	r := runBinary(t, env, "", "-no-cache")
	if r.code != exitOK {
		t.Fatalf("a run against fake: exit %d, stderr %q", r.code, r.stderr)
	}
	tok, err := econnect.ParseToken(r.stdout)
	if left := time.Until(tok.Expiry); err != nil || left > 7*time.Second || left < 5*time.Second {
		t.Errorf("token expires in %v (%v), want 7 s: -lifetime", left, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 143 {
		t.Errorf("fake exit %d, want 143", code)
	}
}

// fakeScript is a test as a shell script would have it: it starts fake in
// the background, reads its lines, and runs the command against it.
const fakeScript = `set -eu
exe=$1 dir=$2
mkfifo "$dir/fake"
"$exe" fake -listen localhost:0 > "$dir/fake" 2> "$dir/fake.err" &
fake=$!
trap 'kill "$fake" 2>/dev/null || :' EXIT   # also when a step fails
exec 3< "$dir/fake"
read -r url <&3; read -r user <&3; read -r password <&3
export "$url" "$user" "$password"
"$exe" -no-cache -header > "$dir/header"
"$exe" -no-cache exec -- sh -c 'test -n "$ECONNECT_TOKEN"'
kill -TERM "$fake"
status=0; wait "$fake" || status=$?
echo "fake exited $status"
`

func TestFakeFromAShellScript(t *testing.T) {
	t.Parallel()
	skipWithoutSignals(t)
	for _, tool := range []string{"sh", "mkfifo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	dir := t.TempDir()
	sh := exec.CommandContext(t.Context(), "sh", "-c", fakeScript, "sh", testBinary(t), dir)
	sh.Env = append(testkit.ChildEnv(t), asCommand+"=1", "PATH="+os.Getenv("PATH"),
		"HOME="+os.Getenv("HOME"), "ECONNECT_CACHE_DIR="+t.TempDir())
	out, err := sh.CombinedOutput()
	if err != nil || string(out) != "fake exited 143\n" {
		t.Errorf("script: %v, output %q; want it to end with fake exiting 143", err, out)
	}
	header, _ := os.ReadFile(filepath.Join(dir, "header"))
	if !strings.HasPrefix(string(header), "Authorization: Bearer eyJ") {
		t.Errorf("-header printed %q", header)
	}
	if errs, _ := os.ReadFile(filepath.Join(dir, "fake.err")); !strings.HasSuffix(string(errs), "econnect-token: interrupted by SIGTERM\n") {
		t.Errorf("fake's stderr %q, want it to end with the signal", errs)
	}
}
