// Package tokenstore is the token source's side of a Store: the key a
// source's tokens live under, the versioned format they are stored in, and
// the calls a source makes, each bounded in time, with failures reported
// once per streak. It never decides which token to use: that is the token
// source's job.
package tokenstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/econnect-oss/econnect/internal/jwtclaims"
)

const (
	// Version is the format of the values this package writes; the key
	// carries it too, so that another format never meets this one.
	Version = 1
	// MaxValue is the largest value saved or read.
	MaxValue = 64 << 10
	// maxFuture is how far in the reader's future a value's saved_at may be:
	// beyond, the writer's clock or the value is wrong.
	maxFuture = time.Minute
)

// Key returns the key of the tokens of username at base: one function of
// the normalised origin and path (scheme and host lower-cased, a default
// port and trailing slashes dropped), the username and whether plain http
// is allowed (only meaningful, so only counted, for an http URL). It is
// printable, holds no path separator, and names no host or user in clear.
func Key(base *url.URL, username string, allowHTTP bool) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%q %q %t", normalURL(base), username, allowHTTP && base.Scheme == "http"))
	return "econnect-v1-" + hex.EncodeToString(sum[:])
}

// normalURL is base's scheme, host, port (unless the scheme's default) and
// path without trailing slashes: …/identities and …/identities/ are one
// server.
func normalURL(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "https" && p == "443" || scheme == "http" && p == "80") {
		host += ":" + p
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
}

// Entry is a token as a source stores it: the JWT, and what the source that
// got it computed (its expiry on the local wall clock, corrected for the
// server's clock, and its lifetime), so that a reader need not count again.
type Entry struct {
	Token    string        // the JWT
	Username string        // as the server gave it
	Expiry   time.Time     // zero: never expires
	Lifetime time.Duration // zero when Expiry is
	SavedAt  time.Time

	// Claims are the JWT's own, filled by Decode: the server's clock,
	// which orders tokens across machines.
	Claims jwtclaims.Claims
}

// stored is the JSON of an Entry. It holds the key it was saved under, so
// that a value copied under another key is not taken for that key's.
type stored struct {
	Version  int       `json:"version"`
	Key      string    `json:"key"`
	Token    string    `json:"token"`
	Username string    `json:"username,omitempty"`
	Expiry   time.Time `json:"expiry,omitzero"`
	Lifetime string    `json:"lifetime,omitempty"` // a time.Duration, such as "59m59s"
	SavedAt  time.Time `json:"saved_at"`
}

// Encode returns e as saved under key.
func Encode(key string, e Entry) ([]byte, error) {
	s := stored{Version: Version, Key: key, Token: e.Token, Username: e.Username,
		Expiry: e.Expiry.UTC(), SavedAt: e.SavedAt.UTC().Truncate(time.Millisecond)}
	if e.Lifetime > 0 {
		s.Lifetime = e.Lifetime.String()
	}
	b, err := json.Marshal(s)
	if err == nil && len(b) > MaxValue {
		err = errors.New("the token's entry is larger than 64 KiB")
	}
	return b, err
}

// errForeign is a value that is not a token of this package for this key.
var errForeign = errors.New("the value stored under this source's key is not a token entry for it")

// Decode returns the entry b holds, if it is a valid one for key: this
// package's format and version, this key, a JWT, an expiry and lifetime
// that agree, saved no later than a minute into now's future. Its errors
// say what was wrong, never quoting the value.
func Decode(key string, b []byte, now time.Time) (Entry, error) {
	var s stored
	if len(b) > MaxValue {
		return Entry{}, errors.New("the value stored under this source's key is larger than 64 KiB")
	}
	if json.Unmarshal(b, &s) != nil || s.Version != Version || s.Key != key {
		return Entry{}, errForeign
	}
	cl, err := jwtclaims.Parse(s.Token)
	if err != nil {
		return Entry{}, fmt.Errorf("the token stored under this source's key is not usable: %w", err)
	}
	life, err := lifetime(s)
	if err != nil {
		return Entry{}, err
	}
	if s.SavedAt.IsZero() || s.SavedAt.After(now.Add(maxFuture)) {
		return Entry{}, errors.New("the token stored under this source's key was saved in the future: is a clock off?")
	}
	return Entry{Token: s.Token, Username: s.Username, Expiry: s.Expiry, Lifetime: life, SavedAt: s.SavedAt, Claims: cl}, nil
}

// lifetime reads s's lifetime and checks that it agrees with its expiry.
func lifetime(s stored) (time.Duration, error) {
	var life time.Duration
	if s.Lifetime != "" {
		d, err := time.ParseDuration(s.Lifetime)
		if err != nil {
			return 0, errForeign
		}
		life = d
	}
	if s.Expiry.IsZero() != (life == 0) || life < 0 {
		return 0, errors.New("the token stored under this source's key has an expiry and a lifetime that disagree")
	}
	return life, nil
}

// Newer reports whether a token with claims a was issued after one with
// claims b, by the server's clock: a later exp (none is latest), then a
// later iat.
func Newer(a, b jwtclaims.Claims) bool {
	if c := compareExp(a.Exp, b.Exp); c != 0 {
		return c > 0
	}
	return a.Iat.After(b.Iat)
}

// compareExp orders expiries, no expiry last.
func compareExp(a, b time.Time) int {
	switch {
	case a.Equal(b):
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Compare(b)
}
