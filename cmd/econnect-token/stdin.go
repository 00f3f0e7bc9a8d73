package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
)

// maxLine bounds the first line of stdin: a password or a JWT.
const maxLine = 64 << 10

// firstLine returns the first line of r without its line ending (\n or
// \r\n). Other spaces are kept: they may be part of a password. It returns
// at once when ctx ends, so that Ctrl-C ends a wait for a terminal; the
// read itself then ends with the process.
func firstLine(ctx context.Context, r io.Reader) (string, error) {
	if r == nil {
		return "", nil
	}
	type line struct {
		s   string
		err error
	}
	ch := make(chan line, 1)
	go func() {
		s, err := readLine(r)
		ch <- line{s, err}
	}()
	select {
	case l := <-ch:
		return l.s, l.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// readLine reads the first line of r.
func readLine(r io.Reader) (string, error) {
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

// isTerminal reports whether f is most likely a terminal: a character
// device other than the null device. (Telling a terminal for sure takes a
// system call per platform; a wrong guess only adds a line on stderr.)
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
