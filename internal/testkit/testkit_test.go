package testkit

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) {
	Main(m)
}

func TestParallel(t *testing.T) {
	tests := []struct {
		name string
		n    int
	}{
		{"none", 0},
		{"one", 1},
		{"many", 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			seen := make([]atomic.Int32, tt.n)
			// Each call waits for all the others: Parallel returns only if
			// they all run at once.
			var inside sync.WaitGroup
			inside.Add(tt.n)
			done := make(chan struct{})
			go func() {
				defer close(done)
				Parallel(tt.n, func(i int) {
					calls.Add(1)
					seen[i].Add(1)
					inside.Done()
					inside.Wait()
				})
			}()
			Await(t, done, "Parallel")
			if got := calls.Load(); got != int32(tt.n) {
				t.Errorf("fn called %d times, want %d", got, tt.n)
			}
			for i := range seen {
				if got := seen[i].Load(); got != 1 {
					t.Errorf("fn(%d) called %d times, want 1", i, got)
				}
			}
		})
	}
}

func TestFakeJWT(t *testing.T) {
	claims := map[string]any{"unique_name": "camera-1", "iat": 1700000000, "exp": 1700003600}
	parts := strings.Split(FakeJWT(claims), ".")
	if len(parts) != 3 {
		t.Fatalf("FakeJWT() has %d parts, want 3", len(parts))
	}
	decoded := make([]string, 3)
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			t.Fatalf("part %d is not base64url: %v", i, err)
		}
		decoded[i] = string(b)
	}
	if want := `{"alg":"HS256","typ":"JWT"}`; decoded[0] != want {
		t.Errorf("header = %s, want %s", decoded[0], want)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(decoded[1]), &got); err != nil {
		t.Fatalf("payload %s: %v", decoded[1], err)
	}
	want := map[string]any{"unique_name": "camera-1", "iat": 1700000000.0, "exp": 1700003600.0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}
	if decoded[2] != "signature" {
		t.Errorf("signature part = %q, want %q", decoded[2], "signature")
	}
}

func TestFakeJWTPanicsOnBadClaims(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("FakeJWT(a channel claim) did not panic")
		}
	}()
	FakeJWT(map[string]any{"bad": make(chan int)})
}

func TestAwait(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Await(t, ch, "value"); got != 7 {
		t.Errorf("Await() = %d, want 7", got)
	}
	closed := make(chan struct{})
	close(closed)
	Await(t, closed, "closed channel")
}
