package main

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/policy"
	"golang.org/x/oauth2"
)

func TestWriteFileAtomicRemovesItsTempFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	target := filepath.Join(dir, "entry.json")
	if err := os.Mkdir(target, 0o700); err != nil { // the rename fails
		t.Fatal(err)
	}
	if err := writeFileAtomic(target, map[string]int{"a": 1}); err == nil {
		t.Errorf("writeFileAtomic over a directory: no error")
	}
	if err := writeFileAtomic(filepath.Join(dir, "bad.json"), func() {}); err == nil {
		t.Errorf("writeFileAtomic of a func: no error")
	}
	checkNoTempFiles(t, dir)
}

func TestCacheURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://customer.econnectcloud.com/identities", "https://customer.econnectcloud.com/identities"},
		{"https://Customer.EconnectCloud.com/identities/", "https://customer.econnectcloud.com/identities"},
		{"HTTPS://host:443/identities//", "https://host/identities"},
		{"https://host:5009", "https://host:5009"},
		{"https://host:5009/", "https://host:5009"},
		{"http://host:80", "http://host"},
		{"http://host:443", "http://host:443"},
		{"http://[::1]:6009/x?q=1#f", "http://[::1]:6009/x"},
		{"https://host/Identities", "https://host/Identities"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := cacheURL(u); got != tt.want {
			t.Errorf("cacheURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCacheKeyKeepsAllowHTTPApart(t *testing.T) {
	t.Parallel()
	plain, _ := url.Parse("http://10.0.0.5:6009")
	secure, _ := url.Parse("https://10.0.0.5:5009")
	if newCacheKey(plain, "u", true).file("d") == newCacheKey(plain, "u", false).file("d") {
		t.Errorf("an http entry written with -allow-http is the one read without it")
	}
	if newCacheKey(secure, "u", true) != newCacheKey(secure, "u", false) {
		t.Errorf("-allow-http changes the key of an https URL")
	}
	if newCacheKey(secure, "u", false).file("d") == newCacheKey(secure, "v", false).file("d") {
		t.Errorf("two users share a cache file")
	}
}

func TestEntryState(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	e := &cacheEntry{Expiry: exp, Lifetime: time.Hour, Jitter: 0.5}
	threshold := policy.Threshold(time.Hour, 0, 0.5)
	margin := policy.Margin(time.Hour)
	tests := []struct {
		name string
		e    *cacheEntry
		now  time.Time
		want policy.State
	}{
		{"no entry", nil, exp, policy.None},
		{"never expires", &cacheEntry{}, exp, policy.Fresh},
		{"at the renewal point", e, exp.Add(-threshold), policy.Fresh},
		{"just past the renewal point", e, exp.Add(-threshold + 1), policy.Due},
		{"at the safety margin", e, exp.Add(-margin), policy.Due},
		{"just inside the safety margin", e, exp.Add(-margin + 1), policy.Unsafe},
		{"at expiry", e, exp, policy.Expired},
	}
	for _, tt := range tests {
		if got := entryState(tt.e, tt.now); got != tt.want {
			t.Errorf("%s: entryState() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewCacheEntryLifetime(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	k := cacheKey{url: "https://host", user: testUser}
	tok := (&oauth2.Token{AccessToken: "a.b.c", Expiry: now.Add(time.Hour)}).WithExtra(map[string]any{"username": "Camera-1"})
	e := newCacheEntry(k, tok, now, 0.25)
	want := cacheEntry{Version: cacheVersion, URL: "https://host", User: testUser, Token: "a.b.c", Username: "Camera-1",
		Expiry: now.Add(time.Hour), Lifetime: time.Hour, Jitter: 0.25}
	if *e != want {
		t.Errorf("newCacheEntry() = %+v, want %+v", *e, want)
	}
	if e := newCacheEntry(k, &oauth2.Token{AccessToken: "a.b.c"}, now, 0); e.Lifetime != 0 || !e.Expiry.IsZero() {
		t.Errorf("newCacheEntry(never expires) = %+v, want no expiry and no lifetime", *e)
	}
}
