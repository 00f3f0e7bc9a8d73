package apitest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/testkit"
)

// A child is this test binary run again as a program that takes one token
// from a DirStore and exits: a camera back from a power cut, a restarted
// container, one of the processes sharing a host. The switch is in init,
// not TestMain, so that a child never reaches the testing package: it is a
// program of its own, with its own exit status.
//
// Its environment says where to log in and which directory to use. It
// prints "ready" once started and, with childGate set, waits until its
// stdin closes, so that a parent can release many children together. It
// then takes a token with TokenContext, waits for the store with Flush,
// prints "token <JWT>" and "status logins=N adopted=N", and exits 0; on a
// failure it says why on stderr and exits 1. Its Logger writes text to
// stderr. With childTellBusy set, its store says "busy" on stdout the
// first time it finds the lock held by a peer.
const (
	childEnv      = "ECONNECT_APITEST_CHILD" // the directory of the DirStore
	childURL      = "ECONNECT_APITEST_URL"
	childUser     = "ECONNECT_APITEST_USER"
	childPassword = "ECONNECT_APITEST_PASSWORD"
	childGate     = "ECONNECT_APITEST_GATE"
	childTellBusy = "ECONNECT_APITEST_TELL_BUSY"
)

func init() {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childMain(dir))
	}
}

// childMain is a child's program; it returns the exit status.
func childMain(dir string) int {
	fmt.Println("ready")
	if os.Getenv(childGate) != "" {
		io.Copy(io.Discard, os.Stdin)
	}
	var store econnect.Store = econnect.DirStore(dir)
	if os.Getenv(childTellBusy) != "" {
		store = &tellingStore{DirStore: econnect.DirStore(dir)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Guard)
	defer cancel()
	cfg := econnect.Config{BaseURL: os.Getenv(childURL), Username: os.Getenv(childUser),
		Password: os.Getenv(childPassword), Store: store, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	ts := cfg.TokenSource(ctx)
	tok, err := econnect.TokenContext(ctx, ts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: TokenContext() error =", err)
		return 1
	}
	if err := econnect.Flush(ctx, ts); err != nil {
		fmt.Fprintln(os.Stderr, "child: Flush() error =", err)
		return 1
	}
	st, _ := econnect.StatusOf(ts)
	fmt.Printf("token %s\nstatus logins=%d adopted=%d\n", tok.AccessToken, st.Logins, st.Adopted)
	return 0
}

// tellingStore is a DirStore that prints "busy" the first time a Lock
// finds the lock held: what a parent waits for to know that this child
// has met the lock of a peer's login.
type tellingStore struct {
	econnect.DirStore
	told atomic.Bool
}

func (s *tellingStore) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	unlock, err := s.DirStore.Lock(ctx, key, ttl)
	if errors.Is(err, context.DeadlineExceeded) && s.told.CompareAndSwap(false, true) {
		fmt.Println("busy")
	}
	return unlock, err
}

// childCommand returns a child, not started, using the DirStore dir, with
// only the variables it needs in its environment (and GOCOVERDIR, for a
// run with coverage). A deadline of testkit.Guard kills it if it hangs.
func childCommand(t *testing.T, acct account, dir string, extra ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testkit.Guard)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(append(testkit.ChildEnv(t), childEnv+"="+dir, childURL+"="+acct.url, childUser+"="+acct.user,
		childPassword+"="+acct.password), extra...)
	return cmd
}

// childRun is what a child printed, and how it ended.
type childRun struct {
	err            error // from Wait: nil when it exited 0
	token          string
	logins         int // the auth calls its source counted
	adopted        int // the tokens its source took from the store
	stdout, stderr string
}

// parse fills r's token and counts from its stdout.
func (r *childRun) parse() {
	for line := range strings.Lines(r.stdout) {
		if tok, ok := strings.CutPrefix(line, "token "); ok {
			r.token = strings.TrimSpace(tok)
		}
		fmt.Sscanf(line, "status logins=%d adopted=%d", &r.logins, &r.adopted)
	}
}

// wantToken fails the test unless the child exited 0 with a token, and
// logged neither the token nor the password.
func (r *childRun) wantToken(t *testing.T, name string) {
	t.Helper()
	if r.err != nil || r.token == "" {
		t.Errorf("%s exited with %v and token %q, want success and a token; stderr:\n%s", name, r.err, r.token, r.stderr)
	}
	for _, s := range []string{testPassword, r.token} {
		if s != "" && strings.Contains(r.stderr, s) {
			t.Errorf("%s logged a secret: %q", name, r.stderr)
		}
	}
}
