package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
)

// fakeCurl, as the first argument of the test binary, makes it a stand-in
// for curl -f in exec's tests, which have no curl: see runFakeCurl.
const fakeCurl = "fake-curl"

// runFakeCurl posts to the URL in its last argument with the header of
// -H HEADER if given (as curl -H "Authorization: Bearer $TOKEN"), else
// with $ECONNECT_TOKEN as the bearer, and returns 0 for a 2xx answer, else
// 22, as curl -f does.
func runFakeCurl(args []string) int {
	if len(args) == 0 {
		return 2
	}
	req, err := http.NewRequest(http.MethodPost, args[len(args)-1], nil)
	if err != nil {
		return 2
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("ECONNECT_TOKEN"))
	if len(args) == 3 && args[0] == "-H" {
		k, v, _ := strings.Cut(args[1], ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 7
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 22
	}
	return 0
}

// testBinary is the test binary's path, for fakeCurl.
func testBinary(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// TestExecRetriesWithANewToken runs a stand-in for curl -f with a cached
// token the server no longer accepts: it exits 22, exec logs in once and
// runs it again, and it succeeds.
func TestExecRetriesWithANewToken(t *testing.T) {
	t.Parallel()
	s, dir := echoServer(t), t.TempDir()
	seedCache(t, s, dir, 30*time.Minute)
	s.RotateKey()
	before := s.Stats()
	r := runBinary(t, cacheEnv(s, dir), "", "exec", "--", testBinary(t), fakeCurl, s.URL+"/api/v1/echo")
	if r.code != exitOK || r.stdout != "" || r.stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0 and no output", r.code, r.stdout, r.stderr)
	}
	st := s.Stats()
	if st.Logins-before.Logins != 1 || st.APICalls-before.APICalls != 2 || st.Refused-before.Refused != 1 {
		t.Errorf("server saw %+v since %+v; want 1 login and 2 calls, 1 of them refused", st, before)
	}
	if e := loadEntry(t, s, dir); e == nil || e.Token == "" {
		t.Errorf("the new token is not cached")
	} else if _, err := s.VerifyToken(e.Token); err != nil {
		t.Errorf("the cache holds a refused token: %v", err)
	}
}

func TestExecStatus(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	s := newServer(t, false)
	tests := []struct {
		name   string
		args   []string
		script string
		want   int
		runs   int // how many times the script ran
	}{
		{name: "success", script: "exit 0", want: 0, runs: 1},
		{name: "its status", script: "exit 3", want: 3, runs: 1},
		{name: "22 runs it again", script: "exit 22", want: 22, runs: 2},
		{name: "22 then success", script: `test "$(wc -l < "$RUNS")" -ge 2 || exit 22`, want: 0, runs: 2},
		{name: "-status", args: []string{"-status", "4"}, script: "exit 4", want: 4, runs: 2},
		{name: "-status, then 22", args: []string{"-status", "4"}, script: "exit 22", want: 22, runs: 1},
		{name: "killed by SIGTERM", script: "kill -TERM $$", want: 143, runs: 1},
		{name: "killed by SIGKILL", script: "kill -KILL $$", want: 137, runs: 1},
		{name: "the token, not the password", script: `test -n "$ECONNECT_TOKEN" && test -z "$ECONNECT_PASSWORD"`, want: 0, runs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if strings.Contains(tt.script, "kill") {
				skipWithoutSignals(t)
			}
			runs := filepath.Join(t.TempDir(), "runs")
			env := loginEnv(s)
			env["RUNS"] = runs
			args := append(append([]string{"exec"}, tt.args...), "--", "sh", "-c", `echo "$ECONNECT_TOKEN" >> "$RUNS"; `+tt.script)
			r := runBinary(t, env, "", args...)
			if r.code != tt.want || r.stderr != "" {
				t.Errorf("exit %d, stderr %q; want %d", r.code, r.stderr, tt.want)
			}
			checkRuns(t, s, runs, tt.runs)
		})
	}
}

// checkRuns checks that the script ran n times, each time with a token of
// s, a new one for each run.
func checkRuns(t *testing.T, s *econnecttest.Server, file string, n int) {
	t.Helper()
	data, _ := os.ReadFile(file)
	toks := strings.Fields(string(data))
	if len(toks) != n {
		t.Fatalf("the command ran %d times, want %d", len(toks), n)
	}
	for i, tok := range toks {
		if _, err := s.VerifyToken(tok); err != nil {
			t.Errorf("run %d: ECONNECT_TOKEN %v", i+1, err)
		}
		if i > 0 && tok == toks[i-1] {
			t.Errorf("run %d had the same token as the run before", i+1)
		}
	}
}

// TestExecStdio: the command gets what is left of stdin after the
// password, and writes on the command's stdout and stderr.
func TestExecStdio(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	s := newServer(t, false)
	env := map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_USERNAME": testUser}
	r := runBinary(t, env, testPassword+"\r\nthe rest\nof stdin\n",
		"exec", "-password-stdin", "--", "sh", "-c", "cat; echo to stderr >&2")
	if r.code != exitOK || r.stdout != "the rest\nof stdin\n" || r.stderr != "to stderr\n" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 0, the rest of stdin and the command's stderr", r.code, r.stdout, r.stderr)
	}
}

// TestExecWithoutToken: when no token can be had, the command is not run
// and the status is a plain run's.
func TestExecWithoutToken(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	tests := []struct {
		name  string
		setup func(t *testing.T) (map[string]string, []string)
		want  int
	}{
		{"wrong password", wrongPassword, exitRefused},
		{"server down", connectionRefused, exitUnavailable},
		{"untrusted certificate", selfSigned, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, args := tt.setup(t)
			marker := filepath.Join(t.TempDir(), "ran")
			args = append(append([]string{"exec"}, args...), "--", "sh", "-c", "touch "+marker)
			r := runBinary(t, env, "", args...)
			checkFailure(t, r, tt.want, "econnect-token: ", "wrong-SENTINEL-93")
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the command ran")
			}
		})
	}
}

func TestExecCommandNotFound(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	r := runBinary(t, loginEnv(s), "", "exec", "--", "no-such-command-econnect")
	checkFailure(t, r, 127, "econnect-token: exec: ")
	if st := s.Stats(); st.Logins != 0 {
		t.Errorf("server saw %d logins, want none for a command that cannot run", st.Logins)
	}
}

// TestExecPassesSignalsOn sends SIGTERM to exec while its command runs:
// the command gets it, and exec exits with its status.
func TestExecPassesSignalsOn(t *testing.T) {
	t.Parallel()
	skipWithoutSignals(t)
	s := newServer(t, false)
	cmd := commandProcess(t, loginEnv(s), "exec", "--", "sh", "-c", "echo ready; exec sleep 60")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if l := readLineOf(t, bufio.NewReader(out)); l != "ready" {
		t.Fatalf("the command said %q, want ready", l)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 143 {
		t.Errorf("exit %d, want 143: the command's status after SIGTERM", got)
	}
}

// TestExecLoginFailsAfterRefusal: when the command met a 401 and the login
// that would replace its token fails, exec fails as a plain run would,
// without running the command again with the refused token, and the
// refused token is gone from the cache.
func TestExecLoginFailsAfterRefusal(t *testing.T) {
	t.Parallel()
	s, dir := echoServer(t), t.TempDir()
	refused := seedCache(t, s, dir, 30*time.Minute)
	s.RotateKey()
	env := cacheEnv(s, dir)
	env["ECONNECT_PASSWORD"] = "wrong-SENTINEL-93"
	before := s.Stats()
	r := runBinary(t, env, "", "exec", "--", testBinary(t), fakeCurl, s.URL+"/api/v1/echo")
	checkFailure(t, r, exitRefused, "check the username", refused, "wrong-SENTINEL-93")
	if st := s.Stats(); st.APICalls-before.APICalls != 1 || st.Logins-before.Logins != 1 {
		t.Errorf("server saw %+v since %+v; want 1 call (refused) and 1 login (refused)", st, before)
	}
	if e := loadEntry(t, s, dir); e != nil {
		t.Errorf("the cache still holds a token after the refused one's replacement failed")
	}
}
