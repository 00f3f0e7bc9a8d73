package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/policy"
	"golang.org/x/oauth2"
)

// The cache keeps one token per server and user in a small JSON file, so
// that a script calling the command every minute logs in once per token
// lifetime instead of every run.

const (
	cacheVersion = 1
	// maxCacheFile bounds what is read of a cache file: a JWT is a few KiB.
	maxCacheFile = 64 << 10
)

// cacheKey names a cache entry: the server (origin and path) and the user.
// Entries written with -allow-http are kept apart, so that a run without it
// meets the library's refusal of plain http instead of a cached token.
type cacheKey struct {
	url       string // normalized by cacheURL
	user      string
	allowHTTP bool // only set for http:// URLs
}

// newCacheKey returns the key of o's server and user.
func newCacheKey(u *url.URL, user string, allowHTTP bool) cacheKey {
	return cacheKey{url: cacheURL(u), user: user, allowHTTP: allowHTTP && u.Scheme == "http"}
}

// cacheURL is u's scheme, host, port (unless the scheme's default) and path
// without trailing slashes: …/identities and …/identities/ are one server.
func cacheURL(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443" || u.Scheme == "http" && p == "80") {
		host += ":" + p
	}
	return strings.ToLower(u.Scheme) + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
}

// file returns the entry's file name in dir: a hash, so that neither the
// user nor the server need to be valid in a file name.
func (k cacheKey) file(dir string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%q %q %t", k.url, k.user, k.allowHTTP)))
	return filepath.Join(dir, "token-"+hex.EncodeToString(sum[:16])+".json")
}

// cacheEntry is the content of a cache file.
type cacheEntry struct {
	Version   int    `json:"version"`
	URL       string `json:"url"`
	User      string `json:"user"`
	AllowHTTP bool   `json:"allow_http,omitempty"`
	Token     string `json:"token"`
	// Username is the name the server gave with the token, for -json.
	Username string `json:"username,omitempty"`
	// Expiry is when the token expires on the local clock, as the library
	// computed it (corrected for the server's clock); zero: never.
	Expiry time.Time `json:"expiry,omitzero"`
	// Lifetime is the token's whole life: Expiry minus the time it was
	// received. The renewal policy scales with it.
	Lifetime time.Duration `json:"lifetime_ns,omitempty"`
	// Jitter draws the token's renewal threshold, once per token, so that
	// devices that logged in together do not all renew in the same run.
	Jitter float64 `json:"jitter"`
}

// newCacheEntry returns the entry for tok, received at now.
func newCacheEntry(k cacheKey, tok *oauth2.Token, now time.Time, jitter float64) *cacheEntry {
	e := &cacheEntry{Version: cacheVersion, URL: k.url, User: k.user, AllowHTTP: k.allowHTTP,
		Token: tok.AccessToken, Expiry: tok.Expiry, Jitter: jitter}
	e.Username, _ = tok.Extra("username").(string)
	if !tok.Expiry.IsZero() {
		e.Lifetime = tok.Expiry.Sub(now)
	}
	return e
}

// timing is what the renewal policy knows of the entry's token.
func (e *cacheEntry) timing() policy.Timing {
	return policy.NewTiming(e.Expiry, e.Lifetime, 0, e.Jitter)
}

// oauth2Token returns the entry's token as the library would hand it out.
func (e *cacheEntry) oauth2Token() *oauth2.Token {
	t := &oauth2.Token{AccessToken: e.Token, TokenType: "Bearer", Expiry: e.Expiry}
	return t.WithExtra(map[string]any{"username": e.Username})
}

// valid reports whether e is a well-formed entry for k: anything else in a
// cache file is ignored, so that it can never yield another server's or
// user's token, or a token that is not a JWT.
func (e *cacheEntry) valid(k cacheKey) bool {
	switch {
	case e.Version != cacheVersion, e.URL != k.url, e.User != k.user, e.AllowHTTP != k.allowHTTP:
		return false
	case e.Expiry.IsZero() != (e.Lifetime == 0), e.Lifetime < 0, e.Jitter < 0, e.Jitter >= 1:
		return false
	}
	_, err := econnect.ParseToken(e.Token)
	return err == nil
}

// A tokenCache reads and writes the entries in one directory. Its methods
// never fail: a cache that cannot be used is no cache, and what went wrong
// is at most one warning on stderr.
type tokenCache struct {
	dir  string
	warn func(format string, a ...any)
}

// load returns the entry for k, or nil when there is none usable.
func (c *tokenCache) load(k cacheKey) *cacheEntry {
	name := k.file(c.dir)
	data, err := readCacheFile(name)
	switch {
	case errors.Is(err, errLooseMode):
		c.warn("ignoring the cached token in %s: %v; a new one replaces it", name, err)
		return nil
	case err != nil:
		return nil
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil || !e.valid(k) {
		return nil
	}
	return &e
}

// errLooseMode is a cache file other users may read or write.
var errLooseMode = errors.New("other users may read or change it, or it belongs to another user")

// readCacheFile returns the content of a private, regular cache file of at
// most maxCacheFile bytes.
func readCacheFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case looseMode(fi):
		return nil, fmt.Errorf("%w (mode %04o)", errLooseMode, fi.Mode().Perm())
	case fi.Size() > maxCacheFile:
		return nil, errors.New("too large")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCacheFile+1))
	if err == nil && len(data) > maxCacheFile {
		err = errors.New("too large")
	}
	return data, err
}

// store writes e as k's entry. It writes a temporary file in the same
// directory and renames it over the entry, so that a concurrent run reads
// either the old entry or the new one, never half of one.
func (c *tokenCache) store(k cacheKey, e *cacheEntry) {
	if err := writeFileAtomic(k.file(c.dir), e); err != nil {
		c.warn("could not cache the token: %v", err)
	}
}

// writeFileAtomic writes v as JSON to name through a temporary file, which
// it removes on every failure.
func writeFileAtomic(name string, v any) (err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// drop removes k's entry if it still holds the token raw: the server
// refused it, and a later run must not hand it out.
func (c *tokenCache) drop(k cacheKey, raw string) {
	if e := c.load(k); e != nil && e.Token == raw {
		if err := os.Remove(k.file(c.dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.warn("could not remove the refused token from the cache: %v", err)
		}
	}
}

// cacheDir returns the cache directory: $ECONNECT_CACHE_DIR, else econnect
// in the user's cache directory.
func cacheDir(getenv func(string) string) (string, error) {
	if dir := getenv("ECONNECT_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "econnect"), nil
}
