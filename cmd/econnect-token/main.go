// Command econnect-token logs in to an eConnect Identities server and prints
// a token (a JWT) on stdout, alone on its line, for scripts:
//
//	TOKEN=$(econnect-token -url https://customer.econnectcloud.com/identities -user camera-1)
//
// The password comes from ECONNECT_PASSWORD or, with -password-stdin, from
// the first line of stdin; never from a flag, so that it stays out of shell
// histories and process listings. -renew renews a token instead of logging
// in, -json prints the token with its expiry and username, and -demo shows
// the whole login-and-renew flow against a fake server built into the
// command. Run econnect-token -h for every flag.
//
// The exit status is 0 when a token was printed (and for -h), 1 when
// authentication failed (wrong credentials, a refused token, an unreachable
// server) and 2 for a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

// Exit statuses.
const (
	exitOK    = 0
	exitAuth  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command, with its environment passed in so that tests
// can run it in-process. It returns the exit status.
func run(ctx context.Context, args []string, env func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, env, stdin)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	}
	if err != nil {
		return fail(stderr, err, o)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.demo {
		err = runDemo(ctx, o, stdout, stderr)
	} else {
		err = printToken(ctx, o, stdout, stderr)
	}
	if err != nil {
		return fail(stderr, err, o)
	}
	return exitOK
}

// printToken logs in, or renews with -renew, and prints the token.
func printToken(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	hc, err := newHTTPClient(o, stderr)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	tok, err := fetchToken(ctx, o, hc)
	if err != nil {
		return err
	}
	return writeToken(stdout, tok, o.json)
}

// A usageError is a mistake in the flags, the environment or the input,
// which ends the command with exit status 2 before any network I/O.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// fail prints err on stderr, with the secrets of o removed, and returns the
// exit status it calls for.
func fail(stderr io.Writer, err error, o *options) int {
	fmt.Fprintln(stderr, "econnect-token: "+scrub(err.Error(), o.secrets()...))
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitAuth
}

// scrub replaces every secret in s. The library's errors never hold a
// secret; this is a second line of defence for the ones the command makes.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
