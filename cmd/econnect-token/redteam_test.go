package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
)

// TestCachedTokenWithWhiteSpace: a cache entry whose token has white space
// around it (a hand-edited file, a tampered one) is refused, never printed
// as it is, which would break every header it went in: the run logs in.
func TestCachedTokenWithWhiteSpace(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	cached := seedCache(t, s, dir, 30*time.Minute)
	e := cacheEntryOf(cached)
	e.Token = " " + cached + "\n"
	writeCacheEntry(t, s, dir, e)
	before := s.Stats()
	r := runInProcess(t, cacheEnv(s, dir), "")
	if tok := checkToken(t, s, r); tok == cached {
		t.Errorf("printed the cached token, want a new one")
	}
	checkStats(t, s, before, 1, 0)
	checkOneWarning(t, r, storeWarning)
}

// TestLongUsername: a 100,000-character username makes a token whose cache
// entry is larger than the 64 KiB the cache keeps: the run prints its
// token and says once that it could not cache it.
func TestLongUsername(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	long := strings.Repeat("u", 100_000)
	s.AddUser(long, testPassword)
	env := cacheEnv(s, dir)
	env["ECONNECT_USERNAME"] = long
	r := runInProcess(t, env, "")
	if r.code != exitOK || !jwtLine.MatchString(r.stdout) {
		t.Fatalf("exit %d, %d bytes on stdout, stderr %q; want 0 and a token alone on its line", r.code, len(r.stdout), r.stderr)
	}
	if name, err := s.VerifyToken(strings.TrimSpace(r.stdout)); err != nil || name != long {
		t.Errorf("VerifyToken(printed token) = %d characters, %v; want the long name", len(name), err)
	}
	checkOneWarning(t, r, storeWarning+"saving a token: the token's entry is larger than 64 KiB")
	if names, _ := filepath.Glob(filepath.Join(dir, "*.token")); len(names) != 0 {
		t.Errorf("the cache holds %q, want no token file", names)
	}
	checkNoTempFiles(t, dir)
}

// TestOldCacheFilesAreIgnored: a cache file the command wrote before the
// cache was the library's (token-HASH.json) is neither read nor touched.
func TestOldCacheFilesAreIgnored(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	old := filepath.Join(dir, "token-00112233445566778899aabbccddeeff.json")
	content := `{"version":1,"url":"` + s.URL + `","user":"` + testUser + `","token":"` + login(t, s) + `","jitter":0.5}`
	if err := os.WriteFile(old, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runInProcess(t, cacheEnv(s, dir), "")
	checkToken(t, s, r)
	if r.stderr != "" {
		t.Errorf("stderr = %q, want nothing", r.stderr)
	}
	checkStats(t, s, econnecttest.Stats{Logins: 1}, 1, 0)
	if b, err := os.ReadFile(old); err != nil || string(b) != content {
		t.Errorf("the old cache file was changed: %v", err)
	}
}
