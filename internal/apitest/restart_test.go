package apitest_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/econnect-oss/econnect/econnecttest"
)

// A process restarted while the token its last run saved is still usable
// takes that token: no auth call, and no warning.
func TestRestartedProcessTakesTheStoredToken(t *testing.T) {
	t.Parallel()
	r := newRestarts(t)
	first := r.run(t, "the first run", 1)
	again := r.run(t, "the restarted run", 0)
	if again.token != first.token {
		t.Error("the restarted run's token differs from the one the first run saved")
	}
	if again.logins != 0 || again.adopted != 1 {
		t.Errorf("the restarted run's source made %d logins and adopted %d tokens, want 0 and 1", again.logins, again.adopted)
	}
}

// A process restarted on a token file that a power cut, a full disk or
// someone else left unusable logs in once, with no error and one warning,
// and saves a proper file in its place: the next run makes no auth call.
func TestRestartedProcessReplacesAnUnusableTokenFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []spoilCase{
		{"truncated", func(t *testing.T, path string, saved []byte) {
			writeKeepingMode(t, path, saved[:len(saved)/2])
		}},
		{"empty", func(t *testing.T, path string, _ []byte) { writeKeepingMode(t, path, nil) }},
		{"garbage", func(t *testing.T, path string, _ []byte) {
			writeKeepingMode(t, path, []byte("\x00\xff{not a token"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t)
		})
	}
}

// A spoilCase spoils the token file at path, which holds saved, a usable
// token's entry.
type spoilCase struct {
	name  string
	spoil func(t *testing.T, path string, saved []byte)
}

// check runs a child, spoils the file it saved, restarts it twice, and
// checks that the first restart logs in once with one warning and
// replaces the file, and that the second makes no auth call.
func (tc spoilCase) check(t *testing.T) {
	r := newRestarts(t)
	first := r.run(t, "the first run", 1)
	path, saved := tokenFile(t, r.dir, first.token)
	tc.spoil(t, path, saved)

	replaced := r.run(t, "the run after "+tc.name, 1)
	if w := replaced.warnings(); len(w) != 1 || !strings.Contains(w[0], "store=econnect.DirStore") {
		t.Errorf("the run after %s logged %d warnings %q, want one naming the store's type", tc.name, len(w), w)
	}
	if _, err := os.Stat(path); err != nil || !fileHolds(t, path, replaced.token) {
		t.Errorf("after the run, %s does not hold its token (%v)", filepath.Base(path), err)
	}
	wantMode(t, path, 0o600)

	again := r.run(t, "the next run", 0)
	if again.token != replaced.token {
		t.Error("the next run's token differs from the one saved in place of the spoilt file")
	}
}

// restarts is a server and a DirStore that children restart on.
type restarts struct {
	srv  *econnecttest.Server
	acct account
	dir  string
}

func newRestarts(t *testing.T) *restarts {
	t.Helper()
	srv := econnecttest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddUser(testUser, testPassword)
	return &restarts{srv: srv, acct: account{srv.URL, testUser, testPassword}, dir: filepath.Join(t.TempDir(), "tokens")}
}

// run runs a child, which must exit 0 with a token the server accepts
// after exactly logins auth calls, all logins, and log a warning only when
// it logged in; it returns what the child printed.
func (r *restarts) run(t *testing.T, name string, logins int) childRun {
	t.Helper()
	before := r.srv.Stats()
	c := runChild(t, r.acct, r.dir)
	after := r.srv.Stats()
	c.wantToken(t, name)
	if user, err := r.srv.VerifyToken(c.token); err != nil || user != testUser {
		t.Errorf("VerifyToken(token of %s) = %q, %v, want %q, nil", name, user, err, testUser)
	}
	if n, m := after.Logins-before.Logins, after.Renewals-before.Renewals; n != logins || m != 0 {
		t.Errorf("%s made %d logins and %d renewals, want %d and 0", name, n, m, logins)
	}
	if w := c.warnings(); logins == 0 && len(w) > 0 {
		t.Errorf("%s logged warnings %q, want none", name, w)
	}
	return c
}

// tokenFile returns the path of the file in dir that holds jwt, and what
// it holds.
func tokenFile(t *testing.T, dir, jwt string) (string, []byte) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(jwt)) {
			return path, b
		}
	}
	t.Fatalf("no file in %s holds the token", dir)
	return "", nil
}

// fileHolds reports whether the regular file at path holds jwt.
func fileHolds(t *testing.T, path, jwt string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(jwt))
}

// writeKeepingMode replaces what the file at path holds with b, in place,
// as a write cut short by a power cut leaves it.
func writeKeepingMode(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// warnings returns the warning lines the child logged.
func (r *childRun) warnings() []string {
	var lines []string
	for line := range strings.Lines(r.stderr) {
		if strings.Contains(line, "level=WARN") {
			lines = append(lines, line)
		}
	}
	return lines
}

// runChild runs a child to its end and returns what it printed.
func runChild(t *testing.T, acct account, dir string) childRun {
	t.Helper()
	cmd := childCommand(t, acct, dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running a child: %v", err)
	}
	r := childRun{err: err, stdout: stdout.String(), stderr: stderr.String()}
	r.parse()
	return r
}

// A process restarted on a directory where its token file should be, an
// empty one that someone made there, logs in once with one warning and
// saves its token in its place, as it does for any other file that is not
// a regular one, so that the next run makes no auth call.
func TestRestartedProcessReplacesADirectoryInPlaceOfItsTokenFile(t *testing.T) {
	t.Parallel()
	spoilCase{"a directory", func(t *testing.T, path string, _ []byte) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
	}}.check(t)
}
