package main

import (
	"context"
	"flag"
)

// A mode is what a run does: print a token, or a subcommand.
type mode struct {
	name  string // the subcommand; "" for a plain run
	flags func(*flag.FlagSet, *options)
	// check completes and checks o, parsed from fs, before any I/O.
	check func(o *options, fs *flag.FlagSet, env func(string) string) error
	run   func(context.Context, *options, *process) error
	usage string // -h's text before the flags
}

// command is how the mode is invoked.
func (m *mode) command() string {
	if m.name == "" {
		return "econnect-token"
	}
	return "econnect-token " + m.name
}

// The modes. modeNamed lists the subcommands.
var (
	plainMode = &mode{flags: tokenFlags, check: checkPlain, run: runPlain, usage: plainUsage}
	proxyMode = &mode{name: "proxy", flags: proxyFlags, check: checkProxy, run: runProxy, usage: proxyUsage}
	execMode  = &mode{name: "exec", flags: execFlags, check: checkExec, run: runExec, usage: execUsage}
	fakeMode  = &mode{name: "fake", flags: fakeFlags, check: checkFake, run: runFake, usage: fakeUsage}
)

// modeNamed returns the subcommand called name, or nil.
func modeNamed(name string) *mode {
	for _, m := range []*mode{proxyMode, execMode, fakeMode} {
		if m.name == name {
			return m
		}
	}
	return nil
}
