package main

import (
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

const plainUsage = `Usage: econnect-token [flags]
       econnect-token proxy [flags]            (econnect-token proxy -h)
       econnect-token exec [flags] -- CMD ARGS...  (econnect-token exec -h)
       econnect-token fake [-listen ADDR] [-lifetime D]  (econnect-token fake -h)

econnect-token logs in to an eConnect Identities server and prints a token
(a JWT) on stdout, alone on its line, for scripts. The password comes from
ECONNECT_PASSWORD or, with -password-stdin, from the first line of stdin;
never from a flag, and it is never printed.

Examples:
  # cloud: log in, then call the API; -header keeps the token off curl's
  # command line, where any local user could read it
  export ECONNECT_URL=https://customer.econnectcloud.com/identities
  export ECONNECT_USERNAME=camera-1
  read -rs ECONNECT_PASSWORD && export ECONNECT_PASSWORD
  econnect-token -header | curl -fsS -H @- "$ECONNECT_URL/api/v1/people/$ID"

  # on premises, self-signed certificate, password from a file
  econnect-token -url https://10.0.0.5:5009 -user camera-1 -cacert server.pem \
      -password-stdin < password.txt

  # run a command with the token in $ECONNECT_TOKEN, once more with a new
  # token if curl -f exits 22 (the server refused the token); printf is a
  # shell builtin, so the token stays off command lines here too
  econnect-token exec -- sh -c 'printf "Authorization: Bearer %s\n" "$ECONNECT_TOKEN" |
      curl -fsS -H @- "$ECONNECT_URL/api/v1/people/$ID"'

  # a local proxy that adds the token to every request, renews it and
  # heals refusals, for programs that run for a long time
  econnect-token proxy -listen 127.0.0.1:8080 &
  curl -fsS "http://127.0.0.1:8080/api/v1/people/$ID"

  # renew a token before it expires (no password needed)
  TOKEN=$(ECONNECT_TOKEN=$TOKEN econnect-token -renew)

  # after the server refused the token (key rotation, revoked session): the
  # cached one if another run got a newer one, else a login shared by all
  # the runs that saw the refusal
  TOKEN=$(ECONNECT_TOKEN=$TOKEN econnect-token -refused)

  # the token with its expiry and username
  econnect-token -json

  # watch the whole flow against a fake server built into the command
  econnect-token -demo

Flags:
`

const plainTail = `
Token cache:
  Runs share their tokens through a private directory (0700, files 0600):
  $ECONNECT_CACHE_DIR or, by default, econnect in the user's cache directory
  (on Linux ~/.cache/econnect), one file per server, user and -allow-http.
  A run prints the cached token, with no network call, while it is usable;
  once it is due for renewal, the run renews it and prints the new one (or
  the cached one with a warning if the renewal fails), and it logs in when
  there is none usable. Runs that need a token at the same moment make one
  login between them. After the server refused a token, -refused with that
  token prints the cached one if it is newer, else logs in (once for all the
  runs that saw the refusal); -fresh logs in whatever the cache holds;
  -no-cache neither reads nor writes it. A file in the cache that is not a
  private regular file is ignored with a warning and replaced. The cache
  never remembers a refused login: with a wrong password, every run tries
  once more.

Environment:
  ECONNECT_URL        default for -url
  ECONNECT_USERNAME   default for -user
  ECONNECT_PASSWORD   the password, unless -password-stdin
  ECONNECT_TOKEN      the token for -renew or -refused; if unset, the first
                      line of stdin
  ECONNECT_CACHE_DIR  the token cache's directory
` + exitUsageText

const exitUsageText = `
Exit status:
  0  done: a token was printed; also for -h and -version
  1  the server refused: wrong credentials, a refused token, another 4xx
     answer; stop, and check the account
  2  usage or configuration: a flag, a missing URL, username or password, a
     bad URL, a certificate that fails verification, plain http refused
     without -allow-http, an auth call answered with a redirect or 404 (not
     the service root); fix the command line
  3  the server is unavailable: network errors, timeouts, 5xx, 429, a
     garbled answer; retry later
  130, 143  interrupted by SIGINT or SIGTERM
  exec exits with its command's status instead, once it has run it.
`

const proxyUsage = `Usage: econnect-token proxy [-listen ADDR] [flags]

proxy serves, on loopback or a unix socket, a reverse proxy to -url that adds
the token to every request: path P goes to -url's path joined with P, and a
client's own Authorization header is replaced. It logs in on start-up, even
with a token cached (a wrong password ends it at once, with status 1),
renews the token in the background, and after a 401 logs in again and sends
the request once more (request bodies up to 16 MiB are held for that; a
larger body streams, and its 401 goes back to the client). A request for
which no token can be had is answered 502 (503 while the server is
unavailable). The token never reaches the clients.

Any local process that can connect to it calls the API as this account: on
TCP, any process on this machine; on a unix socket (mode 0600), this user's.

Its first line on stderr is "econnect-token: proxy listening on
http://HOST:PORT" (or unix:PATH). It serves until SIGINT or SIGTERM, then
lets the requests in flight finish (up to 10 s) and exits 130 or 143.

Example:
  econnect-token proxy -listen 127.0.0.1:8080 &
  curl -fsS "http://127.0.0.1:8080/api/v1/people/$ID"

Flags:
`

const execUsage = `Usage: econnect-token exec [-status N] [flags] -- CMD ARGS...

exec runs CMD with the token in $ECONNECT_TOKEN (and without
$ECONNECT_PASSWORD), its stdin, stdout and stderr the command's own. If CMD
exits with status N (22 by default: curl -f's status for an HTTP error such
as a refused token), exec gets a new token and runs CMD once more. It exits
with CMD's status, 128+N if signal N killed it; SIGINT and SIGTERM are passed
on to CMD. When no token can be had, CMD is not run and the status is 1, 2
or 3 as for a plain run.

Examples:
  econnect-token exec -- sh -c 'printf "Authorization: Bearer %s\n" "$ECONNECT_TOKEN" |
      curl -fsS -H @- "$ECONNECT_URL/api/v1/people/$ID"'
  econnect-token exec -- python3 upload.py   # exits 22 on a 401

Flags:
`

const fakeUsage = `Usage: econnect-token fake [-listen ADDR] [-lifetime D]

fake runs a fake eConnect Identities server, for scripts' tests, until
SIGINT or SIGTERM (then it exits 130 or 143). It prints on stdout, one a
line, ECONNECT_URL=..., ECONNECT_USERNAME=... and ECONNECT_PASSWORD=... (a
password it made up), ready to export:

  exec 3< <(econnect-token fake -lifetime 10s)
  read -r url <&3; read -r user <&3; read -r password <&3
  export "$url" "$user" "$password"
  ./my-script.sh    # the script under test, which runs econnect-token

Flags:
`

// printUsage writes the help of m's -h.
func printUsage(w io.Writer, m *mode) {
	fmt.Fprint(w, m.usage)
	shown := flag.NewFlagSet(m.command(), flag.ContinueOnError)
	newFlagSet(m, &options{}).VisitAll(func(f *flag.Flag) {
		if f.Usage != "" { // hidden flags have none
			shown.Var(f.Value, f.Name, f.Usage)
		}
	})
	shown.SetOutput(w)
	shown.PrintDefaults()
	if m == plainMode {
		fmt.Fprint(w, plainTail)
	} else if m != fakeMode {
		fmt.Fprint(w, exitUsageText)
	}
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
