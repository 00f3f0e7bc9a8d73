package wire

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

const redacted = "[redacted]"

// Redact returns at most limit bytes of body with every occurrence of
// secret replaced, whether written raw or JSON-escaped in any way
// (`\u003c`, `\u003C`, `\"`, surrogate pairs…), as a server might echo it.
// It redacts before it cuts, so no part of a secret straddling the cut
// survives.
func Redact(body []byte, limit int, secret string) []byte {
	out := make([]byte, 0, min(len(body), limit))
	for i := 0; i < len(body) && len(out) < limit; {
		if n := match(body[i:], secret); n > 0 {
			out = append(out, redacted...)
			i += n
			continue
		}
		out = append(out, body[i])
		i++
	}
	return out[:min(len(out), limit)]
}

// match returns the length of the prefix of b that spells secret, each of
// its runes raw or JSON-escaped, or 0.
func match(b []byte, secret string) int {
	if secret == "" {
		return 0
	}
	if bytes.HasPrefix(b, []byte(secret)) {
		return len(secret)
	}
	if !utf8.ValidString(secret) {
		return 0 // only the raw bytes can spell it
	}
	n := 0
	for _, want := range secret {
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
		if lo, ok := hex4(b[6:]); ok && len(b) >= 12 && b[6] == '\\' {
			if c := utf16.DecodeRune(r, lo); c != utf8.RuneError {
				return c, 12
			}
		}
		return 0, 0
	}
	return r, 6
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
