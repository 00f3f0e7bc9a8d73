// Package secret keeps the password and tokens out of what econnect shows:
// refusal bodies, redirect locations and printed URLs. The rest of the
// package never formats a secret, so these are the only places that have to
// recognise one.
package secret

import (
	"bytes"
	"net/url"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Redacted is what stands in place of a secret.
const Redacted = "[redacted]"

// maxWork bounds the characters one Redact call compares: a server echoing
// a long password in a long body would otherwise cost the cut times the
// password's length. Realistic secrets stay far below it; past it, the rest
// of the body is withheld rather than searched.
const maxWork = 1 << 22

// Redact returns at most limit bytes of body with every occurrence of each
// secret replaced, whether written raw or JSON-escaped in any way
// (`\u003c`, `\u003C`, `\"`, surrogate pairs…), as a server might echo it.
// It redacts before it cuts, so no part of a secret straddling the cut
// survives. Empty secrets are ignored.
func Redact(body []byte, limit int, secrets ...string) []byte {
	out := make([]byte, 0, min(len(body), limit))
	work := maxWork
	for i := 0; i < len(body) && len(out) < limit; {
		n := 0
		for _, s := range secrets {
			if n = match(body[i:], s, &work); n > 0 {
				break
			}
		}
		switch {
		case work < 0:
			out = append(out, Redacted...)
			i = len(body)
		case n > 0:
			out = append(out, Redacted...)
			i += n
		default:
			out = append(out, body[i])
			i++
		}
	}
	return out[:min(len(out), limit)]
}

// match returns the length of the prefix of b that spells secret, each of
// its runes raw or JSON-escaped, or 0. It takes what it compares from *work.
func match(b []byte, secret string, work *int) int {
	if secret == "" || len(b) == 0 {
		return 0
	}
	*work -= min(len(b), len(secret))
	if bytes.HasPrefix(b, []byte(secret)) {
		return len(secret)
	}
	if !utf8.ValidString(secret) {
		return 0 // only the raw bytes can spell it
	}
	n := 0
	for _, want := range secret {
		*work--
		r, size := nextRune(b[n:])
		if size == 0 || r != want {
			return 0
		}
		n += size
	}
	return n
}

// nextRune decodes the first character of b, raw or as a JSON escape, and
// returns it with its length in b; size 0 when b is empty or malformed.
func nextRune(b []byte) (rune, int) {
	if len(b) == 0 {
		return 0, 0
	}
	if b[0] != '\\' {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			return 0, 0
		}
		return r, size
	}
	if len(b) < 2 {
		return 0, 0
	}
	if r, ok := shortEscapes[b[1]]; ok {
		return r, 2
	}
	r, ok := hex4(b[1:])
	if !ok {
		return 0, 0
	}
	if utf16.IsSurrogate(r) {
		return surrogatePair(b, r)
	}
	return r, 6
}

// surrogatePair decodes `\uD83D\uDE00` at the start of b, whose first half
// is hi.
func surrogatePair(b []byte, hi rune) (rune, int) {
	if len(b) < 12 || b[6] != '\\' {
		return 0, 0
	}
	if lo, ok := hex4(b[7:]); ok {
		if c := utf16.DecodeRune(hi, lo); c != utf8.RuneError {
			return c, 12
		}
	}
	return 0, 0
}

var shortEscapes = map[byte]rune{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 reads `uXXXX` at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 5 || b[0] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[1:5] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// In reports whether s holds secret raw, path- or query-escaped, or in
// another case (host names ignore case).
func In(s, secret string) bool {
	return secret != "" && (strings.Contains(s, secret) ||
		strings.Contains(s, url.PathEscape(secret)) ||
		strings.Contains(s, url.QueryEscape(secret)) ||
		strings.Contains(strings.ToLower(s), strings.ToLower(secret)))
}

// URL returns s, a URL, without a password in its user information; an
// unparsable one that may hold credentials is shown as "[unparsable URL]",
// since its parts cannot be told apart.
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "[unparsable URL]"
		}
		return s
	}
	return u.Redacted()
}

// Mark returns Redacted for a secret that is set, and "" for one that is
// not: printing a Config says whether it has a password, never which.
func Mark(s string) string {
	if s == "" {
		return ""
	}
	return Redacted
}
