package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/econnect-oss/econnect"
)

// cacheStore is the token cache: the library's DirStore, which its token
// sources read and write, so that the command has no cache code of its
// own. Being a DirStore, it is a Locker too: of the runs that need a token
// at the same moment, one calls the server and the others take its token.
// It notes whether a load found anything under the key, so that -renew
// can tell "nothing cached" from "a cached token that cannot be renewed".
type cacheStore struct {
	econnect.DirStore
	found atomic.Bool
}

// Load is the DirStore's, noting whether it found anything, usable or not.
func (c *cacheStore) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := c.DirStore.Load(ctx, key)
	if !errors.Is(err, econnect.ErrNotStored) {
		c.found.Store(true)
	}
	return b, err
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
