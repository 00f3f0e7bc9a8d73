package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/tokenstore"
)

// TestRefused: -refused prints another token than the one the server
// refused: the cached one, with no network call, if it is another and not
// older; else a login's, which replaces the refused token in the cache.
func TestRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// cache is what the cache holds, refused what the server refused:
		// "old" a token issued a minute back, "new" one issued now, "" none.
		cache, refused string
		stdin          bool // the refused token on stdin, not in ECONNECT_TOKEN
		args           []string
		logins         int
		wantCached     bool // prints the cached token
	}{
		{name: "the cached token", cache: "old", refused: "old", logins: 1},
		{name: "the cached token, on stdin", cache: "old", refused: "old", stdin: true, logins: 1},
		{name: "an older token than the cached one", cache: "new", refused: "old", wantCached: true},
		{name: "a newer token than the cached one", cache: "old", refused: "new", logins: 1},
		{name: "nothing cached", refused: "new", logins: 1},
		{name: "-no-cache", cache: "old", refused: "old", args: []string{"-no-cache"}, logins: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, dir := newServer(t, false), t.TempDir()
			toks := map[string]string{"old": seedCache(t, s, dir, 30*time.Minute), "new": login(t, s)}
			switch tt.cache {
			case "new":
				writeCacheEntry(t, s, dir, cacheEntryOf(toks["new"]))
			case "":
				if err := os.Remove(tokenFile(t, s, dir)); err != nil {
					t.Fatal(err)
				}
			}
			env, stdin := cacheEnv(s, dir), ""
			if tt.stdin {
				stdin = toks[tt.refused] + "\n"
			} else {
				env["ECONNECT_TOKEN"] = toks[tt.refused]
			}
			before := s.Stats()
			r := runInProcess(t, env, stdin, append([]string{"-refused"}, tt.args...)...)
			checkStats(t, s, before, tt.logins, 0)
			tok := checkCachedRun(t, s, r, toks[tt.cache], tt.wantCached, "")
			if tok == toks[tt.refused] {
				t.Errorf("-refused printed the refused token")
			}
			if e := loadEntry(t, s, dir); !tt.wantCached && len(tt.args) == 0 && (e == nil || e.Token != tok) {
				t.Errorf("the cache does not hold the new token")
			}
		})
	}
}

// cacheEntryOf is the entry of tok, a fresh 1-hour token, as the library
// saves it.
func cacheEntryOf(tok string) tokenstore.Entry {
	return tokenstore.Entry{Token: tok, Username: testUser, Expiry: time.Now().Add(time.Hour - time.Second),
		Lifetime: time.Hour - time.Second, SavedAt: time.Now()}
}

// TestRefusedLoginFails: when the login that replaces the refused cached
// token fails, the run fails as a plain run would, and the refused token
// is gone from the cache, so that no later run prints it.
func TestRefusedLoginFails(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	refused := seedCache(t, s, dir, 30*time.Minute)
	s.RotateKey()
	env := cacheEnv(s, dir)
	env["ECONNECT_TOKEN"], env["ECONNECT_PASSWORD"] = refused, "wrong-SENTINEL-93"
	r := runInProcess(t, env, "", "-refused")
	checkFailure(t, r, exitRefused, "check the username", refused, "wrong-SENTINEL-93")
	if e := loadEntry(t, s, dir); e != nil {
		t.Errorf("the cache still holds a token after the refused one's replacement failed")
	}
	checkStats(t, s, econnecttest.Stats{Logins: 1}, 1, 0)
}

// TestRefusedRunsShareOneLogin starts 10 runs of -refused together, all
// told that the cached token was refused (a key rotation): one logs in,
// and the others, which meet the cache's lock while its login is held
// open, print its token.
func TestRefusedRunsShareOneLogin(t *testing.T) {
	t.Parallel()
	skipWithoutLocks(t)
	s, dir := newServer(t, false), t.TempDir()
	refused := seedCache(t, s, dir, 30*time.Minute)
	s.RotateKey()
	env := cacheEnv(s, dir)
	env["ECONNECT_TOKEN"] = refused
	results := holdFirstLogin(t, s, 10, func() *exec.Cmd { return commandProcess(t, env, "-refused") })
	var first string
	for i, r := range results {
		tok := checkToken(t, s, r)
		if i == 0 {
			first = tok
		} else if tok != first {
			t.Errorf("run %d printed another token than run 0", i)
		}
	}
	checkStats(t, s, econnecttest.Stats{Logins: 1}, 1, 0)
	if e := loadEntry(t, s, dir); e == nil || e.Token != first {
		t.Errorf("the cache does not hold the new token")
	}
}

// holdFirstLogin starts n processes that newCmd makes, holds the first
// login they send open until the server has seen it (so that the others
// meet the cache's lock held by the one logging in), then lets it go and
// returns what each printed.
func holdFirstLogin(t *testing.T, s *econnecttest.Server, n int, newCmd func() *exec.Cmd) []result {
	t.Helper()
	release := make(chan struct{})
	s.FailLogin(1, econnecttest.Fault{Wait: release})
	before := s.Stats().Logins
	cmds := make([]*exec.Cmd, n)
	outs := make([][2]bytes.Buffer, n)
	for i := range cmds {
		cmds[i] = newCmd()
		cmds[i].Stdout, cmds[i].Stderr = &outs[i][0], &outs[i][1]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := s.WaitFor(ctx, func(st econnecttest.Stats) bool { return st.Logins > before })
	close(release)
	results := make([]result, n)
	for i, cmd := range cmds {
		cmd.Wait()
		results[i] = result{code: cmd.ProcessState.ExitCode(), stdout: outs[i][0].String(), stderr: outs[i][1].String()}
	}
	if err != nil {
		t.Fatal(err)
	}
	return results
}

// TestScriptsHealAfterKeyRotation runs a script ten times after a key
// rotation, as cron would, each run calling the API with the token
// econnect-token prints. Plain, every run meets a 401; with -refused after
// a 401, or under exec, the first run logs in once and the other nine use
// its token.
func TestScriptsHealAfterKeyRotation(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	tests := []struct {
		name   string
		script string // one run; $C is the command, $CURL curl -f
		ok     int    // runs that called the API
		logins int
	}{
		{name: "plain", script: `$CURL -H "Authorization: Bearer $($C)" "$URL"`},
		{name: "-refused", ok: 10, logins: 1, script: `tok=$($C) || exit
			$CURL -H "Authorization: Bearer $tok" "$URL" && exit
			tok=$(ECONNECT_TOKEN=$tok $C -refused) && $CURL -H "Authorization: Bearer $tok" "$URL"`},
		{name: "exec", ok: 10, logins: 1, script: `$C exec -- $CURL "$URL"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, dir := echoServer(t), t.TempDir()
			seedCache(t, s, dir, 30*time.Minute)
			s.RotateKey()
			before := s.Stats()
			env := cacheEnv(s, dir)
			env["C"], env["CURL"], env["URL"] = testBinary(t), testBinary(t)+" "+fakeCurl, s.URL+"/api/v1/echo"
			loop := fmt.Sprintf("ok=0; for i in 1 2 3 4 5 6 7 8 9 10; do ( %s ) && ok=$((ok+1)); done; echo $ok", tt.script)
			out, err := shellProcess(t, env, loop).Output()
			if got := strings.TrimSpace(string(out)); err != nil || got != fmt.Sprint(tt.ok) {
				t.Errorf("runs that called the API: %q, %v; want %d", got, err, tt.ok)
			}
			st := s.Stats()
			refused := st.Refused - before.Refused
			t.Logf("%s: %d logins, %d refused calls", tt.name, st.Logins-before.Logins, refused)
			checkStats(t, s, before, tt.logins, 0)
			if want := 10 - tt.ok + tt.logins; refused != want {
				t.Errorf("refused calls = %d, want %d", refused, want)
			}
		})
	}
}

// TestExecRunsShareOneLogin starts 10 execs together with the cached token
// refused: each command that meets a 401 is run once more, and the 10
// share one login.
func TestExecRunsShareOneLogin(t *testing.T) {
	t.Parallel()
	skipWithoutLocks(t)
	s, dir := echoServer(t), t.TempDir()
	seedCache(t, s, dir, 30*time.Minute)
	s.RotateKey()
	before := s.Stats()
	env := cacheEnv(s, dir)
	results := holdFirstLogin(t, s, 10, func() *exec.Cmd {
		return commandProcess(t, env, "exec", "--", testBinary(t), fakeCurl, s.URL+"/api/v1/echo")
	})
	for i, r := range results {
		if r.code != exitOK || r.stdout != "" || r.stderr != "" {
			t.Errorf("exec %d: exit %d, stdout %q, stderr %q; want 0 and no output", i, r.code, r.stdout, r.stderr)
		}
	}
	st := s.Stats()
	refused := st.Refused - before.Refused
	t.Logf("10 execs: %d refused calls", refused)
	checkStats(t, s, before, 1, 0)
	if calls := st.APICalls - before.APICalls; refused < 1 || calls != 10+refused {
		t.Errorf("%d API calls, %d refused; want each refused call run once more, 10 that succeed", calls, refused)
	}
}

// skipWithoutLocks skips a test that needs the cache's lock across
// processes where DirStore cannot lock files.
func skipWithoutLocks(t *testing.T) {
	t.Helper()
	unlock, err := econnect.DirStore(t.TempDir()).Lock(t.Context(), "probe", time.Second)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("DirStore cannot lock files on %s", runtime.GOOS)
	}
	if err != nil {
		t.Fatalf("Lock() error = %v, want nil", err)
	}
	unlock()
}
