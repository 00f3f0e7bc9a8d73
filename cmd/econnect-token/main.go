// Command econnect-token gets tokens (JWTs) from an eConnect Identities
// server for programs that are not written in Go: shell scripts with curl,
// PowerShell, Python services, Postman.
//
//	econnect-token -header | curl -fsS -H @- "$ECONNECT_URL/api/v1/people/$ID"
//	econnect-token exec -- python3 upload.py   # reads $ECONNECT_TOKEN, exits 22 on a 401
//	econnect-token proxy -listen 127.0.0.1:8080
//
// The password comes from ECONNECT_PASSWORD or, with -password-stdin, from
// the first line of stdin (UTF-8, or UTF-16 with a byte order mark as
// PowerShell writes it); never from a flag, so that it stays out of shell
// histories and process listings. A plain run prints the token alone on
// stdout, or with -header as an Authorization header line for curl -H @-,
// so that the token stays off command lines too. Tokens are cached per
// server and user in the user's cache directory, through the library's
// DirStore: runs that need a token at once, or that saw the server refuse
// the same one (-refused), make one login between them. The subcommands serve
// long-running programs: proxy adds the token to every request sent through
// it, renewing it and healing refusals; exec runs a command with the token
// in ECONNECT_TOKEN and runs it once more with a new token if it fails with
// curl -f's status; fake runs a fake server for scripts' tests. Run
// econnect-token -h for every flag.
//
// The exit status says what to do next: 0 done; 1 the server refused
// (wrong credentials, a refused token, another 4xx): stop; 2 a usage or
// configuration error (flags, URL, certificate, plain http, an auth call
// answered with a redirect or 404): fix it; 3 the server is unavailable
// (network, timeout, 5xx, 429, a garbled answer): retry later; 130 or 143
// after SIGINT or SIGTERM. exec exits with its command's status.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
)

func main() {
	ctx, stop := notifySignals(context.Background())
	p := &process{
		getenv:        os.Getenv,
		environ:       os.Environ,
		stdin:         os.Stdin,
		stdinTerminal: isTerminal(os.Stdin),
		stdout:        os.Stdout,
		stderr:        os.Stderr,
	}
	code := run(ctx, os.Args[1:], p)
	stop()
	os.Exit(code)
}

// process is what the command gets from the operating system, passed in so
// that tests can run the command in-process.
type process struct {
	getenv         func(string) string
	environ        func() []string // for the command exec runs
	stdin          io.Reader
	stdinTerminal  bool // stdin is a terminal: say what is awaited there
	stdout, stderr io.Writer
}

// say writes one line on stderr.
func (p *process) say(format string, a ...any) {
	fmt.Fprintf(p.stderr, "econnect-token: "+format+"\n", a...)
}

// warn writes one warning line on stderr.
func (p *process) warn(format string, a ...any) {
	p.say("warning: "+format, a...)
}

// run is the whole command. It returns the exit status.
func run(ctx context.Context, args []string, p *process) int {
	// The proxy writes on stderr from its handlers' goroutines.
	p.stderr = &lockedWriter{w: p.stderr}
	o, err := parseArgs(args, p.getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(p.stdout, o.mode)
		return exitOK
	case err == nil:
		err = o.mode.run(ctx, o, p)
	}
	return p.exit(ctx, err)
}

// exit reports err, if any, and returns the exit status it calls for.
func (p *process) exit(ctx context.Context, err error) int {
	var ce *commandExit
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		if ce.err != nil {
			p.say("%s", ce.err)
		}
		return ce.code // exec's command's own, or as a shell has it
	}
	if sig := signalOf(ctx); sig != nil {
		p.say("%s", sig)
		return sig.code()
	}
	p.say("%s", err)
	return exitCode(err)
}

// lockedWriter serializes the writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
