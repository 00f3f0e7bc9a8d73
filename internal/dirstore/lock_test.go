package dirstore

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// skipLock skips a test of Lock where files cannot be locked.
func skipLock(t *testing.T) {
	t.Helper()
	if !canLock {
		t.Skipf("Lock is not supported on %s", runtime.GOOS)
	}
}

// mustLock takes key's lock in d, waiting up to 10 s.
func mustLock(t *testing.T, d Dir, key string, ttl time.Duration) (unlock func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	unlock, err := d.Lock(ctx, key, ttl)
	if err != nil {
		t.Fatalf("Lock() error = %v, want nil", err)
	}
	return unlock
}

// wantHeld fails the test unless key's lock in d is held by someone else:
// a Lock with a short deadline must fail with context.DeadlineExceeded.
func wantHeld(t *testing.T, d Dir, key string, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	unlock, err := d.Lock(ctx, key, time.Minute)
	if err == nil {
		unlock()
		t.Fatal("Lock() of a held lock error = nil, want context.DeadlineExceeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock() of a held lock error = %v, want context.DeadlineExceeded", err)
	}
}

func TestLockInProcess(t *testing.T) {
	skipLock(t)
	d := newDir(t)
	unlock := mustLock(t, d, testKey, time.Minute)
	wantHeld(t, d, testKey, 50*time.Millisecond)
	other := mustLock(t, d, "other-key", time.Minute) // keys do not share locks
	other()

	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		second, err := d.Lock(ctx, testKey, time.Minute)
		if err == nil {
			second()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Errorf("Lock() waiting for an unlock error = %v, want nil", err)
	}
}

func TestUnlockTwice(t *testing.T) {
	skipLock(t)
	d := newDir(t)
	first := mustLock(t, d, testKey, time.Minute)
	first()
	first()
	second := mustLock(t, d, testKey, time.Minute)
	defer second()
	// The first lock's descriptor is closed and its number may have been
	// reused by the second: unlocking the first again must not touch it.
	first()
	wantHeld(t, d, testKey, 50*time.Millisecond)
}

func TestLockLapses(t *testing.T) {
	skipLock(t)
	d := newDir(t)
	start := time.Now()
	first := mustLock(t, d, testKey, 50*time.Millisecond)
	defer first() // harmless once lapsed
	second := mustLock(t, d, testKey, time.Minute)
	second()
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("second Lock() held after %v, before the first lapsed at 50ms", waited)
	}
}

func TestLockBadTTL(t *testing.T) {
	skipLock(t)
	for _, ttl := range []time.Duration{0, -time.Second} {
		unlock, err := newDir(t).Lock(t.Context(), testKey, ttl)
		if err == nil {
			unlock()
		}
		wantRefused(t, "Lock()", err, "ttl must be positive")
	}
}

// TestLockAcrossProcesses runs this test binary again as a child (see
// TestMain) that holds the lock until its stdin closes.
func TestLockAcrossProcesses(t *testing.T) {
	skipLock(t)
	d := newDir(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"="+string(d), childKeyEnv+"="+testKey)
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		child.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("child said %q, %v, want %q", line, err, "locked\n")
	}
	wantHeld(t, d, testKey, 200*time.Millisecond)

	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		unlock, err := d.Lock(ctx, testKey, time.Minute)
		if err == nil {
			unlock()
		}
		got <- err
	}()
	stdin.Close()
	if err := child.Wait(); err != nil {
		t.Errorf("child exited with %v, want success", err)
	}
	if err := <-got; err != nil {
		t.Errorf("Lock() once the child is gone error = %v, want nil", err)
	}
}
