// Package jwtclaims reads the claims of a JWT that econnect needs, without
// verifying its signature: the server signs with HS256 and a key clients do
// not have.
package jwtclaims

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxUnixTime is 9999-12-31T23:59:59Z: a later exp or iat is not a time.
const maxUnixTime = 253402300799

// Claims are the parts of a JWT payload econnect reads.
type Claims struct {
	Exp, Iat time.Time // zero when absent or null
	Name     string    // unique_name, or "" when absent or not a string
}

// Parse reads the claims of the JWT s. It fails when s is not three
// base64url parts with JSON header and payload, or when exp or iat is not a
// number of seconds. Its errors never quote s.
func Parse(s string) (Claims, error) {
	if i := strings.IndexFunc(s, notJWT); i >= 0 {
		return Claims{}, fmt.Errorf("malformed JWT: character %d cannot be in a JWT", i)
	}
	m := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(s, m); err != nil {
		return Claims{}, fmt.Errorf("malformed JWT: %w", err)
	}
	var cl Claims
	var err error
	if cl.Exp, err = numericDate(m, "exp"); err != nil {
		return Claims{}, err
	}
	if cl.Iat, err = numericDate(m, "iat"); err != nil {
		return Claims{}, err
	}
	cl.Name, _ = m["unique_name"].(string)
	return cl, nil
}

// notJWT reports whether r cannot be in a JWT: three base64url parts
// joined by dots. The base64 decoder would skip a newline, and a token that
// holds one breaks every Authorization header it is put in.
func notJWT(r rune) bool {
	return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.')
}

// numericDate reads a JWT time claim: absent or null is the zero time, a
// number of seconds is a time, anything else is an error.
func numericDate(m jwt.MapClaims, name string) (time.Time, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return time.Time{}, nil
	}
	f, ok := v.(float64)
	if !ok || f < 0 || f > maxUnixTime {
		return time.Time{}, fmt.Errorf("JWT claim %s is not a time", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}
