//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
)

// TestCacheFIFO: a FIFO in place of the cache file, which a plain open
// would block on until someone writes to it, costs a warning, never a
// hang: the run prints its token well within -timeout 3s, and the next
// save replaces the FIFO with the token.
func TestCacheFIFO(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	makeFIFO(t, tokenFile(t, s, dir))
	start := time.Now()
	r := runBinary(t, cacheEnv(s, dir), "", "-timeout", "3s")
	tok := checkToken(t, s, r)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the run took %v, want it done within -timeout 3s", d)
	}
	checkOneWarning(t, r, storeWarning)
	if !strings.Contains(r.stderr, "a named pipe (FIFO), want a regular file") {
		t.Errorf("stderr = %q, want it to say what is in the way", r.stderr)
	}
	if e := loadEntry(t, s, dir); e == nil || e.Token != tok {
		t.Errorf("the FIFO was not replaced by the new token")
	}
}

// TestCacheFIFOInterrupted: with a FIFO in place of the cache file and the
// login held by the server, SIGTERM still ends the run, with 143.
func TestCacheFIFOInterrupted(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	makeFIFO(t, tokenFile(t, s, dir))
	s.FailLogin(1, econnecttest.Fault{Hang: true})
	cmd := commandProcess(t, cacheEnv(s, dir))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, func(st econnecttest.Stats) bool { return st.Logins == 1 }); err != nil {
		cmd.Process.Kill()
		t.Fatalf("no login reached the server: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	checkFailure(t, r, 143, "econnect-token: interrupted by SIGTERM\n")
	if !strings.HasPrefix(r.stderr, storeWarning) || strings.Count(r.stderr, "\n") != 2 {
		t.Errorf("stderr = %q, want the warning about the FIFO, then the interruption", r.stderr)
	}
}

func makeFIFO(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
}

// TestCacheDirOthersMayWrite: a cache directory other users may write in,
// where they could swap the cache file, is not used: a warning, and the
// token is printed all the same.
func TestCacheDirOthersMayWrite(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	seedCache(t, s, dir, 30*time.Minute)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	r := runInProcess(t, cacheEnv(s, dir), "")
	checkToken(t, s, r)
	checkStats(t, s, before, 1, 0)
	checkOneWarning(t, r, storeWarning)
	if !strings.Contains(r.stderr, "lets other users in") {
		t.Errorf("stderr = %q, want it to say why the cache is not used", r.stderr)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(names) != 0 {
		t.Errorf("the run wrote %q in a directory others may write", names)
	}
}
