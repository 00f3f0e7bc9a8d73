package econnecttest

import (
	"slices"
	"time"
)

// Role names of the Face Edge endpoints.
const (
	rolePublishing = "Face Publishing"
	roleRecognize  = "Face Recognize"
)

// DefaultRoles returns the roles [Server.AddUser] gives a user added without
// any: "Face Publishing" and "Face Recognize", the permissions of the Face
// Edge endpoints. It is a function rather than a variable so that no caller
// can change it for the others.
func DefaultRoles() []string {
	return []string{rolePublishing, roleRecognize}
}

// AddUser adds an account, or replaces the password and roles of an
// existing one. A user added without roles gets [DefaultRoles]. Tokens
// already issued keep the roles they carry.
func (s *Server) AddUser(username, password string, roles ...string) {
	if len(roles) == 0 {
		roles = DefaultRoles()
	}
	u := user{password: password, roles: slices.Clone(roles)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[username] = u
}

// SetLifetime sets the lifetime of the tokens issued from now on; the
// default is 1 hour. Like a JWT's exp, it counts whole seconds: d is rounded
// down to a whole number of seconds, and is at least 1 second.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// SetClock sets the server's clock, which stamps iat, nbf and exp and
// decides when a token has expired; nil restores the default, [time.Now].
// Tests pass a fake clock and move it instead of waiting.
func (s *Server) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = now
}

// SetClockOffset sets how far the server's clock is off: its time is the
// clock's plus d. Use it to simulate a server whose clock disagrees with the
// client's.
func (s *Server) SetClockOffset(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset = d
}

// OmitClaims makes the server issue tokens without the named claims, among
// "unique_name", "role", "nbf", "iat", "exp" and "jti"; other names are
// ignored. Each call replaces the previous set; OmitClaims() restores them
// all. A token without exp never expires; one without unique_name is
// refused, since it names no user.
func (s *Server) OmitClaims(names ...string) {
	names = slices.Clone(names)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.omit = names
}

// FailLogin makes the next n requests to the login endpoint answer f instead
// of their normal answer. It replaces what an earlier call left queued;
// n <= 0 clears the queue.
func (s *Server) FailLogin(n int, f Fault) {
	q := newFaultQueue(n, f)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginFaults.queue = q
}

// FailRenew makes the next n requests to the renewal endpoint answer f
// instead of their normal answer. It replaces what an earlier call left
// queued; n <= 0 clears the queue.
func (s *Server) FailRenew(n int, f Fault) {
	q := newFaultQueue(n, f)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renewFaults.queue = q
}

// SetLatency makes every answer of the login and renewal endpoints, faults
// included, wait d first. A wait ends early, without an answer, when the
// client gives up or the server closes.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// RotateKey gives the server a new random signing key. Every token issued
// before is refused from now on, by the renewal endpoint, the protected
// endpoints and [Server.VerifyToken], as after a restart of a real server.
func (s *Server) RotateKey() {
	key := newKey()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = key
}

// now returns the time by the server's clock. s.mu must be held.
func (s *Server) now() time.Time {
	return s.clock().Add(s.offset)
}

// lookup returns the account of a user.
func (s *Server) lookup(username string) (user, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	return u, ok
}
