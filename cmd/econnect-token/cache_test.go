package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/econnecttest"
	"github.com/econnect-oss/econnect/internal/tokenstore"
)

// cacheEnv is loginEnv with the token cache in dir.
func cacheEnv(s *econnecttest.Server, dir string) map[string]string {
	env := loginEnv(s)
	env["ECONNECT_CACHE_DIR"] = dir
	return env
}

// storeKey is the cache key of user at s: the library's key, which names
// the cache file.
func storeKey(t *testing.T, s *econnecttest.Server, user string) string {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return tokenstore.Key(u, user, false)
}

// tokenFile is the cache file of the test user at s in dir, as DirStore
// names it.
func tokenFile(t *testing.T, s *econnecttest.Server, dir string) string {
	t.Helper()
	return filepath.Join(dir, storeKey(t, s, testUser)+".token")
}

// loadEntry returns the cached entry of the test user at s in dir, or nil
// when there is none or it is not a valid one.
func loadEntry(t *testing.T, s *econnecttest.Server, dir string) *tokenstore.Entry {
	t.Helper()
	file := tokenFile(t, s, dir)
	if fi, err := os.Lstat(file); err != nil || !fi.Mode().IsRegular() {
		return nil // none, or a FIFO that a read would block on
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := tokenstore.Decode(storeKey(t, s, testUser), data, time.Now())
	if err != nil {
		return nil
	}
	return &e
}

// seedCache logs in with the library and caches the token as expiring in
// left, with a lifetime of an hour, in the library's format. It returns
// the token. The token is issued a minute back by the server's clock, as
// a cached token was: the library orders tokens by their claims, and takes
// two issued in the same second for one as new as the other.
func seedCache(t *testing.T, s *econnecttest.Server, dir string, left time.Duration) string {
	t.Helper()
	s.SetClockOffset(-time.Minute)
	tok := login(t, s)
	s.SetClockOffset(0)
	writeCacheEntry(t, s, dir, tokenstore.Entry{Token: tok, Username: testUser,
		Expiry: time.Now().Add(left), Lifetime: time.Hour, SavedAt: time.Now()})
	return tok
}

// writeCacheEntry writes e as the test user's cache entry at s in dir.
func writeCacheEntry(t *testing.T, s *econnecttest.Server, dir string, e tokenstore.Entry) {
	t.Helper()
	data, err := tokenstore.Encode(storeKey(t, s, testUser), e)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile(t, s, dir), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkStats checks the server's login and renewal counts since before.
func checkStats(t *testing.T, s *econnecttest.Server, before econnecttest.Stats, logins, renewals int) {
	t.Helper()
	st := s.Stats()
	if got := st.Logins - before.Logins; got != logins {
		t.Errorf("logins = %d, want %d", got, logins)
	}
	if got := st.Renewals - before.Renewals; got != renewals {
		t.Errorf("renewals = %d, want %d", got, renewals)
	}
}

// checkNoTempFiles checks that dir holds no temporary file of DirStore's
// (".KEY.tmp-N").
func checkNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if err != nil || len(names) > 0 {
		t.Errorf("temporary files left in the cache: %q (%v)", names, err)
	}
}

func TestCacheLoopLogsInOnce(t *testing.T) {
	t.Parallel()
	s := newServer(t, false) // 1-hour tokens
	env := cacheEnv(s, t.TempDir())
	var first string
	for i := range 20 {
		tok := checkToken(t, s, runBinary(t, env, ""))
		if i == 0 {
			first = tok
		} else if tok != first {
			t.Fatalf("run %d printed another token than the first run", i)
		}
	}
	checkStats(t, s, econnecttest.Stats{}, 1, 0)
}

func TestCacheParallelRuns(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	dir := t.TempDir()
	env := cacheEnv(s, dir)
	var wg sync.WaitGroup
	results := make([]result, 10)
	for i := range results {
		wg.Go(func() { results[i] = runBinary(t, env, "") })
	}
	wg.Wait()
	for _, r := range results {
		checkToken(t, s, r)
	}
	logins := s.Stats().Logins
	t.Logf("10 parallel runs on an empty cache: %d logins", logins)
	if logins < 1 || logins > 10 {
		t.Errorf("logins = %d, want 1 to 10", logins)
	}
	e := loadEntry(t, s, dir)
	if e == nil {
		t.Fatal("no valid cache entry after the parallel runs")
	}
	checkNoTempFiles(t, dir)
	if tok := checkToken(t, s, runBinary(t, env, "")); tok != e.Token {
		t.Errorf("a later run printed another token than the cached one")
	}
	checkStats(t, s, econnecttest.Stats{Logins: logins}, 0, 0)
}

func TestCacheStates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		left             time.Duration // of the cached token
		args             []string
		fault            *econnecttest.Fault // of the next renewal
		rotate           bool                // the server refuses the cached token
		logins, renewals int
		wantCached       bool   // prints the cached token
		keepsCache       bool   // leaves the cached token in the cache
		wantStderr       string // empty: nothing on stderr
	}{
		{name: "fresh", left: 30 * time.Minute, wantCached: true},
		{name: "due", left: 2 * time.Minute, renewals: 1},
		// The library never adopts a token under the safety margin: it logs
		// in (R7), where the command's own policy used to renew it.
		{name: "under the safety margin", left: 5 * time.Second, logins: 1},
		{name: "expired", left: -time.Second, logins: 1},
		{name: "due, renewal refused", left: 2 * time.Minute, rotate: true, logins: 1, renewals: 1},
		{name: "due, renewal failing", left: 2 * time.Minute, fault: &econnecttest.Fault{Status: 503}, renewals: 1,
			wantCached: true, wantStderr: "econnect-token: warning: could not renew the cached token (econnect: renewal refused: 503"},
		{name: "under the margin, renewal failing", left: 5 * time.Second, fault: &econnecttest.Fault{Status: 503},
			logins: 1},
		{name: "fresh with -fresh", left: 30 * time.Minute, args: []string{"-fresh"}, logins: 1},
		{name: "fresh with -no-cache", left: 30 * time.Minute, args: []string{"-no-cache"}, logins: 1, keepsCache: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, dir := newServer(t, false), t.TempDir()
			cached := seedCache(t, s, dir, tt.left)
			if tt.fault != nil {
				s.FailRenew(1, *tt.fault)
			}
			if tt.rotate {
				s.RotateKey()
			}
			before := s.Stats()
			r := runInProcess(t, cacheEnv(s, dir), "", tt.args...)
			tok := checkCachedRun(t, s, r, cached, tt.wantCached, tt.wantStderr)
			if tt.keepsCache {
				tok = cached
			}
			if e := loadEntry(t, s, dir); e == nil || e.Token != tok {
				t.Errorf("the cache does not hold the token it should")
			}
			checkStats(t, s, before, tt.logins, tt.renewals)
		})
	}
}

// checkCachedRun checks what a run with a cached token printed, and returns
// the token.
func checkCachedRun(t *testing.T, s *econnecttest.Server, r result, cached string, wantCached bool, wantStderr string) string {
	t.Helper()
	if r.code != exitOK || !jwtLine.MatchString(r.stdout) {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and a token", r.code, r.stdout, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if got := tok == cached; got != wantCached {
		t.Errorf("printed the cached token: %t, want %t", got, wantCached)
	}
	if !wantCached {
		if _, err := s.VerifyToken(tok); err != nil {
			t.Errorf("VerifyToken(printed token) error = %v", err)
		}
	}
	if wantStderr == "" && r.stderr != "" || !strings.HasPrefix(r.stderr, wantStderr) || strings.Count(r.stderr, "\n") > 1 {
		t.Errorf("stderr = %q, want %q", r.stderr, wantStderr)
	}
	return tok
}

func TestCacheNoCacheWritesNothing(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	for range 2 {
		checkToken(t, s, runInProcess(t, cacheEnv(s, dir), "", "-no-cache"))
	}
	checkStats(t, s, econnecttest.Stats{}, 2, 0)
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("-no-cache left %d files in the cache directory", len(names))
	}
}

func TestCacheFileModes(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not say who may read a file on Windows")
	}
	s := newServer(t, false)
	dir := filepath.Join(t.TempDir(), "cache", "econnect") // made by the command
	checkToken(t, s, runBinary(t, cacheEnv(s, dir), ""))
	checkMode(t, dir, 0o700)
	checkMode(t, tokenFile(t, s, dir), 0o600)
	checkNoTempFiles(t, dir)
}

func checkMode(t *testing.T, name string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %04o, want %04o", filepath.Base(name), got, want)
	}
}

func TestCacheBadFilesAreReplaced(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spoil func(t *testing.T, s *econnecttest.Server, file string)
		unix  bool // only where file modes say who may read a file
	}{
		{name: "corrupt", spoil: writeBytes([]byte(`{"version":1,"key":`))},
		{name: "not JSON", spoil: writeBytes([]byte("\x00\x01garbage"))},
		{name: "empty", spoil: writeBytes(nil)},
		{name: "too large", spoil: padded},
		{name: "another server", spoil: entryFor("http://127.0.0.1:1", testUser)},
		{name: "another user", spoil: entryFor("", "someone-else")},
		{name: "not a JWT", spoil: writeEntry(func(e map[string]any) { e["token"] = "not-a-jwt" })},
		{name: "bad lifetime", spoil: writeEntry(func(e map[string]any) { e["lifetime"] = "-1h0m0s" })},
		{name: "other version", spoil: writeEntry(func(e map[string]any) { e["version"] = 2 })},
		{name: "readable by others", unix: true, spoil: chmod(0o644)},
		{name: "writable by the group", unix: true, spoil: chmod(0o620)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.unix && runtime.GOOS == "windows" {
				t.Skip("file modes do not say who may read a file on Windows")
			}
			s, dir := newServer(t, false), t.TempDir()
			seedCache(t, s, dir, 30*time.Minute)
			tt.spoil(t, s, tokenFile(t, s, dir))
			before := s.Stats()
			r := runInProcess(t, cacheEnv(s, dir), "")
			tok := checkToken(t, s, r)
			checkStats(t, s, before, 1, 0)
			checkOneWarning(t, r, storeWarning)
			if e := loadEntry(t, s, dir); e == nil || e.Token != tok {
				t.Errorf("the spoilt file was not replaced by the new token")
			}
		})
	}
}

func writeBytes(data []byte) func(*testing.T, *econnecttest.Server, string) {
	return func(t *testing.T, _ *econnecttest.Server, file string) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// padded makes the file a valid entry followed by spaces past the size
// limit.
func padded(t *testing.T, _ *econnecttest.Server, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	writeBytes(append(data, strings.Repeat(" ", tokenstore.MaxValue)...))(t, nil, file)
}

// writeEntry changes the fields of the cached entry's JSON with change.
func writeEntry(change func(map[string]any)) func(*testing.T, *econnecttest.Server, string) {
	return func(t *testing.T, _ *econnecttest.Server, file string) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]any
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatal(err)
		}
		change(e)
		if data, err = json.Marshal(e); err != nil {
			t.Fatal(err)
		}
		writeBytes(data)(t, nil, file)
	}
}

// entryFor makes the entry one of user at another server (empty: the same),
// as a copied file would be: the entry names the key it was saved under.
func entryFor(server, user string) func(*testing.T, *econnecttest.Server, string) {
	return func(t *testing.T, s *econnecttest.Server, file string) {
		u, err := url.Parse(cmp.Or(server, s.URL))
		if err != nil {
			t.Fatal(err)
		}
		writeEntry(func(e map[string]any) { e["key"] = tokenstore.Key(u, user, false) })(t, s, file)
	}
}

// storeWarning starts the library's warning about the cache (Config.Store)
// that it ignores or cannot write.
const storeWarning = "econnect-token: warning: econnect: Config.Store: "

// checkOneWarning checks that r's stderr is one line starting with want.
func checkOneWarning(t *testing.T, r result, want string) {
	t.Helper()
	if !strings.HasPrefix(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr = %q, want one line starting %q", r.stderr, want)
	}
}

func chmod(mode os.FileMode) func(*testing.T, *econnecttest.Server, string) {
	return func(t *testing.T, _ *econnecttest.Server, file string) {
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCacheUnwritable(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	// A directory where the entry belongs, not empty (DirStore replaces an
	// empty one): it can be neither read nor replaced, which costs a
	// warning, never the token.
	if err := os.MkdirAll(filepath.Join(tokenFile(t, s, dir), "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := runInProcess(t, cacheEnv(s, dir), "")
	checkToken(t, s, r)
	checkOneWarning(t, r, storeWarning)
	checkNoTempFiles(t, dir)
}

func TestCacheRenew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		left             time.Duration
		env              map[string]string
		rotate           bool
		wantCode         int
		want             string // on stderr, for a failure
		logins, renewals int
	}{
		{name: "fresh cached token", left: 30 * time.Minute, renewals: 1},
		{name: "expired cached token", left: -time.Second, wantCode: exitRefused, want: "the cached token has expired or cannot be used; log in again without -renew"},
		{name: "refused cached token", left: 30 * time.Minute, rotate: true, wantCode: exitRefused, want: "log in again without -renew", renewals: 1},
		{name: "another user's token", left: 30 * time.Minute, env: map[string]string{"ECONNECT_USERNAME": "someone-else"},
			wantCode: exitUsage, want: "none cached for this -user and -url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, dir := newServer(t, false), t.TempDir()
			cached := seedCache(t, s, dir, tt.left)
			if tt.rotate {
				s.RotateKey()
			}
			// With the password at hand, -renew still never logs in.
			env := map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_USERNAME": testUser, "ECONNECT_PASSWORD": testPassword,
				"ECONNECT_CACHE_DIR": dir}
			for k, v := range tt.env {
				env[k] = v
			}
			before := s.Stats()
			r := runInProcess(t, env, "", "-renew")
			checkStats(t, s, before, tt.logins, tt.renewals)
			if tt.wantCode != exitOK {
				checkFailure(t, r, tt.wantCode, tt.want, cached)
				checkRefusedDropped(t, s, dir, tt.rotate)
				return
			}
			if tok := checkToken(t, s, r); tok == cached {
				t.Errorf("-renew printed the cached token")
			} else if e := loadEntry(t, s, dir); e == nil || e.Token != tok {
				t.Errorf("the cache does not hold the renewed token")
			}
		})
	}
}

// checkRefusedDropped checks that the cache entry is gone if the server
// refused it, and there otherwise.
func checkRefusedDropped(t *testing.T, s *econnecttest.Server, dir string, refused bool) {
	t.Helper()
	if e := loadEntry(t, s, dir); (e == nil) != refused {
		t.Errorf("cache entry after a failed -renew: %t, want %t", e != nil, !refused)
	}
}

func TestRenewOtherUsersToken(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	env := map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_TOKEN": login(t, s)}
	r := runInProcess(t, env, "", "-renew", "-user", "other")
	checkFailure(t, r, exitUsage, "the token belongs to another user than -user")
	checkStats(t, s, econnecttest.Stats{Logins: 1}, 0, 0)
}

// TestRenewGivenTokenIsCached: -renew caches the token it renewed from
// ECONNECT_TOKEN, under -user, and a later run prints it.
func TestRenewGivenTokenIsCached(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	given := seedCache(t, s, dir, 30*time.Minute)
	env := map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_USERNAME": testUser, "ECONNECT_TOKEN": given, "ECONNECT_CACHE_DIR": dir}
	tok := checkToken(t, s, runInProcess(t, env, "", "-renew"))
	if e := loadEntry(t, s, dir); tok == given || e == nil || e.Token != tok {
		t.Errorf("the cache does not hold the renewed token")
	}
	if again := checkToken(t, s, runInProcess(t, cacheEnv(s, dir), "")); again != tok {
		t.Errorf("a later run printed another token than the renewed one")
	}
	checkStats(t, s, econnecttest.Stats{Logins: 1}, 0, 1)
}

// TestRenewCachedFailing: when the renewal of the cached token fails for a
// passing reason, -renew says why with a renewal of its own: 503 twice
// exits 3, and a second renewal that works prints its token.
func TestRenewCachedFailing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		faults, code int
	}{{faults: 2, code: exitUnavailable}, {faults: 1, code: exitOK}} {
		t.Run(fmt.Sprint(tt.faults, " failing"), func(t *testing.T) {
			t.Parallel()
			s, dir := newServer(t, false), t.TempDir()
			cached := seedCache(t, s, dir, 30*time.Minute)
			s.FailRenew(tt.faults, econnecttest.Fault{Status: 503})
			env := map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_USERNAME": testUser, "ECONNECT_CACHE_DIR": dir}
			r := runInProcess(t, env, "", "-renew")
			checkStats(t, s, econnecttest.Stats{Logins: 1}, 0, 2)
			if tt.code != exitOK {
				checkFailure(t, r, tt.code, "the server is busy or failing: try again later", cached)
				return
			}
			if tok := checkToken(t, s, r); tok == cached {
				t.Errorf("-renew printed the cached token")
			} else if e := loadEntry(t, s, dir); e == nil || e.Token != tok {
				t.Errorf("the cache does not hold the renewed token")
			}
		})
	}
}

// TestFreshLoginFailsKeepsTheCache: a -fresh run whose login fails exits
// as a failed login does, and leaves the cached token where it was.
func TestFreshLoginFailsKeepsTheCache(t *testing.T) {
	t.Parallel()
	s, dir := newServer(t, false), t.TempDir()
	cached := seedCache(t, s, dir, 30*time.Minute)
	env := cacheEnv(s, dir)
	env["ECONNECT_PASSWORD"] = "wrong-SENTINEL-93"
	checkFailure(t, runInProcess(t, env, "", "-fresh"), exitRefused, "check the username", cached, "wrong-SENTINEL-93")
	if e := loadEntry(t, s, dir); e == nil || e.Token != cached {
		t.Errorf("the cache does not hold the cached token any more")
	}
	checkStats(t, s, econnecttest.Stats{Logins: 1}, 1, 0)
}
