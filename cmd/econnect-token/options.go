package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"net/url"
	"strings"
	"time"
)

// options is what the flags, the environment and stdin ask for.
type options struct {
	mode           *mode
	url, user      string
	passwordStdin  bool
	cacert         string
	insecure       bool
	allowHTTP      bool
	timeout        time.Duration
	noCache, fresh bool

	renew, refused bool // plain runs
	json, header   bool
	demo, version  bool
	listen         string        // proxy and fake
	status         int           // exec
	lifetime       time.Duration // fake
	args           []string      // exec's command

	base     *url.URL // url, parsed
	password string   // from ECONNECT_PASSWORD or stdin; never from a flag
}

// parseArgs reads the subcommand, its flags, then the environment for what
// the flags leave out. It returns flag.ErrHelp for -h. Stdin is read later,
// by readPassword and by the renewal.
func parseArgs(args []string, env func(string) string) (*options, error) {
	o := &options{mode: plainMode}
	if len(args) > 0 {
		if m := modeNamed(args[0]); m != nil {
			o.mode, args = m, args[1:]
		}
	}
	fs := newFlagSet(o.mode, o)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if m := modeNamed(fs.Arg(0)); o.mode == plainMode && m != nil {
		return parseMode(m, fs, env)
	}
	o.args = fs.Args()
	return o, o.mode.check(o, fs, env)
}

// parseMode parses the flags after subcommand m, with those before it
// (econnect-token -no-cache exec …) carried over.
func parseMode(m *mode, before *flag.FlagSet, env func(string) string) (*options, error) {
	o := &options{mode: m}
	fs := newFlagSet(m, o)
	var err error
	before.Visit(func(f *flag.Flag) {
		if err == nil && fs.Set(f.Name, f.Value.String()) != nil {
			err = usagef("%s takes no -%s; drop it", m.command(), f.Name)
		}
	})
	if err == nil {
		err = parseFlags(fs, before.Args()[1:])
	}
	if err != nil {
		return o, err
	}
	o.args = fs.Args()
	return o, m.check(o, fs, env)
}

// checkPlain checks a plain run, which prints a token.
func checkPlain(o *options, fs *flag.FlagSet, env func(string) string) error {
	switch {
	case fs.NArg() > 0:
		return noArguments()
	case o.version:
		return nil
	case o.json && o.header:
		return usagef("-json and -header are two ways to print the token; drop one")
	case o.demo && o.timeout <= 0:
		return errTimeout
	case o.demo:
		return checkDemo(fs)
	}
	if err := checkTokenFlags(o, env); err != nil {
		return err
	}
	return o.complete(env)
}

// checkTokenFlags refuses the flags a plain run cannot do together: -renew
// and -refused say where the token to replace comes from, and -fresh that
// none is needed.
func checkTokenFlags(o *options, env func(string) string) error {
	switch {
	case o.renew && o.passwordStdin:
		return usagef("-renew uses no password; drop -password-stdin")
	case o.renew && o.fresh:
		return usagef("-fresh logs in and -renew does not; drop one")
	case o.renew && o.refused:
		return usagef("-renew renews a token and -refused replaces one the server refused; drop one")
	case o.refused && o.fresh:
		return usagef("-fresh logs in whatever the cache holds, -refused only if it holds the refused token; drop one")
	case o.refused && o.passwordStdin && env("ECONNECT_TOKEN") == "":
		return usagef("-refused with -password-stdin: stdin holds the password; set ECONNECT_TOKEN to the refused token")
	}
	return nil
}

// noArguments is the error for arguments after the flags, which are not
// echoed: one might be a password.
func noArguments() error {
	return usagef("unexpected arguments after the flags; the password is never an argument: " +
		"set ECONNECT_PASSWORD or use -password-stdin")
}

var errTimeout = usagef("-timeout must be positive, such as 30s")

// checkDemo refuses the flags that -demo has no use for.
func checkDemo(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "demo", "json", "header", "timeout":
		default:
			if err == nil {
				err = usagef("-demo runs its own server and takes no -%s; drop it, or drop -demo", f.Name)
			}
		}
	})
	return err
}

// checkProxy checks econnect-token proxy.
func checkProxy(o *options, fs *flag.FlagSet, env func(string) string) error {
	if fs.NArg() > 0 {
		return noArguments()
	}
	if _, err := parseListen(o.listen); err != nil {
		return err
	}
	return o.complete(env)
}

// checkExec checks econnect-token exec.
func checkExec(o *options, _ *flag.FlagSet, env func(string) string) error {
	switch {
	case len(o.args) == 0:
		return usagef("exec: no command to run: write econnect-token exec [flags] -- CMD ARGS...")
	case o.status < 1 || o.status > 255:
		return usagef("-status takes an exit status from 1 to 255, such as 22 for curl -f")
	}
	return o.complete(env)
}

// checkFake checks econnect-token fake.
func checkFake(o *options, fs *flag.FlagSet, _ func(string) string) error {
	switch {
	case fs.NArg() > 0:
		return usagef("fake takes no arguments, only -listen and -lifetime")
	case o.lifetime < time.Second:
		return usagef("-lifetime must be at least 1s: tokens carry whole seconds")
	case strings.HasPrefix(o.listen, "unix:"):
		return usagef("fake listens on TCP only: ECONNECT_URL cannot name a unix socket")
	}
	_, err := parseListen(o.listen)
	return err
}

// complete fills in what the login flags leave out from env, and checks
// that what is needed is there.
func (o *options) complete(env func(string) string) error {
	o.url = cmp.Or(o.url, env("ECONNECT_URL"))
	o.user = cmp.Or(o.user, env("ECONNECT_USERNAME"))
	switch {
	case o.timeout <= 0:
		return errTimeout
	case o.url == "":
		return usagef("no server URL: use -url or set ECONNECT_URL, such as https://customer.econnectcloud.com/identities")
	case o.cacert != "" && o.insecure:
		return usagef("-cacert and -insecure-skip-verify contradict each other; drop one")
	}
	var err error
	if o.base, err = parseURL(o.url); err != nil || o.renew {
		return err
	}
	if o.user == "" {
		return usagef("no username: use -user or set ECONNECT_USERNAME")
	}
	if !o.passwordStdin {
		if o.password = env("ECONNECT_PASSWORD"); o.password == "" {
			return usagef("no password: set ECONNECT_PASSWORD or use -password-stdin")
		}
	}
	return nil
}

// parseURL parses -url into what the cache key and the proxy need. Whether
// plain http is allowed is the library's rule, not checked here. The URL
// itself is never echoed: it might hold a password.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, usagef("the server URL is not a URL; give the service root, such as https://customer.econnectcloud.com/identities")
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "":
		return nil, usagef("the server URL must be an absolute https:// (or http://) URL, such as https://host:5009")
	case u.User != nil:
		return nil, usagef("the server URL must not hold a username or password; use -user, and ECONNECT_PASSWORD or -password-stdin")
	}
	return u, nil
}

// readPassword reads the password from stdin for -password-stdin, saying
// on stderr what it waits for when stdin is a terminal.
func (o *options) readPassword(ctx context.Context, p *process) error {
	if !o.passwordStdin {
		return nil
	}
	if p.stdinTerminal {
		p.say("-password-stdin: type the password and press Enter (it shows as you type; prefer < file or a pipe)")
	}
	var err error
	if o.password, err = firstLine(ctx, p.stdin); err != nil {
		return stdinError("-password-stdin", err)
	}
	if o.password == "" {
		return usagef("-password-stdin: the first line of stdin is empty; pipe the password in, such as < password.txt")
	}
	return nil
}

// stdinError is a failure to read stdin for flag; an interruption stays
// one, so that it ends with the signal's exit status.
func stdinError(flag string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return usagef("%s: reading stdin: %v", flag, err)
}
