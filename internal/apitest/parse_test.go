package apitest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/internal/testkit"
)

// TestParseToken: a raw JWT becomes a Bearer token with exp as it is and the
// username from unique_name; without exp it never expires.
func TestParseToken(t *testing.T) {
	jwt := testkit.FakeJWT(map[string]any{"unique_name": "cam", "iat": 1000, "exp": 4600})
	tok, err := econnect.ParseToken(jwt)
	if err != nil {
		t.Fatalf("ParseToken() error = %v", err)
	}
	if !tok.Expiry.Equal(time.Unix(4600, 0)) || tok.AccessToken != jwt || tok.TokenType != "Bearer" || tok.Extra("username") != "cam" {
		t.Errorf("ParseToken() = %+v, want exp 4600 as Expiry, the JWT, Bearer, username cam", tok)
	}
	if tok, err := econnect.ParseToken(testkit.FakeJWT(map[string]any{"unique_name": "cam"})); err != nil || !tok.Expiry.IsZero() {
		t.Errorf("ParseToken(no exp) = %v, %v; want zero Expiry", tok, err)
	}
}

// TestParseTokenCharacters: white space around a JWT, as a file or stdin
// leaves it, is trimmed; any other character that cannot be in a JWT is an
// error that does not quote the input, since a token holding one breaks
// every Authorization header it is put in.
func TestParseTokenCharacters(t *testing.T) {
	jwt := testkit.FakeJWT(map[string]any{"unique_name": "cam", "exp": 4600})
	head, rest, _ := strings.Cut(jwt, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	mid := len(payload) / 2
	inPayload := func(s string) string { return head + "." + payload[:mid] + s + payload[mid:] + "." + sig }
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"as it is", jwt, true},
		{"trailing newline", jwt + "\n", true},
		{"CRLF", jwt + "\r\n", true},
		{"space before, tab after", " " + jwt + "\t", true},
		{"space inside", inPayload(" "), false},
		{"newline inside", inPayload("\n"), false},
		{"plus", inPayload("+"), false},
		{"slash", inPayload("/"), false},
		{"padding", head + "." + payload + "=." + sig, false},
		{"padded signature", jwt + "==", false},
		{"NUL", inPayload("\x00"), false},
		{"NUL at the end", jwt + "\x00", false},
		{"non-ASCII letter", inPayload("é"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := econnect.ParseToken(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("ParseToken() = %q, want an error", tok.AccessToken)
				}
				for _, part := range []string{head, payload[:mid], payload[mid:], sig} {
					if strings.Contains(err.Error(), part) {
						t.Errorf("ParseToken() error = %q, quotes the input", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseToken() error = %v, want the JWT", err)
			}
			if tok.AccessToken != jwt {
				t.Errorf("ParseToken().AccessToken = %q, want %q", tok.AccessToken, jwt)
			}
		})
	}
}

// FuzzParseToken: hostile input gives an error or a token, never a panic.
// Errors never quote the input; accepted tokens are the input less the white
// space around it, and hold only characters a JWT can hold.
func FuzzParseToken(f *testing.F) {
	f.Add(testkit.FakeJWT(map[string]any{"unique_name": "cam", "iat": 1000, "exp": 4600}))
	f.Add(testkit.FakeJWT(map[string]any{"exp": 1e300, "iat": -1}))
	f.Add(testkit.FakeJWT(map[string]any{"exp": "x", "unique_name": 7}))
	f.Add(" " + testkit.FakeJWT(map[string]any{"exp": 1}) + "\n")
	f.Add(testkit.FakeJWT(map[string]any{"exp": 1}) + "=")
	f.Add("eyJhbGciOiJIUzI1NiJ9.bnVsbA.c2ln")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.c2ln\x00")
	f.Add("e30.e30.")
	f.Add("...")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := econnect.ParseToken(s)
		trimmed := strings.TrimSpace(s)
		if err != nil {
			// A dot keeps error texts, which have none, from matching by chance.
			if len(trimmed) > 8 && strings.Contains(trimmed, ".") && strings.Contains(err.Error(), trimmed) {
				t.Errorf("ParseToken error %q quotes the input", err)
			}
			return
		}
		if tok.AccessToken != trimmed || tok.TokenType != "Bearer" {
			t.Errorf("ParseToken(%q) = {AccessToken: %q, TokenType: %q}, want the trimmed input and Bearer", s, tok.AccessToken, tok.TokenType)
		}
		if i := strings.IndexFunc(tok.AccessToken, notInJWT); i >= 0 {
			t.Errorf("ParseToken(%q) accepted %q at %d, a character no JWT holds", s, tok.AccessToken[i], i)
		}
	})
}

// notInJWT reports whether r cannot be in a JWT: three base64url parts
// joined by dots.
func notInJWT(r rune) bool {
	return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.')
}
