// Command econnect-token logs in to an eConnect Identities server and prints
// a token (a JWT) on stdout, alone on its line, for scripts:
//
//	TOKEN=$(econnect-token -url https://customer.econnectcloud.com/identities -user camera-1)
//
// The password comes from ECONNECT_PASSWORD or, with -password-stdin, from
// the first line of stdin; never from a flag, so that it stays out of shell
// histories and process listings. The token is cached per server and user
// in the user's cache directory: later runs print it while it is good,
// renew it when it is due, and log in only when they must. -renew renews a
// token instead of logging in, -json prints the token with its expiry and
// username, and -demo shows the whole login-and-renew flow against a fake
// server built into the command. Run econnect-token -h for every flag.
//
// The exit status is 0 when a token was printed (and for -h and -version),
// 1 when authentication failed (wrong credentials, a refused token, an
// unreachable server), 2 for a usage error, and 130 or 143 when SIGINT or
// SIGTERM ended the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// Exit statuses.
const (
	exitOK    = 0
	exitAuth  = 1
	exitUsage = 2
	// exitSignal plus the signal's number is the status after a signal, as
	// a shell reports a process the signal killed.
	exitSignal = 128
)

func main() {
	ctx, stop := notifySignals(context.Background())
	p := &process{
		getenv:        os.Getenv,
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
	o, err := parseArgs(args, p.getenv)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printUsage(p.stdout)
		return exitOK
	case err == nil && o.version:
		fmt.Fprintln(p.stdout, version())
		return exitOK
	case err == nil:
		err = runOptions(ctx, o, p)
	}
	if err == nil {
		return exitOK
	}
	if sig := signalOf(ctx); sig != nil {
		p.say("%s", sig)
		return sig.code()
	}
	p.say("%s", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitAuth
}

// runOptions does what o asks for, within -timeout.
func runOptions(ctx context.Context, o *options, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.demo {
		return runDemo(ctx, o, p.stdout, p.stderr)
	}
	if err := o.readPassword(ctx, p); err != nil {
		return err
	}
	return printToken(ctx, o, p)
}

// A usageError is a mistake in the flags, the environment or the input,
// which ends the command with exit status 2 before any network I/O.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// interruption is the cause of a context cancelled by a signal.
type interruption struct {
	name string
	num  int
}

func (s *interruption) Error() string { return "interrupted by " + s.name }
func (s *interruption) code() int     { return exitSignal + s.num }

// notifySignals returns a context cancelled, with an *interruption as its
// cause, by the first SIGINT or SIGTERM. Catching the signal rather than
// dying of it lets a cache write under way finish or clean up, so that no
// temporary file is left behind. A second signal kills the process.
func notifySignals(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			signal.Stop(ch)
			cancel(newInterruption(sig))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

func newInterruption(sig os.Signal) *interruption {
	if sig == syscall.SIGTERM {
		return &interruption{name: "SIGTERM", num: int(syscall.SIGTERM)}
	}
	return &interruption{name: "SIGINT", num: int(syscall.SIGINT)}
}

// signalOf returns the signal that cancelled ctx, or nil.
func signalOf(ctx context.Context) *interruption {
	var s *interruption
	if errors.As(context.Cause(ctx), &s) {
		return s
	}
	return nil
}

// version is the line -version prints: the module version from the build
// information (v1.2.3 for go install …@v1.2.3, (devel) for a build in a
// checkout), with the commit when the build recorded it.
func version() string {
	v, extra := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				extra += ", commit " + s.Value
			case "vcs.modified":
				if s.Value == "true" {
					extra += ", modified"
				}
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return fmt.Sprintf("econnect-token %s (%s %s/%s%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, extra)
}
