// Package testkit holds the helpers the module's tests share: goroutines
// released together, JWTs built by hand, a guard against deadlocks, a check
// for goroutines left behind, and a fake clock ([Clock]).
//
// It is imported by tests only: the root package's, the black-box tests',
// econnecttest's and the command's. It imports neither the root package nor
// econnecttest, whose own tests import it.
package testkit

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Parallel runs fn(0) to fn(n-1) on n goroutines and returns when all have
// returned. The goroutines are released together, once all of them have
// started, so that they race for whatever they share.
func Parallel(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-start
			fn(i)
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// FakeJWT returns a JWT carrying claims, with the header
// {"alg":"HS256","typ":"JWT"} and a fixed signature part: the shape of the
// server's tokens, for code that reads them without checking the
// signature. It panics if claims cannot be encoded as JSON.
func FakeJWT(claims map[string]any) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("testkit: FakeJWT: %v", err))
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(payload) + "." + fakeSignature
}

// fakeSignature is the signature part of FakeJWT's tokens, "signature" in
// base64url.
const fakeSignature = "c2lnbmF0dXJl"

// Guard is how long Await waits before it calls a wait a deadlock. It is
// generous because it times nothing: a loaded machine running -race must
// never reach it, and a passing test never waits for it.
const Guard = 30 * time.Second

// Await returns what ch delivers (the zero value once ch is closed). If ch
// delivers nothing within [Guard], it fails the test with what in the
// message: a guard against a deadlock, not a wait for time to pass. Like
// t.Fatal, it must be called from the test's own goroutine.
func Await[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(Guard)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
	}
	t.Fatalf("%s: still waiting after %v", what, Guard)
	var zero T
	return zero
}

// Main is a TestMain: it runs the tests, closes the idle connections of
// [http.DefaultTransport] (whose keep-alive goroutines are no leaks), and
// fails the run if the tests passed but left goroutines behind. It does
// not return.
func Main(m *testing.M) {
	code := m.Run()
	if tr, ok := http.DefaultTransport.(interface{ CloseIdleConnections() }); ok {
		tr.CloseIdleConnections()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "testkit: goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// ChildEnv is what the environment of a test's child process (the test
// binary run again as another program) needs: no second's sleep at exit
// under the race detector, and, when the test binary counts coverage, a
// directory for the child's counts, without which the child warns on
// stderr.
func ChildEnv(t testing.TB) []string {
	env := []string{"GORACE=atexit_sleep_ms=0"}
	if testing.CoverMode() != "" {
		env = append(env, "GOCOVERDIR="+t.TempDir())
	}
	return env
}
