package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// A hintedError is a failed login or renewal, with what the user can do
// about it.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() + "; " + e.hint }
func (e *hintedError) Unwrap() error { return e.err }

// explain adds to err, if not nil, what the user can do next. The
// library's errors never hold the password or a token. Its refusal of plain
// http is a usage error, in the words of the command's flags.
func (g *getter) explain(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, econnect.ErrInsecureHTTP):
		return usagef("refusing plain http to %s, which would send the password and token in clear text: "+
			"use https, or -allow-http on a network you trust", g.o.base.Host)
	}
	return &hintedError{err: err, hint: hint(err, g.o)}
}

// hint says what to do about a failed login or renewal.
func hint(err error, o *options) string {
	var he x509.HostnameError
	var cv *tls.CertificateVerificationError
	var re *oauth2.RetrieveError
	switch {
	case errors.Is(err, econnect.ErrBadCredentials):
		return "check the username (-user or ECONNECT_USERNAME) and the password"
	case errors.As(err, &he) && he.Certificate != nil:
		return nameMismatch(he)
	case errors.As(err, &cv) && o.cacert != "":
		return "the server's certificate is not signed by a certificate in the -cacert file"
	case errors.As(err, &cv):
		return "the server's certificate is not trusted: give its CA certificate with -cacert FILE"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within -timeout: check -url and the network, or raise -timeout"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &re) && re.Response != nil:
		return statusHint(re.Response.StatusCode, o)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return "check -url and that the server is reachable"
	}
	return "check -url: it must be the service root, such as https://customer.econnectcloud.com/identities"
}

// nameMismatch says that the server's certificate is for other names than
// the host dialled, and names both.
func nameMismatch(he x509.HostnameError) string {
	c := he.Certificate
	names := c.DNSNames
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{c.Subject.CommonName}
	}
	list := "no name"
	if len(names) > 0 {
		list = strings.Join(names, ", ")
	}
	return "the server's certificate is for " + list + ", not for " + he.Host +
		", the host in -url: use one of the certificate's names in -url"
}

// statusHint says what to do about an auth answer with status code.
func statusHint(code int, o *options) string {
	switch {
	case o.renew && code == http.StatusUnauthorized:
		return "the token has expired or was revoked: log in again without -renew"
	case code == http.StatusNotFound, code >= 300 && code < 400:
		return "check -url: it must be the service root, such as https://customer.econnectcloud.com/identities or https://host:5009"
	case statusExit(code) == exitUnavailable:
		return "the server is busy or failing: try again later"
	}
	return "check -url and the account"
}
