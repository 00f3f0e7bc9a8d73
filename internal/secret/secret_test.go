package secret

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
	if got := string(Redact([]byte("user pw token"), 512, "pw", "token")); got != "user [redacted] [redacted]" {
		t.Errorf("Redact(two secrets) = %q, want both replaced", got)
	}
}

// TestRedactBoundedWork: a 256 KiB secret that almost matches everywhere in
// a 1 MiB body costs a bounded number of comparisons, not the cut times the
// secret's length, and what is past the bound is withheld, not shown.
func TestRedactBoundedWork(t *testing.T) {
	secret := strings.Repeat("a", 256<<10-1) + "b"
	body := []byte(strings.Repeat("a", 1<<20))
	work := maxWork
	for i := range 512 {
		if match(body[i:], secret, &work) != 0 {
			t.Fatal("match() found a secret that is not there")
		}
		if work < 0 {
			break
		}
	}
	if work >= 0 {
		t.Fatalf("512 near-matches of a 256 KiB secret stayed within the work bound (%d left); the test does not exercise it", work)
	}
	got := string(Redact(body, 512, secret))
	if !strings.HasSuffix(got, Redacted) || strings.Count(got, "a") > 512 {
		t.Errorf("Redact() past the work bound = %d bytes ending %q, want the rest withheld", len(got), got[max(0, len(got)-12):])
	}
}

// FuzzRedact: whatever the body and secret, the result is at most the limit
// and holds the secret neither raw nor as encoding/json writes it.
func FuzzRedact(f *testing.F) {
	f.Add([]byte(`{"error":"bad password p\u003cw"}`), `p<w`, 64)
	f.Add([]byte("xxxxsecret"), "secret", 7)
	f.Add([]byte(`p\`), `p"`, 512) // a quote the JSON form escapes
	f.Fuzz(func(t *testing.T, body []byte, secret string, limit int) {
		limit = min(max(limit, 0), 1024)
		if len(secret) < 2 {
			return
		}
		got := string(Redact(body, limit, secret))
		if len(got) > limit {
			t.Fatalf("Redact() = %d bytes, want at most %d", len(got), limit)
		}
		// The marker may itself spell the secret ("ac" is in "[redacted]"),
		// whole or cut at the limit: look at what stands between markers.
		for i := len(Redacted) - 1; i > 0 && len(got) == limit; i-- {
			if strings.HasSuffix(got, Redacted[:i]) {
				got = got[:len(got)-i]
				break
			}
		}
		pieces := strings.Split(got, Redacted)
		esc, _ := json.Marshal(secret)
		inJSON := string(esc[1 : len(esc)-1]) // the string's content, without its two quotes
		for _, form := range []string{secret, inJSON} {
			for _, piece := range pieces {
				if strings.Contains(piece, form) && strings.Contains(string(body), form) {
					t.Errorf("Redact(%q, %q) = %q, still holding %q", body, secret, got, form)
				}
			}
		}
	})
}

func TestIn(t *testing.T) {
	for _, tt := range []struct {
		s, secret string
		want      bool
	}{
		{"https://evil.example/p%40ss", "p@ss", true},
		{"https://evil.example/?q=p%40ss", "p@ss", true},
		{"https://PW.example/", "pw", true},
		{"https://example/", "pw", false},
		{"anything", "", false},
	} {
		if got := In(tt.s, tt.secret); got != tt.want {
			t.Errorf("In(%q, %q) = %t, want %t", tt.s, tt.secret, got, tt.want)
		}
	}
}

func TestURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"https://host/identities", "https://host/identities"},
		{"https://svc:pw@host/identities", "https://svc:xxxxx@host/identities"},
		{"https://svc:Pa55SENTINEL/w0rd@host", "[unparsable URL]"},
		{"::not a url", "::not a url"},
	} {
		if got := URL(tt.in); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
