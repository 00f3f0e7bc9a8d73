package main

import (
	"context"
	"strings"
)

// The token a run is given, for -renew and -refused: ECONNECT_TOKEN, else
// the first line of stdin. White space around it is dropped.

// envToken returns the token in ECONNECT_TOKEN, or "".
func (p *process) envToken() string {
	return strings.TrimSpace(p.getenv("ECONNECT_TOKEN"))
}

// readToken reads the token on the first line of stdin for flag, saying
// first, when stdin is a terminal, that it waits for what, such as "paste
// the token to renew".
func (p *process) readToken(ctx context.Context, flag, what string) (string, error) {
	if p.stdinTerminal {
		p.say("%s: %s and press Enter (or set ECONNECT_TOKEN)", flag, what)
	}
	raw, err := firstLine(ctx, p.stdin)
	if err != nil {
		return "", stdinError(flag, err)
	}
	return strings.TrimSpace(raw), nil
}
