package econnecttest

import (
	"context"
	"errors"
	"testing"

	"github.com/econnect-oss/econnect/internal/testkit"
)

func TestWaitFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		act  func(*Server) // on another goroutine, once WaitFor waits
		cond func(Stats) bool
	}{
		{"already true", func(*Server) {}, func(Stats) bool { return true }},
		{"a login", loginOnce, func(st Stats) bool { return st.Logins == 1 }},
		{"a refusal", func(s *Server) {
			do(s, loginRequest(context.Background(), s, "alice", "wrong"))
		}, func(st Stats) bool { return st.Refused == 1 }},
		{"a connection", loginOnce, func(st Stats) bool { return st.Connections == 1 }},
		{"three logins", func(s *Server) {
			for range 3 {
				loginOnce(s)
			}
		}, func(st Stats) bool { return st.Logins == 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			waited := make(chan error, 1)
			go func() { waited <- s.WaitFor(t.Context(), tt.cond) }()
			done := make(chan struct{})
			go func() {
				defer close(done)
				tt.act(s)
			}()
			if err := testkit.Await(t, waited, "WaitFor"); err != nil {
				t.Errorf("WaitFor() = %v, want nil", err)
			}
			testkit.Await(t, done, "the requests")
		})
	}
}

// loginOnce logs in as alice, off the test goroutine.
func loginOnce(s *Server) {
	do(s, loginRequest(context.Background(), s, "alice", alicePassword))
}

func TestWaitForEndsWithContext(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	waited := make(chan error, 1)
	go func() { waited <- s.WaitFor(ctx, func(st Stats) bool { return st.Logins == 2 }) }()
	login(t, s, "alice", alicePassword) // one login: not enough
	cancel()
	if err := testkit.Await(t, waited, "WaitFor"); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor() = %v, want %v", err, context.Canceled)
	}
}

// TestWaitForCondMayCallServer: cond runs with no lock of the server held.
func TestWaitForCondMayCallServer(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		loginOnce(s)
	}()
	err := s.WaitFor(t.Context(), func(Stats) bool {
		s.SetLatency(0)
		return s.Stats().Logins == 1
	})
	if err != nil {
		t.Errorf("WaitFor() = %v, want nil", err)
	}
	testkit.Await(t, done, "the login")
}
