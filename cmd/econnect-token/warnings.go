package main

import (
	"context"
	"log/slog"
	"strings"
)

// warnings is the handler of the Logger the command gives the library: it
// writes warnings (level Warn and up) on stderr as one "econnect-token:
// warning: " line each, with the error the record carries. The library's
// messages hold neither the password nor a token.
//
// Unless all is set (the proxy, which runs for long), only the warnings
// about the cache are written: those that name the store (R32), which a
// run has seen by the time Flush returns. The others say how a login or
// renewal ended, which a run that prints a token or an error says itself;
// and the library writes them after it releases the callers, so that a
// run about to exit would print them at random, or not at all.
type warnings struct {
	p   *process
	all bool
}

func (w warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (w warnings) Handle(_ context.Context, r slog.Record) error {
	line, store := r.Message, false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "error":
			line += ": " + a.Value.String()
		case "store":
			store = true
		}
		return true
	})
	if w.all || store {
		// One line, whatever a server's answer quoted in an error holds.
		w.p.warn("%s", strings.Join(strings.Fields(line), " "))
	}
	return nil
}

func (w warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnings) WithGroup(string) slog.Handler      { return w }
