package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// Exit statuses: what a script should do next.
const (
	exitOK          = 0
	exitRefused     = 1 // the server refused: stop, and fix the account
	exitUsage       = 2 // usage or configuration: fix the command line
	exitUnavailable = 3 // the server is unavailable: retry later
	// exitSignal plus the signal's number is the status after a signal, as
	// a shell reports a process the signal killed.
	exitSignal = 128
)

// exitCode is the exit status for err, which is not nil.
func exitCode(err error) int {
	var (
		ue *usageError
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
		re *oauth2.RetrieveError
		ne net.Error
	)
	switch {
	case errors.As(err, &ue), errors.Is(err, econnect.ErrInsecureHTTP),
		errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &hn), errors.As(err, &ci):
		return exitUsage
	case errors.Is(err, econnect.ErrBadCredentials), errors.Is(err, errExpired):
		return exitRefused
	case errors.As(err, &re) && re.Response != nil:
		return statusExit(re.Response.StatusCode)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		return exitUnavailable
	}
	return exitUnavailable // a garbled answer
}

// statusExit is the exit status for an auth call answered with code.
func statusExit(code int) int {
	switch {
	case code == http.StatusNotFound, code >= 300 && code < 400:
		return exitUsage // -url is not the service root
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return exitUnavailable
	case code >= 400:
		return exitRefused
	}
	return exitUnavailable // a 2xx the library could not use
}

// errExpired is -renew's error for a cached token it cannot renew: it has
// expired, is too close to expiry, or the cache file cannot be used.
var errExpired = errors.New("-renew: the cached token has expired or cannot be used; log in again without -renew")

// A usageError is a mistake in the flags, the environment or the input,
// which ends the command with exit status 2 before any network I/O.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// A commandExit ends the run with the exit status of exec's command, or of
// a failure to start it (126, 127 as shells have them) after its message.
type commandExit struct {
	code int
	err  error // nil: the command ran
}

func (e *commandExit) Error() string {
	if e.err == nil {
		return fmt.Sprintf("the command exited with status %d", e.code)
	}
	return e.err.Error()
}
