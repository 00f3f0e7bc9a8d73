package econnecttest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/econnect-oss/econnect/internal/testkit"
)

func TestFaultAnswers(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 2<<20)
	tests := []struct {
		name       string
		fault      Fault
		wantStatus int
		wantBody   string // "token": a real login answer
		wantHeader http.Header
	}{
		{"status", Fault{Status: 503}, 503, "injected fault\n",
			http.Header{"Content-Type": {"text/plain; charset=utf-8"}}},
		{"garbage body", Fault{Body: "<html>not json"}, 200, "<html>not json",
			http.Header{"Content-Type": {"application/json; charset=utf-8"}}},
		{"oversized body", Fault{Body: big}, 200, big, nil},
		{"status and body", Fault{Status: 500, Body: `{"error":"boom"}`,
			Header: http.Header{"Content-Type": {"application/problem+json"}}}, 500, `{"error":"boom"}`,
			http.Header{"Content-Type": {"application/problem+json"}}},
		{"redirect", Fault{Status: 307, Header: http.Header{"Location": {"http://elsewhere.example/steal"}}},
			307, "injected fault\n", http.Header{"Location": {"http://elsewhere.example/steal"}}},
		{"header on a normal answer", Fault{Header: http.Header{"X-Test": {"1"}}}, 200, "token",
			http.Header{"X-Test": {"1"}}},
		{"delay then status", Fault{Delay: time.Millisecond, Status: 502}, 502, "injected fault\n", nil},
		{"delay then normal", Fault{Delay: time.Millisecond}, 200, "token", nil},
		{"429 with Retry-After", Fault{Status: 429, Header: http.Header{"Retry-After": {"2"}}}, 429,
			"injected fault\n", http.Header{"Retry-After": {"2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.FailLogin(1, tt.fault)
			start := time.Now()
			a := mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword))
			if elapsed := time.Since(start); elapsed < tt.fault.Delay {
				t.Errorf("answered after %v, want at least Delay %v", elapsed, tt.fault.Delay)
			}
			if a.status != tt.wantStatus {
				t.Errorf("status = %d, want %d", a.status, tt.wantStatus)
			}
			if tt.wantBody == "token" {
				tokenOf(t, a)
			} else if a.body != tt.wantBody {
				t.Errorf("body = %.40q (%d bytes), want %.40q", a.body, len(a.body), tt.wantBody)
			}
			for k := range tt.wantHeader {
				if got, want := a.header.Get(k), tt.wantHeader.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			checkStats(t, s, Stats{Logins: 1})
		})
	}
}

func TestFaultQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*Server)
		want  []int // statuses of successive logins
	}{
		{"two", func(s *Server) { s.FailLogin(2, Fault{Status: 503}) }, []int{503, 503, 200}},
		{"replaced", func(s *Server) {
			s.FailLogin(3, Fault{Status: 503})
			s.FailLogin(1, Fault{Status: 502})
		}, []int{502, 200}},
		{"cleared", func(s *Server) {
			s.FailLogin(2, Fault{Status: 503})
			s.FailLogin(0, Fault{Status: 503})
		}, []int{200}},
		{"renewal faults apart", func(s *Server) { s.FailRenew(2, Fault{Status: 503}) }, []int{200, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			tt.setup(s)
			for i, want := range tt.want {
				a := mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword))
				if a.status != want {
					t.Errorf("login %d: status = %d, want %d", i, a.status, want)
				}
			}
			checkStats(t, s, Stats{Logins: len(tt.want)})
		})
	}
}

func TestFailRenew(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	token := login(t, s, "alice", alicePassword)
	s.FailRenew(1, Fault{Status: http.StatusInternalServerError})
	if a := mustDo(t, s, renewRequest(t.Context(), s, token)); a.status != http.StatusInternalServerError {
		t.Errorf("first renewal: status = %d, want 500", a.status)
	}
	tokenOf(t, mustDo(t, s, renewRequest(t.Context(), s, token)))
	checkStats(t, s, Stats{Logins: 1, Renewals: 2})
}

func TestFaultHeaderCopied(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	h := http.Header{"X-Test": {"before"}}
	s.FailLogin(1, Fault{Header: h})
	h.Set("X-Test", "after")
	a := mustDo(t, s, loginRequest(t.Context(), s, "alice", alicePassword))
	if got := a.header.Get("X-Test"); got != "before" {
		t.Errorf("header X-Test = %q, want %q (the value when FailLogin was called)", got, "before")
	}
}

func TestFaultWait(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		wantStatus int
	}{
		{"then status", 503, 503},
		{"then normal", 0, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, arrived, _ := newWatchedServer(t)
			release := make(chan struct{})
			s.FailLogin(1, Fault{Wait: release, Status: tt.status})
			res := goDo(s, loginRequest(t.Context(), s, "alice", alicePassword))
			testkit.Await(t, arrived, "request arrival")
			select {
			case r := <-res:
				t.Fatalf("answered %d, %v before Wait was closed", r.a.status, r.err)
			default:
			}
			close(release)
			r := testkit.Await(t, res, "answer")
			if r.err != nil || r.a.status != tt.wantStatus {
				t.Errorf("login = %d, %v, want %d", r.a.status, r.err, tt.wantStatus)
			}
		})
	}
}

func TestFaultHangReleasedByClient(t *testing.T) {
	t.Parallel()
	s, arrived, left := newWatchedServer(t)
	s.FailLogin(1, Fault{Hang: true, Status: 200})
	ctx, cancel := context.WithCancel(t.Context())
	res := goDo(s, loginRequest(ctx, s, "alice", alicePassword))
	testkit.Await(t, arrived, "request arrival")
	cancel()
	if r := testkit.Await(t, res, "client error"); !errors.Is(r.err, context.Canceled) {
		t.Errorf("login error = %v, want %v", r.err, context.Canceled)
	}
	testkit.Await(t, left, "handler return after the client gave up")
	login(t, s, "alice", alicePassword) // the queue held one fault
}

func TestCloseWhileHeld(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*Server)
		renew bool
	}{
		{"hang", func(s *Server) { s.FailLogin(1, Fault{Hang: true}) }, false},
		{"wait never closed", func(s *Server) { s.FailLogin(1, Fault{Wait: make(chan struct{})}) }, false},
		{"delay", func(s *Server) { s.FailLogin(1, Fault{Delay: time.Hour}) }, false},
		{"latency", func(s *Server) { s.SetLatency(time.Hour) }, false},
		{"renewal hang", func(s *Server) { s.FailRenew(1, Fault{Hang: true}) }, true},
		{"freeze", func(s *Server) { s.FailLogin(1, Fault{Freeze: true}) }, false},
		{"renewal freeze", func(s *Server) { s.FailRenew(1, Fault{Freeze: true}) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, arrived, _ := newWatchedServer(t)
			req := loginRequest(t.Context(), s, "alice", alicePassword)
			if tt.renew {
				req = renewRequest(t.Context(), s, login(t, s, "alice", alicePassword))
				<-arrived // the login
			}
			tt.setup(s)
			res := goDo(s, req)
			testkit.Await(t, arrived, "request arrival")
			closed := make(chan struct{})
			go func() {
				s.Close()
				close(closed)
			}()
			testkit.Await(t, closed, "Close")
			if r := testkit.Await(t, res, "client error"); r.err == nil {
				t.Errorf("held request answered %d %q, want a dropped connection", r.a.status, r.a.body)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	const latency = time.Millisecond
	s.SetLatency(latency)
	start := time.Now()
	token := login(t, s, "alice", alicePassword)
	tokenOf(t, mustDo(t, s, renewRequest(t.Context(), s, token)))
	if elapsed := time.Since(start); elapsed < 2*latency {
		t.Errorf("login and renewal took %v, want at least 2 × %v", elapsed, latency)
	}
}

func TestFaultReset(t *testing.T) {
	t.Parallel()
	for _, f := range []Fault{{Reset: true}, {Reset: true, Status: 503, Body: "ignored"}, {Reset: true, Delay: time.Millisecond}} {
		s := newServer(t)
		s.FailLogin(1, f)
		if a, err := do(s, loginRequest(t.Context(), s, "alice", alicePassword)); err == nil {
			t.Errorf("%+v: login answered %d %q, want a dropped connection", f, a.status, a.body)
		}
		checkStats(t, s, Stats{Logins: 1})
		login(t, s, "alice", alicePassword) // the queue held one fault
	}
}

func TestFaultSpoiled(t *testing.T) {
	t.Parallel()
	const normal = `{"username":"alice","token":"` // how a normal answer starts
	const fault = `{"error":"unavailable"}`
	tests := []struct {
		name       string
		fault      Fault
		renew      bool
		wantStatus int
		wantStart  string // the body, cut in half, starts with it
		wantErr    error  // of reading the body
	}{
		{"cut normal answer", Fault{Cut: true}, false, 200, normal, io.ErrUnexpectedEOF},
		{"cut renewal", Fault{Cut: true}, true, 200, normal, io.ErrUnexpectedEOF},
		{"cut fault", Fault{Cut: true, Status: 503, Body: fault}, false, 503, fault[:len(fault)/2], io.ErrUnexpectedEOF},
		{"half normal answer", Fault{Half: true}, false, 200, normal, nil},
		{"half renewal", Fault{Half: true}, true, 200, normal, nil},
		{"half fault", Fault{Half: true, Status: 503, Body: fault}, false, 503, fault[:len(fault)/2], nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			req := loginRequest(t.Context(), s, "alice", alicePassword)
			want := Stats{Logins: 1}
			if tt.renew {
				req = renewRequest(t.Context(), s, login(t, s, "alice", alicePassword))
				s.FailRenew(1, tt.fault)
				want = Stats{Logins: 1, Renewals: 1}
			} else {
				s.FailLogin(1, tt.fault)
			}
			a, err := do(s, req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("reading the answer: error = %v, want %v", err, tt.wantErr)
			}
			if a.status != tt.wantStatus || !strings.HasPrefix(a.body, tt.wantStart) {
				t.Errorf("answer = %d %q, want %d and a body starting %q", a.status, a.body, tt.wantStatus, tt.wantStart)
			}
			if json.Valid([]byte(a.body)) {
				t.Errorf("body %q is valid JSON, want half of it", a.body)
			}
			length, _ := strconv.Atoi(a.header.Get("Content-Length"))
			if n := len(a.body); tt.fault.Half && length != n || tt.fault.Cut && length != 2*n && length != 2*n+1 {
				t.Errorf("Content-Length = %d for %d bytes sent, want %s", length, n,
					map[bool]string{true: "as many", false: "twice as many"}[tt.fault.Half])
			}
			checkStats(t, s, want)
		})
	}
}
