package econnecttest

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Server is an eConnect Identities server running on loopback, for tests and
// examples. It is safe for concurrent use by multiple goroutines.
type Server struct {
	// URL is the base URL of the server including Prefix, of the form
	// http://127.0.0.1:41234/identities: what econnect.Config.BaseURL takes.
	// Start and StartTLS set it.
	URL string

	// Prefix is the path under which every endpoint lives. New servers have
	// "/identities", the eConnect Cloud layout. Set it to "" between
	// NewUnstartedServer and Start for the on-premise layout, which has no
	// prefix. Start adds a missing leading slash and drops a trailing one.
	Prefix string

	// EnableHTTP2, set between NewUnstartedServer and StartTLS, makes the
	// server speak HTTP/2, and [Server.Client] with it, as
	// httptest.Server's field of the same name does. Start ignores it:
	// over plain HTTP the server speaks HTTP/1.1 only.
	EnableHTTP2 bool

	srv       *httptest.Server
	mux       *http.ServeMux
	closed    chan struct{} // closed by Close, so that held answers give up
	closeOnce sync.Once

	// mu guards the fields below, the settings and counters of the server.
	mu          sync.Mutex
	started     bool
	prefix      string  // Prefix as Start cleaned it
	pending     []route // Handle calls made before Start
	users       map[string]user
	key         []byte
	lifetime    time.Duration
	clock       func() time.Time
	offset      time.Duration
	omit        []string
	latency     time.Duration
	loginFaults faults
	renewFaults faults
	stats       Stats
	changed     signal // broadcast by every change of stats, for WaitFor
}

// user is an account of the server.
type user struct {
	password string
	roles    []string
}

// route is a handler given to Handle before Start.
type route struct {
	pattern string
	h       http.Handler
}

// NewServer starts and returns a new Server on 127.0.0.1 over plain HTTP,
// with Prefix "/identities". The caller should call Close when finished, to
// shut it down.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewTLSServer starts and returns a new Server using TLS, with a self-signed
// certificate that [Server.Client] trusts. The caller should call Close when
// finished, to shut it down.
func NewTLSServer() *Server {
	s := NewUnstartedServer()
	s.StartTLS()
	return s
}

// NewUnstartedServer returns a new Server but doesn't start it. After
// changing Prefix or adding users and handlers, the caller should call Start
// or StartTLS, and Close when finished.
func NewUnstartedServer() *Server {
	s := &Server{
		Prefix:   "/identities",
		mux:      http.NewServeMux(),
		closed:   make(chan struct{}),
		users:    make(map[string]user),
		key:      newKey(),
		lifetime: time.Hour,
		clock:    time.Now,
	}
	s.srv = httptest.NewUnstartedServer(s.mux)
	// Beneath TLS, if any, so that a frozen connection stops the bytes.
	s.srv.Listener = freezeListener{s.srv.Listener}
	return s
}

// Start starts a server from NewUnstartedServer over plain HTTP. It panics
// if the server has already been started.
func (s *Server) Start() {
	s.start(s.srv.Start)
}

// StartTLS starts TLS on a server from NewUnstartedServer. It panics if the
// server has already been started.
func (s *Server) StartTLS() {
	s.start(s.srv.StartTLS)
}

func (s *Server) start(serve func()) {
	s.setup()
	s.srv.EnableHTTP2 = s.EnableHTTP2
	s.hookConns(s.srv.Config)
	serve()
	s.URL = s.srv.URL + s.prefix
}

// setup fixes the prefix and registers the endpoints under it.
func (s *Server) setup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		panic("econnecttest: Server already started")
	}
	s.started = true
	s.prefix = cleanPrefix(s.Prefix)
	s.Prefix = s.prefix
	s.routes()
}

// routes registers the endpoints under the prefix. s.mu must be held.
func (s *Server) routes() {
	p := s.prefix
	s.mux.HandleFunc("POST "+p+"/api/v1/authenticate", s.auth(&s.loginFaults, &s.stats.Logins, s.login))
	s.mux.HandleFunc("GET "+p+"/api/v1/renewToken", s.auth(&s.renewFaults, &s.stats.Renewals, s.renew))
	s.mux.Handle("POST "+p+"/api/v1/faceEdge/publish",
		s.protect(rolePublishing, http.HandlerFunc(publish)))
	for _, r := range s.pending {
		s.mux.Handle(withPrefix(r.pattern, p), s.protect("", r.h))
	}
	s.pending = nil
}

// Close shuts down the server and blocks until all outstanding requests on
// it have completed. Answers held by a latency or a fault give up at once:
// their connections, frozen ones included, are dropped without an answer.
func (s *Server) Close() {
	// Close the channel first: httptest waits for every handler and
	// connection, and held handlers and frozen connections only give up
	// once they see it.
	s.closeOnce.Do(func() { close(s.closed) })
	s.srv.Close()
}

// Client returns an HTTP client configured for making requests to the
// server. It trusts the server's TLS certificate and its idle connections
// are closed by Close.
func (s *Server) Client() *http.Client {
	return s.srv.Client()
}

// Certificate returns the certificate used by the server, or nil if the
// server doesn't use TLS. Use it to build a root pool of your own, as a
// client of an on-premise server with a self-signed certificate would.
func (s *Server) Certificate() *x509.Certificate {
	return s.srv.Certificate()
}

// Handle mounts h at Prefix+pattern, behind the bearer check of the
// protected endpoints: requests without a valid token are answered 401 and
// never reach h. The pattern is an [http.ServeMux] pattern relative to the
// prefix, with an optional method, such as "/api/v1/echo" or
// "GET /api/v1/people/{id}". Requests to it count in Stats.APICalls,
// refused ones included. Handle may be called before or after Start; like
// [http.ServeMux.Handle], it panics on an invalid or conflicting pattern.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		s.mux.Handle(withPrefix(pattern, s.prefix), s.protect("", h))
		return
	}
	// Check the pattern now, so that a mistake panics here and not in Start.
	http.NewServeMux().Handle(pattern, h)
	s.pending = append(s.pending, route{pattern, h})
}

// protect wraps h in the bearer check, and in a check of role unless it is
// empty.
func (s *Server) protect(role string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.count(&s.stats.APICalls)
		c, err := s.bearer(r)
		if err != nil {
			s.refuse(w, err)
			return
		}
		if role != "" && !slices.Contains(c.Roles, role) {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// cleanPrefix gives p one leading slash and no trailing one; "" and "/"
// become "".
func cleanPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return "/" + p
}

// withPrefix inserts prefix in a ServeMux pattern "[METHOD ][HOST]/[PATH]"
// before its path.
func withPrefix(pattern, prefix string) string {
	head, rest := "", pattern
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		head, rest = pattern[:i+1], pattern[i+1:]
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return pattern // not a valid pattern: let ServeMux say so
	}
	return head + rest[:i] + prefix + rest[i:]
}
