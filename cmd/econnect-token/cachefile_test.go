package main

import (
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
)

// TestCacheKeySpellingsOfOneServer: spellings of one service root (case of
// the scheme and host, trailing slashes) share one cache entry.
func TestCacheKeySpellingsOfOneServer(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	base := strings.Replace(s.URL, "127.0.0.1", "localhost", 1) // http://localhost:PORT/identities
	env := cacheEnv(s, dir)
	env["ECONNECT_URL"] = base
	first := checkToken(t, s, runInProcess(t, env, ""))
	for _, spelling := range []string{
		base + "/",
		base + "//",
		strings.Replace(base, "http://localhost", "HTTP://LocalHost", 1),
	} {
		env["ECONNECT_URL"] = spelling
		if tok := checkToken(t, s, runInProcess(t, env, "")); tok != first {
			t.Errorf("-url %s: printed another token than the cached one", spelling)
		}
	}
	checkStats(t, s, econnecttest.Stats{}, 1, 0)
}

// TestCacheKeyKeepsAllowHTTPApart: entries made with -allow-http are kept
// apart from those made without it, so that a run without it meets the
// library's rule for plain http, not a cached token; for https,
// -allow-http changes nothing; two users have an entry each.
func TestCacheKeyKeepsAllowHTTPApart(t *testing.T) {
	t.Parallel()
	t.Run("http", func(t *testing.T) {
		t.Parallel()
		s, dir := newServer(t, false), t.TempDir()
		env := cacheEnv(s, dir)
		allowed := checkToken(t, s, runInProcess(t, env, "", "-allow-http"))
		if tok := checkToken(t, s, runInProcess(t, env, "")); tok == allowed {
			t.Errorf("a run without -allow-http printed the token cached with it")
		}
		if tok := checkToken(t, s, runInProcess(t, env, "", "-allow-http")); tok != allowed {
			t.Errorf("a run with -allow-http did not print the token cached with it")
		}
		checkStats(t, s, econnecttest.Stats{}, 2, 0)
	})
	t.Run("https", func(t *testing.T) {
		t.Parallel()
		s, dir := newServer(t, true), t.TempDir()
		env := cacheEnv(s, dir)
		ca := writeCACert(t, s)
		first := checkToken(t, s, runInProcess(t, env, "", "-cacert", ca))
		if tok := checkToken(t, s, runInProcess(t, env, "", "-cacert", ca, "-allow-http")); tok != first {
			t.Errorf("-allow-http changed the cache entry of an https URL")
		}
		checkStats(t, s, econnecttest.Stats{}, 1, 0)
	})
	t.Run("users", func(t *testing.T) {
		t.Parallel()
		s, dir := newServer(t, false), t.TempDir()
		s.AddUser("camera-2", testPassword)
		env := cacheEnv(s, dir)
		first := checkToken(t, s, runInProcess(t, env, ""))
		other := runInProcess(t, env, "", "-user", "camera-2")
		if other.code != exitOK || strings.TrimSpace(other.stdout) == first {
			t.Errorf("camera-2: exit %d, the first user's token: %t; want its own token",
				other.code, strings.TrimSpace(other.stdout) == first)
		}
		checkStats(t, s, econnecttest.Stats{}, 2, 0)
	})
}

// TestCacheEntryLifetime: the entry holds the token's expiry and lifetime
// as the library counted them from the login, and none for a token that
// never expires, which later runs print as it is.
func TestCacheEntryLifetime(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	s.SetLifetime(time.Hour)
	start := time.Now()
	tok := checkToken(t, s, runInProcess(t, cacheEnv(s, dir), ""))
	e := loadEntry(t, s, dir)
	switch {
	case e == nil || e.Token != tok:
		t.Fatal("the cache does not hold the printed token")
	case e.Username != testUser:
		t.Errorf("entry username %q, want %q", e.Username, testUser)
	// iat is whole seconds: the library counts a second less.
	case e.Lifetime != time.Hour-time.Second:
		t.Errorf("entry lifetime %v, want %v", e.Lifetime, time.Hour-time.Second)
	case e.Expiry.Before(start.Add(e.Lifetime)) || e.Expiry.After(time.Now().Add(e.Lifetime)):
		t.Errorf("entry expiry %v, want the login's time plus its lifetime", e.Expiry)
	}

	s, dir = newServer(t, false), t.TempDir()
	s.OmitClaims("exp")
	tok = checkToken(t, s, runInProcess(t, cacheEnv(s, dir), ""))
	if e := loadEntry(t, s, dir); e == nil || !e.Expiry.IsZero() || e.Lifetime != 0 {
		t.Fatalf("entry of a token that never expires: %t, want one with no expiry and no lifetime", e != nil)
	}
	if again := checkToken(t, s, runInProcess(t, cacheEnv(s, dir), "")); again != tok {
		t.Errorf("a later run printed another token than the cached one that never expires")
	}
	checkStats(t, s, econnecttest.Stats{}, 1, 0)
}
