package main

import (
	"fmt"
	"io"
)

const usageHead = `Usage: econnect-token [flags]

econnect-token logs in to an eConnect Identities server and prints a token
(a JWT) on stdout, alone on its line, for scripts. The password comes from
ECONNECT_PASSWORD or, with -password-stdin, from the first line of stdin;
never from a flag, and it is never printed.

Examples:
  # cloud: log in, then call the API with the token
  export ECONNECT_URL=https://customer.econnectcloud.com/identities
  export ECONNECT_USERNAME=camera-1
  read -rs ECONNECT_PASSWORD && export ECONNECT_PASSWORD
  TOKEN=$(econnect-token) || exit
  curl -H "Authorization: Bearer $TOKEN" "$ECONNECT_URL/api/v1/..."

  # on premises, self-signed certificate, password from a file
  econnect-token -url https://10.0.0.5:5009 -user camera-1 -cacert server.pem \
      -password-stdin < password.txt

  # renew a token before it expires (no password needed)
  TOKEN=$(ECONNECT_TOKEN=$TOKEN econnect-token -renew)

  # after the server refused the cached token (key rotation, revoked session)
  TOKEN=$(econnect-token -fresh)

  # the token with its expiry and username
  econnect-token -json

  # watch the whole flow against a fake server built into the command
  econnect-token -demo

Flags:
`

const usageTail = `
Token cache:
  The token is cached per server and user, in a private file (mode 0600) in
  $ECONNECT_CACHE_DIR or, by default, econnect in the user's cache directory
  (on Linux ~/.cache/econnect). A run prints the cached token, with no network
  call, until its renewal point; then it renews it, and it logs in when there
  is none, it has expired, or the server refused to renew it. -no-cache
  neither reads nor writes the cache, -fresh logs in whatever it holds, and
  deleting the directory clears it. The cache never remembers a refused login:
  with a wrong password, every run tries once more.

Environment:
  ECONNECT_URL        default for -url
  ECONNECT_USERNAME   default for -user
  ECONNECT_PASSWORD   the password, unless -password-stdin
  ECONNECT_TOKEN      the token for -renew; if unset, the first line of stdin
  ECONNECT_CACHE_DIR  the token cache's directory

Exit status:
  0  a token was printed; also for -h and -version
  1  authentication failed: wrong credentials, token refused, server
     unreachable or failing
  2  usage error: a missing URL, username, password or token, a bad flag,
     an unreadable -cacert file, or plain http refused without -allow-http
  130, 143  interrupted by SIGINT or SIGTERM
`

// printUsage writes the help of -h.
func printUsage(w io.Writer) {
	fs := newFlagSet(&options{})
	fs.SetOutput(w)
	fmt.Fprint(w, usageHead)
	fs.PrintDefaults()
	fmt.Fprint(w, usageTail)
}
