package econnecttest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/testkit"
)

func TestMain(m *testing.M) {
	testkit.Main(m)
}

func TestLogin(t *testing.T) {
	t.Parallel()
	valid := `{"username":"alice","password":"` + alicePassword + `"}`
	tests := []struct {
		name, method, ctype, body string
		wantStatus                int
		want                      Stats
	}{
		{"ok", "POST", "application/json", valid, 200, Stats{Logins: 1}},
		{"ok with charset", "POST", "application/json; charset=utf-8", valid, 200, Stats{Logins: 1}},
		{"wrong password", "POST", "application/json", `{"username":"alice","password":"nope"}`, 400, Stats{Logins: 1, Refused: 1}},
		{"unknown user", "POST", "application/json", `{"username":"carol","password":"x"}`, 400, Stats{Logins: 1, Refused: 1}},
		{"empty object", "POST", "application/json", `{}`, 400, Stats{Logins: 1, Refused: 1}},
		{"text content type", "POST", "text/plain", valid, 415, Stats{Logins: 1}},
		{"no content type", "POST", "", valid, 415, Stats{Logins: 1}},
		{"malformed JSON", "POST", "application/json", `{"username":`, 400, Stats{Logins: 1}},
		{"too large", "POST", "application/json", `{"username":"` + strings.Repeat("a", 1<<20) + `"}`, 413, Stats{Logins: 1}},
		{"GET", "GET", "", "", 405, Stats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			a := mustDo(t, s, request(t.Context(), s, tt.method, "/api/v1/authenticate", "", tt.ctype, tt.body))
			if a.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", a.status, tt.wantStatus, a.body)
			}
			checkStats(t, s, tt.want)
			if a.status != http.StatusOK {
				return
			}
			if got, want := a.header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if user, err := s.VerifyToken(tokenOf(t, a)); err != nil || user != "alice" {
				t.Errorf("VerifyToken(token) = %q, %v, want alice, nil", user, err)
			}
		})
	}
}

func TestLoginAnswerBody(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	a := mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword))
	var got map[string]any
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	if len(got) != 2 || got["username"] != "alice" || got["token"] == "" {
		t.Errorf("body = %q, want exactly username alice and a token", a.body)
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		method        string
		auth          func(token string) string // the Authorization header
		before        func(*Server, *testkit.Clock)
		wantStatus    int
		wantChallenge string
		wantRefused   int
	}{
		{"ok", "GET", bearerHeader, nil, 200, "", 0},
		{"no token", "GET", func(string) string { return "" }, nil, 401, "Bearer", 1},
		{"other scheme", "GET", func(tok string) string { return "Basic " + tok }, nil, 401, "Bearer", 1},
		{"garbage token", "GET", func(string) string { return "Bearer not.a.jwt" }, nil, 401, `Bearer error="invalid_token"`, 1},
		{"lower-case scheme", "GET", func(tok string) string { return "bearer " + tok }, nil, 200, "", 0},
		{"expired", "GET", bearerHeader, func(_ *Server, c *testkit.Clock) { c.Advance(time.Hour) }, 401, `Bearer error="invalid_token"`, 1},
		{"1s before expiry", "GET", bearerHeader, func(_ *Server, c *testkit.Clock) { c.Advance(time.Hour - time.Second) }, 200, "", 0},
		{"after RotateKey", "GET", bearerHeader, func(s *Server, _ *testkit.Clock) { s.RotateKey() }, 401, `Bearer error="invalid_token"`, 1},
		{"POST", "POST", bearerHeader, nil, 405, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			clock := newFakeClock(s)
			old := login(t, s, "alice", alicePassword)
			if tt.before != nil {
				tt.before(s, clock)
			}
			req := request(t.Context(), s, tt.method, "/api/v1/renewToken", "", "", "")
			if h := tt.auth(old); h != "" {
				req.Header.Set("Authorization", h)
			}
			a := mustDo(t, s, req)
			if a.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", a.status, tt.wantStatus)
			}
			if got := a.header.Get("WWW-Authenticate"); got != tt.wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantChallenge)
			}
			wantRenewals := 1
			if tt.method != "GET" {
				wantRenewals = 0
			}
			checkStats(t, s, Stats{Logins: 1, Renewals: wantRenewals, Refused: tt.wantRefused})
			if a.status == http.StatusOK && tokenOf(t, a) == old {
				t.Errorf("renewal returned the old token, want a new one")
			}
		})
	}
}

func bearerHeader(token string) string { return "Bearer " + token }

func TestRenewedTokenHasFreshTimes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	clock := newFakeClock(s)
	old := login(t, s, "alice", alicePassword)
	clock.Advance(10 * time.Minute)
	renewed := tokenOf(t, mustDo(t, s, renewRequest(t.Context(), s, old)))
	iat := claimsOf(t, renewed)["iat"].(float64)
	if want := clock.Wall().Unix(); int64(iat) != want {
		t.Errorf("renewed iat = %v, want %d", iat, want)
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, prefix, want, elsewhere string
	}{
		{"cloud", "/identities", "/identities", "/api/v1/authenticate"},
		{"on-premise", "", "", "/identities/api/v1/authenticate"},
		{"slashes cleaned", "identities/", "/identities", "/api/v1/authenticate"},
		{"root", "/", "", "/identities/api/v1/authenticate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewUnstartedServer()
			t.Cleanup(s.Close)
			addUsers(s)
			s.Prefix = tt.prefix
			s.Start()
			if s.Prefix != tt.want || !strings.HasSuffix(s.URL, "127.0.0.1"+port(s)+tt.want) {
				t.Fatalf("Prefix, URL = %q, %q, want prefix %q", s.Prefix, s.URL, tt.want)
			}
			login(t, s, "alice", alicePassword)
			req := loginRequest(t.Context(), s, "alice", alicePassword)
			req.URL.Path = tt.elsewhere
			if a := mustDo(t, s, req); a.status != http.StatusNotFound {
				t.Errorf("POST %s: status = %d, want 404", tt.elsewhere, a.status)
			}
		})
	}
}

// port returns ":port" of the server.
func port(s *Server) string {
	return s.srv.URL[strings.LastIndexByte(s.srv.URL, ':'):]
}

func TestPublish(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, user, ctype, body string
		badToken                        bool
		wantStatus, wantRefused         int
	}{
		{"ok", "POST", "alice", "application/json", publishBody, false, 200, 0},
		{"no token", "POST", "", "application/json", publishBody, false, 401, 1},
		{"bad token", "POST", "alice", "application/json", publishBody, true, 401, 1},
		{"role missing", "POST", "bob", "application/json", publishBody, false, 403, 0},
		{"expanded missing", "POST", "alice", "application/json", strings.Replace(publishBody, `"aGVsbG8="`, `""`, 1), false, 400, 0},
		{"expanded not base64", "POST", "alice", "application/json", strings.Replace(publishBody, `"aGVsbG8="`, `"!!"`, 1), false, 400, 0},
		{"detectorName missing", "POST", "alice", "application/json", strings.Replace(publishBody, `"cam-7"`, `""`, 1), false, 400, 0},
		{"malformed JSON", "POST", "alice", "application/json", `{"expanded":`, false, 400, 0},
		{"text content type", "POST", "alice", "text/plain", publishBody, false, 415, 0},
		{"GET", "GET", "alice", "", "", false, 405, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			token := ""
			if tt.user != "" {
				token = login(t, s, tt.user, map[string]string{"alice": alicePassword, "bob": bobPassword}[tt.user])
			}
			if tt.badToken {
				token += "x"
			}
			a := mustDo(t, s, request(t.Context(), s, tt.method, "/api/v1/faceEdge/publish", token, tt.ctype, tt.body))
			if a.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", a.status, tt.wantStatus, a.body)
			}
			if a.status == http.StatusOK && a.body != "" {
				t.Errorf("body = %q, want empty", a.body)
			}
			want := Stats{Logins: 1, APICalls: 1, Refused: tt.wantRefused}
			if tt.user == "" {
				want.Logins = 0
			}
			if tt.method != "POST" {
				want.APICalls = 0
			}
			checkStats(t, s, want)
		})
	}
}

func TestHandle(t *testing.T) {
	t.Parallel()
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s id=%s", r.Method, r.URL.Path, r.PathValue("id"))
	})
	tests := []struct {
		name, prefix, pattern, method, path string
		token                               bool
		wantStatus                          int
		wantBody                            string
	}{
		{"no method", "/identities", "/api/v1/echo", "PUT", "/api/v1/echo", true, 200, "PUT /identities/api/v1/echo id="},
		{"method", "/identities", "POST /api/v1/echo", "POST", "/api/v1/echo", true, 200, "POST /identities/api/v1/echo id="},
		{"wildcard", "/identities", "GET /api/v1/people/{id}", "GET", "/api/v1/people/42", true, 200, "GET /identities/api/v1/people/42 id=42"},
		{"no prefix", "", "GET /api/v1/echo", "GET", "/api/v1/echo", true, 200, "GET /api/v1/echo id="},
		{"wrong method", "/identities", "POST /api/v1/echo", "GET", "/api/v1/echo", true, 405, ""},
		{"no token", "/identities", "/api/v1/echo", "GET", "/api/v1/echo", false, 401, ""},
	}
	for _, tt := range tests {
		for _, when := range []string{"before Start", "after Start"} {
			t.Run(tt.name+" "+when, func(t *testing.T) {
				s := NewUnstartedServer()
				t.Cleanup(s.Close)
				addUsers(s)
				s.Prefix = tt.prefix
				if when == "before Start" {
					s.Handle(tt.pattern, echo)
				}
				s.Start()
				if when == "after Start" {
					s.Handle(tt.pattern, echo)
				}
				token := ""
				if tt.token {
					token = login(t, s, "bob", bobPassword)
				}
				a := mustDo(t, s, request(t.Context(), s, tt.method, tt.path, token, "", ""))
				if a.status != tt.wantStatus || tt.wantBody != "" && a.body != tt.wantBody {
					t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, a.status, a.body, tt.wantStatus, tt.wantBody)
				}
			})
		}
	}
}

func TestHandleBadPatternPanicsAtOnce(t *testing.T) {
	t.Parallel()
	s := NewUnstartedServer()
	t.Cleanup(s.Close)
	defer func() {
		if recover() == nil {
			t.Errorf("Handle(%q) did not panic", "no-slash")
		}
	}()
	s.Handle("no-slash", http.NotFoundHandler())
}

func TestWithPrefix(t *testing.T) {
	t.Parallel()
	tests := []struct{ pattern, prefix, want string }{
		{"/a", "/identities", "/identities/a"},
		{"GET /a/{id}", "/identities", "GET /identities/a/{id}"},
		{"POST\t/a", "/p", "POST\t/p/a"},
		{"example.com/a", "/p", "example.com/p/a"},
		{"GET example.com/", "/p", "GET example.com/p/"},
		{"/a", "", "/a"},
		{"bad", "/p", "bad"},
	}
	for _, tt := range tests {
		if got := withPrefix(tt.pattern, tt.prefix); got != tt.want {
			t.Errorf("withPrefix(%q, %q) = %q, want %q", tt.pattern, tt.prefix, got, tt.want)
		}
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	s := NewTLSServer()
	t.Cleanup(s.Close)
	addUsers(s)
	if !strings.HasPrefix(s.URL, "https://127.0.0.1:") || !strings.HasSuffix(s.URL, "/identities") {
		t.Errorf("URL = %q, want https://127.0.0.1:…/identities", s.URL)
	}
	login(t, s, "alice", alicePassword) // through s.Client()

	if s.Certificate() == nil {
		t.Fatal("Certificate() = nil, want the server's certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.Certificate())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Do(loginRequest(t.Context(), s, "alice", alicePassword))
	if err != nil {
		t.Fatalf("login with a pool of Certificate(): %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("login with a pool of Certificate(): status = %d, want 200", resp.StatusCode)
	}
}

func TestPlainServerHasNoCertificate(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	if c := s.Certificate(); c != nil {
		t.Errorf("Certificate() = %v, want nil", c.Subject)
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q, want http://127.0.0.1:…", s.URL)
	}
}

func TestStatsConcurrentLogins(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	const n = 64
	statuses := make([]int, n)
	errs := make([]error, n)
	testkit.Parallel(n, func(i int) {
		var a answer
		a, errs[i] = do(s, loginRequest(t.Context(), s, "alice", alicePassword))
		statuses[i] = a.status
	})
	for i := range n {
		if errs[i] != nil || statuses[i] != http.StatusOK {
			t.Errorf("login %d = %d, %v, want 200", i, statuses[i], errs[i])
		}
	}
	if got := s.Stats().Logins; got != n {
		t.Errorf("Stats().Logins = %d, want %d", got, n)
	}
}

func TestStatsMixed(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := t.Context()
	token := login(t, s, "alice", alicePassword)
	mustDo(t, s, loginRequest(ctx, s, "alice", "wrong"))
	s.FailLogin(1, Fault{Status: http.StatusUnauthorized}) // injected: not Refused
	mustDo(t, s, loginRequest(ctx, s, "alice", alicePassword))
	mustDo(t, s, renewRequest(ctx, s, token))
	mustDo(t, s, renewRequest(ctx, s, "bogus"))
	mustDo(t, s, publishRequest(ctx, s, token, publishBody))
	mustDo(t, s, publishRequest(ctx, s, "", publishBody))
	mustDo(t, s, publishRequest(ctx, s, login(t, s, "bob", bobPassword), publishBody)) // 403: not Refused
	checkStats(t, s, Stats{Logins: 4, Renewals: 2, Refused: 3, APICalls: 3})
}

func TestSecretsNeverEchoed(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx := t.Context()
	token := login(t, s, "alice", alicePassword)
	s.RotateKey()
	answers := map[string]answer{
		"wrong password":  mustDo(t, s, loginRequest(ctx, s, "alice", alicePassword+"x")),
		"renew refused":   mustDo(t, s, renewRequest(ctx, s, token)),
		"publish refused": mustDo(t, s, publishRequest(ctx, s, token, publishBody)),
		"publish bad body": mustDo(t, s, publishRequest(ctx, s, login(t, s, "alice", alicePassword),
			`{"expanded":"`+alicePassword+`"}`)),
	}
	for name, a := range answers {
		for _, secret := range []string{alicePassword, token, "SENTINEL"} {
			if strings.Contains(a.body, secret) || strings.Contains(fmt.Sprint(a.header), secret) {
				t.Errorf("%s: answer %d %v %q contains a secret", name, a.status, a.header, a.body)
			}
		}
	}
}
