package tokenstore

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/jwtclaims"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestKey: one key for every spelling of a server, another for another
// server, user, path or plain-http permission; printable, without path
// separators, naming neither host nor user.
func TestKey(t *testing.T) {
	key := func(raw, user string, allowHTTP bool) string { return Key(mustURL(t, raw), user, allowHTTP) }
	base := key("https://Cloud.Example/identities", "camera-1", false)
	for _, same := range []string{
		key("https://cloud.example/identities/", "camera-1", false),
		key("HTTPS://cloud.example:443/identities//", "camera-1", false),
		key("https://cloud.example/identities", "camera-1", true), // the permission means nothing for https
	} {
		if same != base {
			t.Errorf("Key() = %s for another spelling of the server, want %s", same, base)
		}
	}
	seen := map[string]string{base: "the first"}
	for name, other := range map[string]string{
		"user":       key("https://cloud.example/identities", "camera-2", false),
		"host":       key("https://other.example/identities", "camera-1", false),
		"port":       key("https://cloud.example:5009/identities", "camera-1", false),
		"path":       key("https://cloud.example/", "camera-1", false),
		"scheme":     key("http://cloud.example/identities", "camera-1", false),
		"allow-http": key("http://cloud.example/identities", "camera-1", true),
	} {
		if was, ok := seen[other]; ok {
			t.Errorf("Key() for another %s = the key of %s", name, was)
		}
		seen[other] = name
	}
	if !strings.HasPrefix(base, "econnect-v1-") || strings.ContainsAny(base, `/\. :`) ||
		strings.Contains(strings.ToLower(base), "cloud") || strings.Contains(base, "camera") {
		t.Errorf("Key() = %q, want econnect-v1- and hex, naming neither host nor user", base)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	tok := jwt(`{"unique_name":"camera-1","iat":1796212800,"exp":1796216400}`)
	in := Entry{Token: tok, Username: "camera-1", Expiry: now.Add(time.Hour), Lifetime: time.Hour - time.Second, SavedAt: now}
	b, err := Encode("k", in)
	if err != nil {
		t.Fatalf("Encode() error = %v", err)
	}
	var fields map[string]any
	json.Unmarshal(b, &fields)
	for _, f := range []string{"version", "key", "token", "username", "expiry", "lifetime", "saved_at"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("Encode() = %s, want a %q field", b, f)
		}
	}
	out, err := Decode("k", b, now)
	if err != nil {
		t.Fatalf("Decode() error = %v", err)
	}
	if out.Token != in.Token || out.Username != in.Username || !out.Expiry.Equal(in.Expiry) ||
		out.Lifetime != in.Lifetime || !out.SavedAt.Equal(in.SavedAt) || out.Claims.Exp.Unix() != 1796216400 {
		t.Errorf("Decode(Encode(e)) = %+v, want %+v", out, in)
	}
	never := Entry{Token: tok, SavedAt: now}
	if b, _ := Encode("k", never); true {
		if e, err := Decode("k", b, now); err != nil || !e.Expiry.IsZero() || e.Lifetime != 0 {
			t.Errorf("Decode() of a token that never expires = %+v, %v", e, err)
		}
	}
	if _, err := Encode("k", Entry{Token: tok, Username: strings.Repeat("u", MaxValue), SavedAt: now}); err == nil {
		t.Error("Encode() of an entry over 64 KiB: error = nil")
	}
}

// TestDecodeRefuses: whatever is not a valid entry for the key is an
// error, which never quotes the value.
func TestDecodeRefuses(t *testing.T) {
	tok := jwt(`{"iat":1796212800,"exp":1796216400}`)
	good := func(mod func(*stored)) []byte {
		s := stored{Version: Version, Key: "k", Token: tok, Expiry: now.Add(time.Hour), Lifetime: "1h0m0s", SavedAt: now}
		mod(&s)
		b, _ := json.Marshal(s)
		return b
	}
	tests := map[string][]byte{
		"empty":               {},
		"garbage":             []byte("\x00\xffnot json"),
		"truncated":           good(func(*stored) {})[:40],
		"another key":         good(func(s *stored) { s.Key = "other" }),
		"another version":     good(func(s *stored) { s.Version = 2 }),
		"not a JWT":           good(func(s *stored) { s.Token = "not-a-jwt" }),
		"spaces":              good(func(s *stored) { s.Token = " " + tok + "\n" }),
		"future":              good(func(s *stored) { s.SavedAt = now.Add(time.Minute + time.Second) }),
		"no saved_at":         good(func(s *stored) { s.SavedAt = time.Time{} }),
		"lifetime, no expiry": good(func(s *stored) { s.Expiry = time.Time{} }),
		"expiry, no lifetime": good(func(s *stored) { s.Lifetime = "" }),
		"negative lifetime":   good(func(s *stored) { s.Lifetime = "-1h" }),
		"bad lifetime":        good(func(s *stored) { s.Lifetime = "forever" }),
		"oversized":           []byte(`{"token":"` + strings.Repeat("a", MaxValue) + `"}`),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode("k", b, now)
			if err == nil {
				t.Fatalf("Decode() error = nil, want a refusal")
			}
			if strings.Contains(err.Error(), tok) {
				t.Errorf("Decode() error %q quotes the token", err)
			}
		})
	}
	if _, err := Decode("k", good(func(s *stored) { s.SavedAt = now.Add(59 * time.Second) }), now); err != nil {
		t.Errorf("Decode() of a value saved 59 s in the future: error = %v, want it taken (clocks a little apart)", err)
	}
}

func TestNewer(t *testing.T) {
	at := func(exp, iat int64) jwtclaims.Claims {
		var c jwtclaims.Claims
		if exp > 0 {
			c.Exp = time.Unix(exp, 0)
		}
		if iat > 0 {
			c.Iat = time.Unix(iat, 0)
		}
		return c
	}
	tests := []struct {
		name string
		a, b jwtclaims.Claims
		want bool
	}{
		{"later exp", at(200, 100), at(100, 100), true},
		{"earlier exp", at(100, 100), at(200, 100), false},
		{"same exp, later iat", at(200, 150), at(200, 100), true},
		{"same claims", at(200, 100), at(200, 100), false},
		{"no exp is latest", at(0, 100), at(200, 100), true},
		{"against no exp", at(200, 100), at(0, 100), false},
	}
	for _, tt := range tests {
		if got := Newer(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: Newer() = %t, want %t", tt.name, got, tt.want)
		}
	}
}

// FuzzDecode: whatever a store holds, Decode returns an error or a valid
// entry, never panics, and its errors never quote what the store held.
func FuzzDecode(f *testing.F) {
	good, _ := Encode("k", Entry{Token: jwt(`{"iat":1796212800,"exp":1796216400}`), Expiry: now.Add(time.Hour),
		Lifetime: time.Hour, SavedAt: now})
	f.Add(good)
	f.Add([]byte(`{"version":1,"key":"k","token":"a.b.c","saved_at":"2026-12-01T12:00:00Z"}`))
	f.Add([]byte(`{"version":1,"key":"k","lifetime":"-1s"}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode("k", b, now)
		if err != nil {
			var s stored
			if json.Unmarshal(b, &s) == nil && len(s.Token) > 8 && strings.Contains(err.Error(), s.Token) {
				t.Errorf("Decode() error %q quotes the stored token", err)
			}
			return
		}
		if _, err := jwtclaims.Parse(e.Token); err != nil || e.Expiry.IsZero() != (e.Lifetime == 0) || e.Lifetime < 0 {
			t.Errorf("Decode(%q) = %+v, want a JWT and an expiry and lifetime that agree", b, e)
		}
	})
}

// TestAdopts: the rule a source takes a stored token by, row by row.
func TestAdopts(t *testing.T) {
	tok := func(exp, iat int64) string { return jwt(fmt.Sprintf(`{"iat":%d,"exp":%d}`, iat, exp)) }
	entry := func(jwt string) Entry {
		e, err := Decode("k", mustEncode(t, jwt), now)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	older, held, newer := tok(100, 50), tok(200, 100), tok(300, 200)
	sameClaims := jwt(`{"iat":100,"exp":200,"jti":"another"}`)
	tests := []struct {
		name  string
		e     string
		h     Held
		adopt bool
	}{
		{"nothing in hand", older, Held{}, true},
		{"newer than the token in hand", newer, Held{Token: held}, true},
		{"older than the token in hand", older, Held{Token: held}, false},
		{"the token in hand itself", held, Held{Token: held}, false},
		{"as new as the token in hand", sameClaims, Held{Token: held}, false},
		{"the refused token", held, Held{Token: held, Refused: held}, false},
		{"another, as new, after a refusal", sameClaims, Held{Token: held, Refused: held}, true},
		{"an older one after a refusal", older, Held{Token: held, Refused: held}, false},
		{"after a refusal, nothing in hand", newer, Held{Refused: held}, true},
	}
	for _, tt := range tests {
		if got := Adopts(entry(tt.e), tt.h); got != tt.adopt {
			t.Errorf("%s: Adopts() = %t, want %t", tt.name, got, tt.adopt)
		}
	}
}

func mustEncode(t *testing.T, jwt string) []byte {
	t.Helper()
	b, err := Encode("k", Entry{Token: jwt, Expiry: now.Add(time.Hour), Lifetime: time.Hour, SavedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
