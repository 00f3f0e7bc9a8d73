package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// newHeldServer starts a server whose login endpoint answers nothing until
// the client gives up. It returns the server and a channel closed when the
// first login arrives.
func newHeldServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/authenticate" {
			t.Errorf("request %s %s, want POST /api/v1/authenticate", r.Method, r.URL.Path)
		}
		// Reading the body to its end lets net/http see the client go away,
		// which ends the request's context.
		io.Copy(io.Discard, r.Body)
		once.Do(func() { close(arrived) })
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv, arrived
}

func TestSignalExitStatus(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT or SIGTERM to send on Windows")
	}
	tests := []struct {
		sig  syscall.Signal
		name string
		want int
	}{
		{syscall.SIGINT, "SIGINT", 130},
		{syscall.SIGTERM, "SIGTERM", 143},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, arrived := newHeldServer(t)
			dir := t.TempDir()
			env := map[string]string{"ECONNECT_URL": srv.URL, "ECONNECT_USERNAME": testUser,
				"ECONNECT_PASSWORD": testPassword, "ECONNECT_CACHE_DIR": dir}
			cmd := commandProcess(t, env)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-arrived:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("no login reached the server; stderr %q", stderr.String())
			}
			if err := cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			cmd.Wait()
			r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
			checkFailure(t, r, tt.want, "econnect-token: interrupted by "+tt.name+"\n")
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr = %q, want one line", r.stderr)
			}
			checkOnlyLocks(t, dir)
		})
	}
}

// checkOnlyLocks checks that dir holds no file but the lock files of
// DirStore (KEY.lock), which stay by design: no token, no temporary file.
func checkOnlyLocks(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("the run left %q in the cache directory", e.Name())
		}
	}
}
