package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/econnect-oss/econnect/internal/secret"
	"golang.org/x/oauth2"
)

// Refusal is a non-2xx answer from the login or renewal endpoint. Its text
// never holds the answer's body, which might echo a secret.
type Refusal struct {
	Op         string // "login" or "renewal"
	Code       int
	Location   string        // where a 3xx pointed, if it did, secrets removed
	RetryAfter time.Duration // a 429's or 503's Retry-After, capped; zero if none
	bad        error         // Call.BadCredentials, for a login refused with 400
	re         *oauth2.RetrieveError
}

func (e *Refusal) Error() string {
	s := "econnect: " + e.Op + " refused: " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	switch {
	case e.badCredentials():
		s += " (wrong username or password)"
	case e.Location != "":
		s += " to " + e.Location + " (auth calls follow no redirects)"
	}
	return s
}

func (e *Refusal) badCredentials() bool {
	return e.Op == "login" && e.Code == http.StatusBadRequest
}

// Unwrap returns the oauth2.RetrieveError, and the Call's BadCredentials
// for a login refused with 400.
func (e *Refusal) Unwrap() []error {
	if e.badCredentials() && e.bad != nil {
		return []error{e.bad, e.re}
	}
	return []error{e.re}
}

// AnswerError is a 2xx answer that is not a valid token answer.
type AnswerError struct {
	Op, What string
	Err      error
}

func (e *AnswerError) Error() string {
	s := "econnect: " + e.Op + ": bad answer: " + e.What
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *AnswerError) Unwrap() error { return e.Err }

// refusal builds the error for a non-2xx answer. The body kept is redacted
// first and cut after, so that no part of a secret survives the cut, and
// the request kept carries neither the bearer nor a replayable body.
func (c Call) refusal(op string, resp *http.Response, body []byte, s string) error {
	req := resp.Request.Clone(context.Background())
	req.Header.Del("Authorization")
	req.Body, req.GetBody = nil, nil
	resp.Request = req
	e := &Refusal{Op: op, Code: resp.StatusCode, bad: c.BadCredentials,
		re: &oauth2.RetrieveError{Response: resp, Body: redactedBody(body, s)}}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(resp.Header, c.Now())
	}
	if loc, err := resp.Location(); err == nil {
		e.Location = redactLocation(loc, s)
	} else if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		e.Location = "nowhere"
	}
	return e
}

// redactLocation returns loc without user information, query or fragment,
// and without its path if that holds the secret in any spelling, or at all
// if its host does.
func redactLocation(loc *url.URL, s string) string {
	loc.User, loc.RawQuery, loc.Fragment, loc.RawFragment = nil, "", "", ""
	if secret.In(loc.Host, s) {
		return secret.Redacted
	}
	if secret.In(loc.Path, s) || secret.In(loc.EscapedPath(), s) {
		loc.Path, loc.RawPath = "/"+secret.Redacted, ""
	}
	return loc.String()
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date, measured
// against the answer's own Date when it has one (the server's clock may be
// off), and caps it at MaxRetryAfter: a number of seconds too large for any
// integer type is still a long wait, not none. Anything else is zero.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if digits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(MaxRetryAfter/time.Second) { // only a range error is possible
			return MaxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		now = date
	}
	return min(max(at.Sub(now), 0), MaxRetryAfter)
}

// digits reports whether s is a non-empty run of ASCII digits.
func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// Transient reports whether err may pass by itself: a network failure, a
// timeout, a garbled answer, or an answer 408, 429 or 5xx. A refusal of the
// credentials or the token, another 4xx, a certificate that fails
// verification, and a cancelled context are not.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || untrusted(err) {
		return false
	}
	var r *Refusal
	if errors.As(err, &r) {
		return r.Code == http.StatusRequestTimeout || r.Code == http.StatusTooManyRequests || r.Code >= 500
	}
	return true
}

// untrusted reports whether err is a server certificate that failed
// verification: not trusted, not valid for the host, expired. Waiting does
// not change a certificate.
func untrusted(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// Refused reports whether the server refused the token itself (401, 403):
// the only renewal failure that justifies dropping a token still usable.
func Refused(err error) bool {
	var r *Refusal
	return errors.As(err, &r) && (r.Code == http.StatusUnauthorized || r.Code == http.StatusForbidden)
}

// RetryAfter returns how long err's answer asked to wait, or zero.
func RetryAfter(err error) time.Duration {
	var r *Refusal
	if errors.As(err, &r) {
		return r.RetryAfter
	}
	return 0
}
