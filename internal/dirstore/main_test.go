package dirstore

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/testkit"
)

// childEnv, when set in the environment, makes the test binary a child
// process of TestLockAcrossProcesses instead of running tests: it takes the
// lock of key childKeyEnv in directory childEnv, prints "locked", and holds
// the lock until its stdin is closed.
const (
	childEnv    = "DIRSTORE_TEST_LOCK_DIR"
	childKeyEnv = "DIRSTORE_TEST_LOCK_KEY"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(holdLock(Dir(dir), os.Getenv(childKeyEnv)))
	}
	testkit.Main(m)
}

// holdLock is the child process's work: it returns the exit status.
func holdLock(d Dir, key string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	unlock, err := d.Lock(ctx, key, time.Minute)
	if err != nil {
		fmt.Println("Lock() error =", err)
		return 1
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	unlock()
	return 0
}
