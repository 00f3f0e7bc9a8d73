package redisstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/econnect-oss/econnect"
	"github.com/redis/go-redis/v9"
)

func TestSaveThenLoadReturnsTheValue(t *testing.T) {
	tests := []struct {
		name  string
		value []byte
	}{
		{"a JSON entry", []byte(`{"version":1,"jwt":"eyJ.x.y"}`)},
		{"binary bytes", []byte{0, 1, 0xff, '\r', '\n', 0}},
		{"empty", []byte{}},
		{"exactly 64 KiB", bytes.Repeat([]byte("a"), 64<<10)},
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := b.store.Save(t.Context(), "k", tt.value, time.Hour); err != nil {
					t.Fatalf("Save() error = %v", err)
				}
				got, err := b.store.Load(t.Context(), "k")
				if err != nil {
					t.Fatalf("Load() error = %v", err)
				}
				if !bytes.Equal(got, tt.value) {
					t.Errorf("Load() = %q, want %q", trim(got), trim(tt.value))
				}
			})
		}
	})
}

func TestSaveReplacesTheValue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		ctx := t.Context()
		for _, v := range []string{"first", "second"} {
			if err := b.store.Save(ctx, "k", []byte(v), time.Hour); err != nil {
				t.Fatalf("Save(%q) error = %v", v, err)
			}
		}
		got, err := b.store.Load(ctx, "k")
		if err != nil || string(got) != "second" {
			t.Errorf("Load() = %q, %v, want %q, nil", got, err, "second")
		}
	})
}

func TestLoadOfAMissingValueIsNotStored(t *testing.T) {
	tests := []struct {
		name  string
		setup func(ctx context.Context, s *Store) error
	}{
		{"never saved", func(context.Context, *Store) error { return nil }},
		{"deleted", func(ctx context.Context, s *Store) error {
			if err := s.Save(ctx, "k", []byte("v"), time.Hour); err != nil {
				return err
			}
			return s.Delete(ctx, "k")
		}},
		{"saved under another key", func(ctx context.Context, s *Store) error {
			return s.Save(ctx, "other", []byte("v"), time.Hour)
		}},
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := tt.setup(t.Context(), b.store); err != nil {
					t.Fatalf("setup: %v", err)
				}
				got, err := b.store.Load(t.Context(), "k")
				if !errors.Is(err, econnect.ErrNotStored) {
					t.Errorf("Load() = %q, %v, want an error wrapping econnect.ErrNotStored", got, err)
				}
			})
		}
	})
}

func TestLoadReportsOtherErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		// A key of the store's that holds a list: Redis answers WRONGTYPE.
		if err := b.client.RPush(t.Context(), b.store.valueKey("k"), "x").Err(); err != nil {
			t.Fatal(err)
		}
		_, err := b.store.Load(t.Context(), "k")
		if err == nil || errors.Is(err, econnect.ErrNotStored) {
			t.Errorf("Load() of a list error = %v, want an error other than ErrNotStored", err)
		}
		if !strings.HasPrefix(err.Error(), "econnect: redisstore: ") {
			t.Errorf("Load() error = %q, want the prefix %q", err, "econnect: redisstore: ")
		}
	})
}

func TestSaveSetsTheTTLInRedis(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		wantMax time.Duration // PTTL in (0, wantMax]; zero: no expiry
	}{
		{"an hour", time.Hour, time.Hour},
		{"a second and a half", 1500 * time.Millisecond, 1500 * time.Millisecond},
		{"zero never expires", 0, 0},
		{"negative never expires", -time.Second, 0},
	}
	forEachBackend(t, func(t *testing.T, b *backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				// An earlier save with a ttl: a later one must replace it.
				if err := b.store.Save(ctx, "k", []byte("old"), time.Minute); err != nil {
					t.Fatal(err)
				}
				if err := b.store.Save(ctx, "k", []byte("v"), tt.ttl); err != nil {
					t.Fatalf("Save() error = %v", err)
				}
				checkPTTL(t, b.client, b.store.valueKey("k"), tt.wantMax)
			})
		}
	})
}

func TestMillisRoundsUp(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want int64
	}{
		{"1 ns", time.Nanosecond, 1},
		{"1 ms", time.Millisecond, 1},
		{"1 ms + 1 ns", time.Millisecond + time.Nanosecond, 2},
		{"1 s - 1 ns", time.Second - time.Nanosecond, 1000},
		{"30 s", 30 * time.Second, 30000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := millis(tt.d); got != tt.want {
				t.Errorf("millis(%v) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}

// checkPTTL reports an error unless key expires in (0, max], or has no
// expiry when max is zero.
func checkPTTL(t *testing.T, c redis.UniversalClient, key string, max time.Duration) {
	t.Helper()
	got, err := c.PTTL(t.Context(), key).Result()
	switch {
	case err != nil:
		t.Errorf("PTTL(%s) error = %v", key, err)
	case max == 0 && got != -1:
		t.Errorf("PTTL(%s) = %v, want no expiry (-1)", key, got)
	case max != 0 && (got <= 0 || got > max):
		t.Errorf("PTTL(%s) = %v, want in (0, %v]", key, got, max)
	}
}

func TestAValueLapsesAfterItsTTL(t *testing.T) {
	mr := miniredis.RunT(t)
	s := New(newClient(t, &redis.Options{Addr: mr.Addr()}), "test:")
	ctx := t.Context()
	if err := s.Save(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	mr.FastForward(time.Minute - time.Millisecond)
	if _, err := s.Load(ctx, "k"); err != nil {
		t.Errorf("Load() 1 ms before the ttl error = %v, want the value", err)
	}
	mr.FastForward(time.Millisecond)
	if _, err := s.Load(ctx, "k"); !errors.Is(err, econnect.ErrNotStored) {
		t.Errorf("Load() at the ttl error = %v, want ErrNotStored", err)
	}
}

func TestDeleteOfAMissingValueIsNoError(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		if err := b.store.Delete(t.Context(), "never-saved"); err != nil {
			t.Errorf("Delete() error = %v, want nil", err)
		}
	})
}

func TestSaveRefusesAValueOver64KiB(t *testing.T) {
	b := newMiniredis(t)
	value := append(bytes.Repeat([]byte("a"), 64<<10), "SECRET-TOKEN"...)
	err := b.store.Save(t.Context(), "k", value, time.Hour)
	if err == nil {
		t.Fatal("Save() of 64 KiB + 12 bytes error = nil, want a refusal")
	}
	if strings.Contains(err.Error(), "SECRET-TOKEN") {
		t.Errorf("Save() error = %q, holds the value", err)
	}
	if _, err := b.store.Load(t.Context(), "k"); !errors.Is(err, econnect.ErrNotStored) {
		t.Errorf("Load() after a refused Save error = %v, want ErrNotStored", err)
	}
}

func TestKeysAreHashTaggedUnderThePrefix(t *testing.T) {
	mr := miniredis.RunT(t)
	s := New(newClient(t, &redis.Options{Addr: mr.Addr()}), "myapp:")
	ctx := t.Context()
	if err := s.Save(ctx, "econnect-v1-ab12", []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.Lock(ctx, "econnect-v1-ab12", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	want := []string{"myapp:{econnect-v1-ab12}:lock", "myapp:{econnect-v1-ab12}:token"}
	if got := mr.Keys(); !slices.Equal(got, want) {
		t.Errorf("keys in Redis = %q, want %q", got, want)
	}
}

// trim shortens a value for a failure message.
func trim(b []byte) []byte {
	if len(b) > 32 {
		return append(b[:32:32], "…"...)
	}
	return b
}
