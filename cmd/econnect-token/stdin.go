package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxLine bounds the first line of stdin: a password or a JWT.
const maxLine = 64 << 10

// firstLine returns the first line of r, decoded by readLine. It returns
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

// readLine returns the first line of r without its line ending (LF or
// CR LF); other spaces are kept, as they may be part of a password. A
// UTF-8 byte order mark is dropped; after a UTF-16 one (LE or BE, as
// PowerShell 5.1's > writes) the line is UTF-16. It reads no further than
// the line, so that the command exec runs gets the rest of stdin.
func readLine(r io.Reader) (string, error) {
	in := &unbuffered{r: r}
	order, err := in.mark()
	switch {
	case err != nil:
		return "", err
	case order != nil:
		return in.utf16Line(order)
	}
	return in.utf8Line()
}

var (
	errTooLong = errors.New("the first line is longer than 64 KiB")
	errUTF8    = errors.New("the first line is not UTF-8 text: save the file as UTF-8 (or UTF-16 with a byte order mark)")
	errUTF16   = errors.New("the first line is not valid UTF-16 text: save the file again as UTF-8")
)

// unbuffered reads r a byte at a time, keeping what it read in line.
type unbuffered struct {
	r    io.Reader
	line []byte
}

// next appends the next n bytes of r to u.line; io.EOF when there are none.
func (u *unbuffered) next(n int) error {
	if len(u.line)+n > maxLine {
		return errTooLong
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(u.r, b); err != nil {
		return err
	}
	u.line = append(u.line, b...)
	return nil
}

// byteOrderMarks are the marks readLine knows, with the UTF-16 byte order
// each calls for (nil: UTF-8).
var byteOrderMarks = []struct {
	mark  string
	order binary.ByteOrder
}{
	{"\xef\xbb\xbf", nil},
	{"\xff\xfe", binary.LittleEndian},
	{"\xfe\xff", binary.BigEndian},
}

// mark reads a byte order mark, if r starts with one, and returns the
// UTF-16 byte order it calls for. It reads a byte only while what it read
// may still be a mark; bytes that are none stay in u.line, as the start of
// a UTF-8 line.
func (u *unbuffered) mark() (binary.ByteOrder, error) {
	for _, m := range byteOrderMarks {
		for len(u.line) < len(m.mark) && strings.HasPrefix(m.mark, string(u.line)) {
			if err := u.next(1); err == io.EOF {
				return nil, nil
			} else if err != nil {
				return nil, err
			}
		}
		if string(u.line) == m.mark {
			u.line = u.line[:0]
			return m.order, nil
		}
	}
	return nil, nil
}

// utf8Line reads the rest of a UTF-8 line.
func (u *unbuffered) utf8Line() (string, error) {
	for len(u.line) == 0 || u.line[len(u.line)-1] != '\n' {
		if err := u.next(1); err == io.EOF {
			break
		} else if err != nil {
			return "", err
		}
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(u.line), "\n"), "\r")
	if !utf8.ValidString(s) {
		return "", errUTF8
	}
	return s, nil
}

// utf16Line reads a UTF-16 line in byte order order, and returns it as
// UTF-8. A lone surrogate or an odd byte at the end is an error.
func (u *unbuffered) utf16Line(order binary.ByteOrder) (string, error) {
	var units []uint16
	for {
		err := u.next(2)
		if err == io.EOF {
			break
		}
		if err == io.ErrUnexpectedEOF {
			return "", errUTF16
		}
		if err != nil {
			return "", err
		}
		unit := order.Uint16(u.line[len(u.line)-2:])
		if unit == '\n' {
			break
		}
		units = append(units, unit)
	}
	if n := len(units); n > 0 && units[n-1] == '\r' {
		units = units[:n-1]
	}
	return decodeUTF16(units)
}

// decodeUTF16 decodes units, surrogate pairs included; unlike
// utf16.Decode, it refuses a lone surrogate rather than replace it, since
// a password so changed would be refused by the server.
func decodeUTF16(units []uint16) (string, error) {
	var b strings.Builder
	for i := 0; i < len(units); i++ {
		r := rune(units[i])
		if utf16.IsSurrogate(r) {
			if i+1 == len(units) {
				return "", errUTF16
			}
			if r = utf16.DecodeRune(r, rune(units[i+1])); r == utf8.RuneError {
				return "", errUTF16
			}
			i++
		}
		b.WriteRune(r)
	}
	return b.String(), nil
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
