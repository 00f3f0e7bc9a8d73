package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/oauth2"
)

// runExec is econnect-token exec: it runs the command with the token in
// ECONNECT_TOKEN and, if it exits with -status, once more with a new token.
func runExec(ctx context.Context, o *options, p *process) error {
	// A mistyped command costs no login.
	if _, err := exec.LookPath(o.args[0]); err != nil {
		return startError(err)
	}
	g, err := startGetter(ctx, o, p)
	if err != nil {
		return err
	}
	defer g.hc.CloseIdleConnections()
	ts, tok, err := g.obtainWithin(ctx)
	if err != nil {
		return err
	}
	defer flushWithin(ctx, ts, o.timeout) // the saves to the cache, for the next run
	code, err := runCommand(ctx, o.args, tok, p)
	if err != nil || code != o.status || ctx.Err() != nil {
		return exitWith(code, err)
	}
	// The command says the server refused tok: the token that replaces it
	// is shared through the cache by every exec that saw the refusal.
	ts, tok, err = g.replaceWithin(ctx, tok)
	defer flushWithin(ctx, ts, o.timeout) // with a failed login, the refused token's deletion
	if err != nil {
		return err
	}
	return exitWith(runCommand(ctx, o.args, tok, p))
}

// exitWith is the end of exec after the command exited with code, or
// could not start with err.
func exitWith(code int, err error) error {
	if err != nil {
		return err
	}
	return &commandExit{code: code}
}

// runCommand runs argv with tok in its environment and returns its exit
// status. A signal that ends ctx is passed on to the command, and the run
// waits for it to exit.
func runCommand(ctx context.Context, argv []string, tok *oauth2.Token, p *process) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = commandEnv(p.environ(), tok)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.stdin, p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		return 0, startError(err)
	}
	stop := context.AfterFunc(ctx, func() {
		if sig := signalOf(ctx); sig == nil || cmd.Process.Signal(sig.sig) != nil {
			cmd.Process.Kill()
		}
	})
	defer stop()
	cmd.Wait() // an error is in ProcessState, or lost output
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitSignal + int(ws.Signal()), nil
	}
	return cmd.ProcessState.ExitCode(), nil
}

// commandEnv is env with tok as ECONNECT_TOKEN and without the password,
// which the command has no use for.
func commandEnv(env []string, tok *oauth2.Token) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "ECONNECT_TOKEN=") && !strings.HasPrefix(kv, "ECONNECT_PASSWORD=") {
			out = append(out, kv)
		}
	}
	return append(out, "ECONNECT_TOKEN="+tok.AccessToken)
}

// startError is the end of exec when the command could not start: status
// 127 when it was not found, 126 otherwise, as shells have it.
func startError(err error) error {
	code := 126
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		code = 127
	}
	return &commandExit{code: code, err: err}
}
