package main

import (
	"errors"
	"flag"
	"io"
	"strconv"
	"time"
)

// newFlagSet returns m's flags, bound to o. Errors and usage are printed by
// run, so that every line of an error starts with the command's name.
func newFlagSet(m *mode, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet(m.command(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	m.flags(fs, o)
	return fs
}

// loginFlags are the flags of every mode that gets a token.
func loginFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.url, "url", "", "service root `URL`, such as https://customer.econnectcloud.com/identities\nor https://host:5009 (default $ECONNECT_URL)")
	fs.StringVar(&o.user, "user", "", "log in as `NAME` (default $ECONNECT_USERNAME)")
	fs.BoolVar(&o.passwordStdin, "password-stdin", false, "read the password from the first line of stdin instead of $ECONNECT_PASSWORD\n"+
		"(UTF-8, or UTF-16 with a byte order mark, as PowerShell 5.1's > writes)")
	fs.StringVar(&o.cacert, "cacert", "", "trust only the CA certificates in PEM `FILE`, such as an on-premise server's\nself-signed certificate")
	fs.BoolVar(&o.insecure, "insecure-skip-verify", false, "do not check the server's TLS certificate (for tests only: anyone on the\nnetwork path could read the password and the token)")
	fs.BoolVar(&o.allowHTTP, "allow-http", false, "permit a plain http:// URL to a host that is not loopback (the password and\ntoken then cross the network in clear text)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up getting a token after this `duration`, such as 30s or 2m; a login\n"+
		"failing for a passing reason (network, 5xx) is retried until then")
	fs.BoolVar(&o.noCache, "no-cache", false, "neither read nor write the token cache")
	fs.BoolVar(&o.fresh, "fresh", false, "log in even if the cache holds a good token, and cache the new one (after\n"+
		"the server refused a token, prefer -refused: the runs that saw the refusal\nshare one login)")
	fs.Var(noPassword{}, "password", "") // hidden: says where the password goes
}

// tokenFlags are the flags of a plain run, which prints a token.
func tokenFlags(fs *flag.FlagSet, o *options) {
	loginFlags(fs, o)
	fs.BoolVar(&o.renew, "renew", false, "renew a token instead of logging in, with no password: the token in\n"+
		"$ECONNECT_TOKEN, else the first line of stdin, else the cached token of -user")
	fs.BoolVar(&o.refused, "refused", false, "the server refused the token in $ECONNECT_TOKEN (else stdin's first line):\n"+
		"print the cached token if it is newer, with no network call, else log in")
	fs.BoolVar(&o.json, "json", false, "print {\"token\", \"expiry\", \"username\"} as JSON instead of the bare token;\n"+
		"expiry is RFC 3339, left out when the token never expires")
	fs.BoolVar(&o.header, "header", false, "print \"Authorization: Bearer TOKEN\" instead of the bare token, for curl -H @-,\n"+
		"so that the token stays off command lines")
	fs.BoolVar(&o.demo, "demo", false, "show the login, an authenticated call, a renewal and a recovery against a\nfake server built into the command, then print its last token")
	fs.BoolVar(&o.version, "version", false, "print the command's version and exit")
}

// proxyFlags are the flags of econnect-token proxy.
func proxyFlags(fs *flag.FlagSet, o *options) {
	loginFlags(fs, o)
	listenFlag(fs, o, "serve on `ADDR`: host:port with a loopback host, or unix:PATH for a socket\nonly this user may use")
}

// execFlags are the flags of econnect-token exec.
func execFlags(fs *flag.FlagSet, o *options) {
	loginFlags(fs, o)
	fs.IntVar(&o.status, "status", 22, "run the command once more with a new token when it exits with status `N`\n(22: curl -f's status for an HTTP error, such as 401)")
}

// fakeFlags are the flags of econnect-token fake.
func fakeFlags(fs *flag.FlagSet, o *options) {
	listenFlag(fs, o, "serve on `ADDR`, host:port with a loopback host")
	fs.DurationVar(&o.lifetime, "lifetime", time.Hour, "issue tokens that live this `duration`, in whole seconds")
}

func listenFlag(fs *flag.FlagSet, o *options, usage string) {
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", usage)
}

// noPassword is the value of the hidden -password flag: it takes any value
// as a bool flag would, so that a password given to it is never read as
// the next argument, and refuses it.
type noPassword struct{}

func (noPassword) String() string   { return "" }
func (noPassword) IsBoolFlag() bool { return true }
func (noPassword) Set(string) error {
	return usagef("there is no -password flag, so that the password stays out of shell histories: " +
		"set ECONNECT_PASSWORD or use -password-stdin")
}

// parseFlags parses args into fs. Its errors are the command's own, never
// the flag package's texts, which echo what they refuse (a password given
// to a flag by mistake would show).
func parseFlags(fs *flag.FlagSet, args []string) error {
	var bad error // the first value a flag refused
	fs.VisitAll(func(f *flag.Flag) { f.Value = checked(f, &bad) })
	err := fs.Parse(args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return err
	case bad != nil:
		return bad
	}
	return usagef("an unknown flag, or a flag without its value; run %s -h for the flags", fs.Name())
}

func isBoolFlag(v flag.Value) bool {
	b, ok := v.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// checked wraps f's value so that a value it refuses records, in *bad, the
// command's own message about it.
func checked(f *flag.Flag, bad *error) flag.Value {
	v := checkedValue{Value: f.Value, name: f.Name, bad: bad}
	if isBoolFlag(f.Value) {
		return checkedBool{v}
	}
	return v
}

// checkedValue is a flag's value that explains what it refuses.
type checkedValue struct {
	flag.Value
	name string
	bad  *error
}

func (v checkedValue) Set(s string) error {
	err := v.Value.Set(s)
	if err != nil && *v.bad == nil {
		*v.bad = badValue(v.name, s, v.Value, err)
	}
	return err
}

// checkedBool is a checkedValue of a bool flag, which takes no value.
type checkedBool struct{ checkedValue }

func (checkedBool) IsBoolFlag() bool { return true }

// badValue explains why flag name refused s, with err, without echoing s.
func badValue(name, s string, v flag.Value, err error) error {
	var ue *usageError
	switch g, _ := v.(flag.Getter); {
	case errors.As(err, &ue):
		return err // already the command's own words
	case isBoolFlag(v):
		return usagef("-%s takes no value: write -%[1]s alone, or -%[1]s=false", name)
	case g != nil && isDuration(g.Get()):
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return usagef("-%s needs a unit, such as 5s or 2m", name)
		}
		return usagef("-%s takes a duration with a unit, such as 30s or 2m", name)
	}
	return usagef("invalid value for -%s; run econnect-token -h for usage", name)
}

func isDuration(v any) bool {
	_, ok := v.(time.Duration)
	return ok
}
