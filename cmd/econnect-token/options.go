package main

import (
	"bufio"
	"cmp"
	"errors"
	"flag"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// options is what the flags, the environment and stdin ask for.
type options struct {
	url, user     string
	passwordStdin bool
	renew, json   bool
	cacert        string
	insecure      bool
	allowHTTP     bool
	timeout       time.Duration
	demo          bool

	password string // from ECONNECT_PASSWORD or stdin; never from a flag
	token    string // the token to renew, from ECONNECT_TOKEN or stdin
}

// secrets returns the values that must never be printed.
func (o *options) secrets() []string {
	if o == nil {
		return nil
	}
	return []string{o.password, o.token}
}

// newFlagSet defines the flags in o. Errors and usage are printed by run,
// so that every line of an error starts with the command's name.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("econnect-token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.url, "url", "", "service root `URL`, such as https://customer.econnectcloud.com/identities\nor https://host:5009 (default $ECONNECT_URL)")
	fs.StringVar(&o.user, "user", "", "log in as `NAME` (default $ECONNECT_USERNAME)")
	fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from the first line of stdin instead of $ECONNECT_PASSWORD")
	fs.BoolVar(&o.renew, "renew", false, "renew the token in $ECONNECT_TOKEN (or the first line of stdin) instead of\nlogging in; needs no username or password")
	fs.BoolVar(&o.json, "json", false, "print {\"token\", \"expiry\", \"username\"} as JSON instead of the bare token;\n"+
		"expiry is RFC 3339, left out when the token never expires")
	fs.StringVar(&o.cacert, "cacert", "", "trust only the CA certificates in PEM `FILE`, such as an on-premise server's\nself-signed certificate")
	fs.BoolVar(&o.insecure, "insecure-skip-verify", false, "do not check the server's TLS certificate (for tests only: anyone on the\nnetwork path could read the password and the token)")
	fs.BoolVar(&o.allowHTTP, "allow-http", false, "permit a plain http:// URL to a host that is not loopback (the password and\ntoken then cross the network in clear text)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this `duration`")
	fs.BoolVar(&o.demo, "demo", false, "show the login, an authenticated call, a renewal and a recovery against a\nfake server built into the command, then print its last token")
	return fs
}

// parseArgs reads the flags, then the environment and stdin for what the
// flags leave out. It returns flag.ErrHelp for -h.
func parseArgs(args []string, env func(string) string, stdin io.Reader) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return o, flagError(err)
	}
	if fs.NArg() > 0 {
		// The arguments are not echoed: one might be a password.
		return o, usagef("unexpected arguments after the flags; the password is never an argument: " +
			"set ECONNECT_PASSWORD or use -password-stdin")
	}
	if o.timeout <= 0 {
		return o, usagef("-timeout must be positive, such as 30s")
	}
	if o.demo {
		return o, checkDemo(fs)
	}
	return o, o.complete(env, stdin)
}

// flagError rewrites an error of the flag package. Values are not echoed,
// since a password given by mistake to -password-stdin=… would be.
func flagError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case strings.HasPrefix(msg, "flag provided but not defined: -pass"):
		return usagef("there is no -password flag, so that the password stays out of shell histories: " +
			"set ECONNECT_PASSWORD or use -password-stdin")
	case strings.HasPrefix(msg, "invalid"):
		return usagef("invalid value for %s; run econnect-token -h for usage", invalidFlag(msg))
	case strings.HasPrefix(msg, "bad flag syntax"):
		return usagef("bad flag syntax; run econnect-token -h for usage")
	}
	return usagef("%s; run econnect-token -h for usage", msg)
}

// invalidFlag returns the flag named by the flag package's message
// "invalid … value %q for [flag ]-NAME: parse error", whose value may hold
// anything.
func invalidFlag(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.LastIndex(msg, " -"); i >= 0 {
		return msg[i+1:]
	}
	return "a flag"
}

// checkDemo refuses the flags that -demo has no use for.
func checkDemo(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "demo", "json", "timeout":
		default:
			if err == nil {
				err = usagef("-demo runs its own server and takes no -%s; drop it, or drop -demo", f.Name)
			}
		}
	})
	return err
}

// complete fills in what the flags leave out from env and stdin, and checks
// that what is needed is there.
func (o *options) complete(env func(string) string, stdin io.Reader) error {
	o.url = cmp.Or(o.url, env("ECONNECT_URL"))
	o.user = cmp.Or(o.user, env("ECONNECT_USERNAME"))
	switch {
	case o.url == "":
		return usagef("no server URL: use -url or set ECONNECT_URL, such as https://customer.econnectcloud.com/identities")
	case o.cacert != "" && o.insecure:
		return usagef("-cacert and -insecure-skip-verify contradict each other; drop one")
	}
	if err := checkURL(o.url, o.allowHTTP); err != nil {
		return err
	}
	if o.renew {
		return o.readToken(env, stdin)
	}
	if o.user == "" {
		return usagef("no username: use -user or set ECONNECT_USERNAME")
	}
	return o.readPassword(env, stdin)
}

// readPassword takes the password from stdin with -password-stdin, else
// from ECONNECT_PASSWORD.
func (o *options) readPassword(env func(string) string, stdin io.Reader) error {
	if !o.passwordStdin {
		if o.password = env("ECONNECT_PASSWORD"); o.password == "" {
			return usagef("no password: set ECONNECT_PASSWORD or use -password-stdin")
		}
		return nil
	}
	var err error
	if o.password, err = firstLine(stdin); err != nil {
		return usagef("-password-stdin: reading stdin: %v", err)
	}
	if o.password == "" {
		return usagef("-password-stdin: the first line of stdin is empty; pipe the password in, such as < password.txt")
	}
	return nil
}

// readToken takes the token to renew from ECONNECT_TOKEN, else from stdin.
func (o *options) readToken(env func(string) string, stdin io.Reader) error {
	if o.passwordStdin {
		return usagef("-renew needs no password; drop -password-stdin")
	}
	o.token = strings.TrimSpace(env("ECONNECT_TOKEN"))
	if o.token != "" {
		return nil
	}
	line, err := firstLine(stdin)
	if err != nil {
		return usagef("-renew: reading stdin: %v", err)
	}
	if o.token = strings.TrimSpace(line); o.token == "" {
		return usagef("-renew: no token to renew: set ECONNECT_TOKEN or give the token on stdin")
	}
	return nil
}

// maxLine bounds the first line of stdin: a password or a JWT.
const maxLine = 64 << 10

// firstLine returns the first line of r without its line ending (\n or
// \r\n). Other spaces are kept: they may be part of a password.
func firstLine(r io.Reader) (string, error) {
	if r == nil {
		return "", nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	if sc.Scan() {
		return sc.Text(), nil
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return "", errors.New("the first line is longer than 64 KiB")
	}
	return "", sc.Err()
}

// checkURL refuses, before any network I/O, a URL the library would refuse,
// so that the error names the command's flags rather than the library's
// fields. The URL itself is never echoed: it might hold a password.
func checkURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return usagef("the server URL is not a URL; give the service root, such as https://customer.econnectcloud.com/identities")
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
		return usagef("the server URL must be an absolute https:// (or http://) URL, such as https://host:5009")
	case u.User != nil:
		return usagef("the server URL must not hold a username or password; use -user, and ECONNECT_PASSWORD or -password-stdin")
	case u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()):
		return usagef("refusing plain http to %s, which would send the password and token in clear text: "+
			"use https, or -allow-http on a network you trust", u.Host)
	}
	return nil
}

// isLoopback reports whether host is a loopback name or address, the hosts
// the library allows plain http to.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
