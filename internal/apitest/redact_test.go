package apitest_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

// oddPassword has characters that JSON encoders escape.
const oddPassword = `p<w"SENTINEL>7f`

// jsonEscaped is s as json.Marshal writes it inside a JSON string.
func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// dotnetEscaped is oddPassword as .NET's encoder writes it: upper-case hex,
// and \u0022 for the quote.
const dotnetEscaped = `p\u003Cw\u0022SENTINEL\u003E7f`

// fragments returns every part of each spelling longer than 3 bytes.
func fragments(spellings ...string) []string {
	var parts []string
	for _, s := range spellings {
		for i := 0; i+4 <= len(s); i++ {
			parts = append(parts, s[i:i+4])
		}
	}
	return parts
}

// TestRefusalBodyRedacted: a login refusal whose body echoes the password,
// raw or JSON-escaped, across the 512-byte cut or not, keeps at most 512
// bytes of body and no part of the password longer than 3 characters; the
// request it keeps has no body to replay.
func TestRefusalBodyRedacted(t *testing.T) {
	pad := strings.Repeat("x", 508)
	tests := []struct {
		name, password, body string
	}{
		{"raw, across byte 512", testPassword, pad + testPassword},
		{"raw, across byte 512 with more after", testPassword, pad + testPassword + strings.Repeat("y", 100)},
		{"as json.Marshal escapes it", oddPassword, `{"error":"no user with password ` + jsonEscaped(oddPassword) + `"}`},
		{"as .NET escapes it", oddPassword, `{"error":"no user with password ` + dotnetEscaped + `"}`},
		{"as json.Marshal escapes it, across byte 512", oddPassword, pad[:500] + jsonEscaped(oddPassword)},
		{"as .NET escapes it, across byte 512", oddPassword, pad[:500] + dotnetEscaped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.AddUser(testUser, tt.password)
			f.cfg.Password = tt.password
			f.srv.FailLogin(1, econnecttest.Fault{Status: http.StatusBadGateway, Body: tt.body})
			_, err := f.cfg.Token(f.ctx)
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) {
				t.Fatalf("Token() error = %v, want an *oauth2.RetrieveError", err)
			}
			if len(re.Body) > 512 {
				t.Errorf("RetrieveError.Body holds %d bytes, want at most 512", len(re.Body))
			}
			for _, part := range fragments(tt.password, jsonEscaped(tt.password), dotnetEscaped) {
				if strings.Contains(string(re.Body), part) || strings.Contains(err.Error(), part) {
					t.Errorf("RetrieveError.Body or the error holds %q, a part of the password; body ends %q", part, re.Body[max(0, len(re.Body)-40):])
					break
				}
			}
			if req := re.Response.Request; req == nil || req.Body != nil || req.GetBody != nil {
				t.Errorf("RetrieveError.Response.Request has a Body or a GetBody that replays the password, want neither")
			}
		})
	}
}

// TestRenewalRefusalHoldsNoBearer: the request a refused renewal keeps in
// its RetrieveError has no Authorization header, and an echoed token is
// redacted from the body.
func TestRenewalRefusalHoldsNoBearer(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t)
	f.srv.FailRenew(1, econnecttest.Fault{Status: http.StatusUnauthorized, Body: "token " + tok.AccessToken + " refused"})
	_, err := f.cfg.Renew(f.ctx, tok)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Renew() error = %v, want a RetrieveError with status 401", err)
	}
	if req := re.Response.Request; req == nil || req.Header.Get("Authorization") != "" {
		t.Errorf("RetrieveError.Response.Request carries Authorization (or is nil), want a request without it")
	}
	if got, want := string(re.Body), "token [redacted] refused"; got != want {
		t.Errorf("RetrieveError.Body = %.40q, want %q", got, want)
	}
}

// TestRedirectLocationRedacted: a login redirected to a URL that holds the
// password, in any part and any spelling, is an error that names the host
// it pointed to without the password.
func TestRedirectLocationRedacted(t *testing.T) {
	other, requests, _ := otherOrigin(t)
	host := strings.TrimPrefix(other.URL, "http://")
	tests := []struct {
		name, password, location string
	}{
		{"in the path", testPassword, other.URL + "/login/" + testPassword + "/retry"},
		{"path-escaped in the path", oddPassword, other.URL + "/login/" + url.PathEscape(oddPassword)},
		{"query-escaped in the path", oddPassword, other.URL + "/login/" + url.QueryEscape(oddPassword)},
		{"in the query", testPassword, other.URL + "/login?password=" + testPassword},
		{"in the fragment", testPassword, other.URL + "/login#" + testPassword},
		{"as user information", testPassword, "http://" + testUser + ":" + testPassword + "@" + host + "/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.AddUser(testUser, tt.password)
			f.cfg.Password = tt.password
			f.srv.FailLogin(1, econnecttest.Fault{Status: http.StatusTemporaryRedirect, Header: http.Header{"Location": {tt.location}}})
			_, err := f.cfg.Token(f.ctx)
			if err == nil || !strings.Contains(err.Error(), host) {
				t.Fatalf("Token() error = %v, want one naming %s", err, host)
			}
			if strings.Contains(err.Error(), "SENTINEL") {
				t.Errorf("Token() error = %q, holds the password", err)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
}
