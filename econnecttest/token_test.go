package econnecttest

import (
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestTokenFormat(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	newFakeClock(s)
	token := login(t, s, "alice", alicePassword)
	if got, want := part(t, token, 0), `{"alg":"HS256","typ":"JWT"}`; got != want {
		t.Errorf("header = %s, want %s", got, want)
	}
	payload := part(t, token, 1)
	if want := `{"unique_name":"alice","role":["Face Publishing","Face Recognize"],`; !strings.HasPrefix(payload, want) {
		t.Errorf("payload = %s, want it to start with %s", payload, want)
	}
	c := claimsOf(t, token)
	iat := clockStart.Unix()
	for name, want := range map[string]int64{"nbf": iat, "iat": iat, "exp": iat + 3600} {
		if got, ok := c[name].(float64); !ok || int64(got) != want {
			t.Errorf("claim %s = %v, want %d", name, c[name], want)
		}
	}
	if jti, _ := c["jti"].(string); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(jti) {
		t.Errorf("claim jti = %q, want 32 hex digits", jti)
	}
}

func TestTokenSingleRoleIsString(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	payload := part(t, login(t, s, "bob", bobPassword), 1)
	if want := `"role":"Face Recognize"`; !strings.Contains(payload, want) {
		t.Errorf("payload = %s, want it to contain %s", payload, want)
	}
}

func TestTokensUnique(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	newFakeClock(s) // both tokens in the same second
	a, b := login(t, s, "alice", alicePassword), login(t, s, "alice", alicePassword)
	if a == b {
		t.Errorf("two logins in the same second returned the same token")
	}
}

func TestOmitClaims(t *testing.T) {
	t.Parallel()
	all := []string{"unique_name", "role", "nbf", "iat", "exp", "jti"}
	tests := []struct {
		name       string
		calls      [][]string // successive OmitClaims calls
		wantAbsent []string
	}{
		{"none", nil, nil},
		{"iat", [][]string{{"iat"}}, []string{"iat"}},
		{"exp and nbf", [][]string{{"exp", "nbf"}}, []string{"exp", "nbf"}},
		{"role and jti", [][]string{{"role", "jti"}}, []string{"role", "jti"}},
		{"unknown name", [][]string{{"foo"}}, nil},
		{"later call replaces", [][]string{{"iat"}, {"exp"}}, []string{"exp"}},
		{"empty call restores", [][]string{{"iat", "exp"}, {}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			for _, names := range tt.calls {
				s.OmitClaims(names...)
			}
			c := claimsOf(t, login(t, s, "alice", alicePassword))
			for _, name := range all {
				_, got := c[name]
				if want := !slices.Contains(tt.wantAbsent, name); got != want {
					t.Errorf("claim %s present = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestTokenWithoutExpNeverExpires(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	clock := newFakeClock(s)
	s.OmitClaims("exp")
	token := login(t, s, "alice", alicePassword)
	clock.Advance(10 * 365 * 24 * time.Hour)
	if _, err := s.VerifyToken(token); err != nil {
		t.Errorf("VerifyToken(token without exp) error = %v, want nil", err)
	}
	tokenOf(t, mustDo(t, s, renewRequest(t.Context(), s, token)))
}

func TestSetLifetime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		set  bool // call SetLifetime(d)
		d    time.Duration
		want int64 // exp - iat
	}{
		{"default", false, 0, 3600},
		{"2 minutes", true, 2 * time.Minute, 120},
		{"rounded down", true, 90*time.Second + 999*time.Millisecond, 90},
		{"below 1 s", true, 750 * time.Millisecond, 1},
		{"zero", true, 0, 1},
		{"negative", true, -time.Hour, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			if tt.set {
				s.SetLifetime(tt.d)
			}
			c := claimsOf(t, login(t, s, "alice", alicePassword))
			if got := int64(c["exp"].(float64) - c["iat"].(float64)); got != tt.want {
				t.Errorf("exp - iat = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSetClockOffset(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		offset time.Duration
	}{
		{"none", 0},
		{"ahead", 10 * time.Minute},
		{"behind", -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			newFakeClock(s)
			s.SetClockOffset(tt.offset)
			c := claimsOf(t, login(t, s, "alice", alicePassword))
			if got, want := int64(c["iat"].(float64)), clockStart.Add(tt.offset).Unix(); got != want {
				t.Errorf("iat = %d, want %d", got, want)
			}
		})
	}
}

func TestVerifyTokenTimes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	clock := newFakeClock(s)
	issued := clockStart.Truncate(time.Second) // iat and nbf
	s.SetLifetime(time.Minute)
	token := login(t, s, "alice", alicePassword)
	exp := issued.Add(time.Minute)
	tests := []struct {
		name    string
		now     time.Time
		wantErr error
	}{
		{"at nbf", issued, nil},
		{"1ns before nbf", issued.Add(-1), errNotValidYet},
		{"1ns before exp", exp.Add(-1), nil},
		{"at exp", exp, errExpired},
		{"1ns after exp", exp.Add(1), errExpired},
	}
	for _, tt := range tests {
		clock.StepWall(tt.now.Sub(clock.Wall())) // back and forth, as the rows need
		user, err := s.VerifyToken(token)
		if !errors.Is(err, tt.wantErr) || err == nil && user != "alice" {
			t.Errorf("%s: VerifyToken() = %q, %v, want alice, %v", tt.name, user, err, tt.wantErr)
		}
	}
}

func TestVerifyTokenErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	other := newServer(t) // same users, another key
	good := login(t, s, "alice", alicePassword)
	header, payload, _ := strings.Cut(good, ".")
	payload, sig, _ := strings.Cut(payload, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	s.OmitClaims("unique_name")
	nameless := login(t, s, "alice", alicePassword)
	s.OmitClaims()
	tests := []struct {
		name, token string
		wantErr     error
	}{
		{"empty", "", errMalformed},
		{"garbage", "not-a-jwt", errMalformed},
		{"bad payload", header + ".e30x." + sig, errMalformed},
		{"other key", login(t, other, "alice", alicePassword), errSignature},
		{"alg none", none + "." + payload + ".", errSignature},
		{"wrong signature", header + "." + payload + "." + strings.Repeat("A", len(sig)), errSignature},
		{"no unique_name", nameless, errUnknownUser},
	}
	for _, tt := range tests {
		user, err := s.VerifyToken(tt.token)
		if !errors.Is(err, tt.wantErr) || user != "" {
			t.Errorf("%s: VerifyToken() = %q, %v, want \"\", %v", tt.name, user, err, tt.wantErr)
		}
		if err != nil && tt.token != "" && (strings.Contains(err.Error(), tt.token) || strings.Contains(err.Error(), payload)) {
			t.Errorf("%s: VerifyToken() error %q contains the token", tt.name, err)
		}
	}
}

func TestRotateKey(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := t.Context()
	old := login(t, s, "alice", alicePassword)
	s.RotateKey()
	if _, err := s.VerifyToken(old); !errors.Is(err, errSignature) {
		t.Errorf("VerifyToken(old token) error = %v, want %v", err, errSignature)
	}
	if a := mustDo(t, s, renewRequest(ctx, s, old)); a.status != http.StatusUnauthorized {
		t.Errorf("renew with old token: status = %d, want 401", a.status)
	}
	if a := mustDo(t, s, publishRequest(ctx, s, old, publishBody)); a.status != http.StatusUnauthorized {
		t.Errorf("publish with old token: status = %d, want 401", a.status)
	}
	fresh := login(t, s, "alice", alicePassword)
	if a := mustDo(t, s, publishRequest(ctx, s, fresh, publishBody)); a.status != http.StatusOK {
		t.Errorf("publish with new token: status = %d, want 200", a.status)
	}
}

func TestAddUserReplaces(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.AddUser("alice", "new-pw", roleRecognize)
	if a := mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword)); a.status != http.StatusBadRequest {
		t.Errorf("login with old password: status = %d, want 400", a.status)
	}
	payload := part(t, login(t, s, "alice", "new-pw"), 1)
	if want := `"role":"Face Recognize"`; !strings.Contains(payload, want) {
		t.Errorf("payload = %s, want it to contain %s", payload, want)
	}
}
