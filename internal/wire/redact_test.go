package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	const pw = `p<w"SENT/é😀`
	tests := []struct {
		name, body string
		limit      int
		want       string
	}{
		{"raw", "echo " + pw + " end", 512, "echo [redacted] end"},
		{"json escaped as Go does", `{"password":"p\u003cw\"SENT\/é😀"}`, 512, `{"password":"[redacted]"}`},
		{"json escaped as .NET does", `{"password":"p\u003Cw\u0022SENT/\u00E9\uD83D\uDE00"}`, 512, `{"password":"[redacted]"}`},
		{"twice", pw + pw, 512, "[redacted][redacted]"},
		{"straddling the cut", strings.Repeat("x", 508) + pw, 512, strings.Repeat("x", 508) + "[red"},
		{"prefix only", "p<w", 512, "p<w"},
		{"cut", strings.Repeat("y", 600), 512, strings.Repeat("y", 512)},
		{"bad escape", `p\u00zz`, 512, `p\u00zz`},
		{"lone surrogate", `\uD83D`, 512, `\uD83D`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Redact([]byte(tt.body), tt.limit, pw)); got != tt.want {
				t.Errorf("Redact() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := string(Redact([]byte("a\xffb"), 512, "\xff")); got != "a[redacted]b" {
		t.Errorf("Redact(invalid UTF-8 secret) = %q, want it replaced", got)
	}
	if got := string(Redact([]byte("abc"), 512, "")); got != "abc" {
		t.Errorf("Redact(empty secret) = %q, want the body", got)
	}
}

// FuzzRedact: whatever the body and secret, the result is at most the limit
// and holds the secret neither raw nor as encoding/json writes it.
func FuzzRedact(f *testing.F) {
	f.Add([]byte(`{"error":"bad password p\u003cw"}`), `p<w`, 64)
	f.Add([]byte("xxxxsecret"), "secret", 7)
	f.Fuzz(func(t *testing.T, body []byte, secret string, limit int) {
		limit = min(max(limit, 0), 1024)
		if len(secret) < 2 || strings.ContainsAny(secret, "[]") {
			return // "[redacted]" itself could spell such a secret
		}
		got := string(Redact(body, limit, secret))
		if len(got) > limit {
			t.Fatalf("Redact() = %d bytes, want at most %d", len(got), limit)
		}
		esc, _ := json.Marshal(secret)
		for _, form := range []string{secret, strings.Trim(string(esc), `"`)} {
			if strings.Contains(got, form) && strings.Contains(string(body), form) {
				t.Errorf("Redact(%q, %q) = %q, still holding %q", body, secret, got, form)
			}
		}
	})
}
