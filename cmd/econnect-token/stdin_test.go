package main

import (
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"unicode/utf16"
)

// utf16Text encodes s as UTF-16 in order, after a byte order mark.
func utf16Text(order binary.AppendByteOrder, s string) string {
	b := order.AppendUint16(nil, 0xfeff)
	for _, u := range utf16.Encode([]rune(s)) {
		b = order.AppendUint16(b, u)
	}
	return string(b)
}

// utf16Units encodes units, lone surrogates and all, as UTF-16LE after a
// byte order mark.
func utf16Units(units ...uint16) string {
	b := binary.LittleEndian.AppendUint16(nil, 0xfeff)
	for _, u := range units {
		b = binary.LittleEndian.AppendUint16(b, u)
	}
	return string(b)
}

func TestReadLine(t *testing.T) {
	t.Parallel()
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		name, in, want string
		rest           string // what is left unread
		wantErr        bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "no newline", in: "pw", want: "pw"},
		{name: "LF", in: "pw\n", want: "pw"},
		{name: "CR LF", in: "pw\r\n", want: "pw"},
		{name: "spaces kept", in: " pw \t\n", want: " pw \t"},
		{name: "first line only", in: "pw\nsecond\n", want: "pw", rest: "second\n"},
		{name: "empty first line", in: "\npw\n", want: "", rest: "pw\n"},
		{name: "lone CR kept", in: "p\rw\n", want: "p\rw"},
		{name: "UTF-8", in: "pässwörd\n", want: "pässwörd"},
		{name: "UTF-8 BOM", in: "\xef\xbb\xbfpässwörd\r\n", want: "pässwörd"},
		{name: "UTF-8 BOM alone", in: "\xef\xbb\xbf", want: ""},
		{name: "UTF-8 non-BMP", in: "pw-\U0001F600\n", want: "pw-\U0001F600"},
		{name: "starts like a BOM", in: "\xef\xbb", wantErr: true},
		{name: "not UTF-8", in: "p\xe9\n", wantErr: true}, // Windows-1252 é
		{name: "UTF-16LE CR LF", in: utf16Text(le, "pässwörd\r\nnext\r\n"), want: "pässwörd", rest: utf16Text(le, "next\r\n")[2:]},
		{name: "UTF-16BE CR LF", in: utf16Text(be, "pässwörd\r\n"), want: "pässwörd"},
		{name: "UTF-16LE no newline", in: utf16Text(le, "pw"), want: "pw"},
		{name: "UTF-16LE surrogate pair", in: utf16Text(le, "pw-\U0001F600-x\r\n"), want: "pw-\U0001F600-x"},
		{name: "UTF-16BE surrogate pair", in: utf16Text(be, "\U0001F600\n"), want: "\U0001F600"},
		{name: "UTF-16 LF byte inside a character", in: utf16Text(le, "\u010a\n"), want: "\u010a"},
		{name: "UTF-16 lone high surrogate", in: utf16Units('p', 0xd83d, 'w', '\r', '\n'), wantErr: true},
		{name: "UTF-16 lone low surrogate", in: utf16Units('p', 0xde00, '\n'), wantErr: true},
		{name: "UTF-16 high surrogate at the end", in: utf16Units('p', 0xd83d), wantErr: true},
		{name: "UTF-16 odd byte", in: utf16Text(le, "pw") + "x", wantErr: true},
		{name: "longest line", in: strings.Repeat("x", maxLine-1) + "\n", want: strings.Repeat("x", maxLine-1)},
		{name: "too long", in: strings.Repeat("x", maxLine+1), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := strings.NewReader(tt.in)
			got, err := firstLine(t.Context(), r)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("firstLine(%.40q) = %.40q, %v, want %.40q, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("firstLine(%.40q) error = %v, quotes the line", tt.in, err)
			}
			if rest, _ := io.ReadAll(r); !tt.wantErr && string(rest) != tt.rest {
				t.Errorf("firstLine(%.40q) left %q unread, want %q", tt.in, rest, tt.rest)
			}
		})
	}
}

// TestPasswordStdinEncodings checks that the server receives exactly the
// password, whatever encoding the file on stdin has.
func TestPasswordStdinEncodings(t *testing.T) {
	t.Parallel()
	const password = "pä$$-\U0001F600-SENTINEL"
	s := newServer(t, false)
	s.AddUser("windows", password)
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		name, stdin string
		code        int
	}{
		{"UTF-8", password + "\n", exitOK},
		{"UTF-8 without newline", password, exitOK},
		{"UTF-8 BOM, CR LF", "\xef\xbb\xbf" + password + "\r\n", exitOK},
		{"UTF-16LE BOM, CR LF (PowerShell 5.1's >)", utf16Text(le, password+"\r\n"), exitOK},
		{"UTF-16BE BOM, CR LF", utf16Text(be, password+"\r\n"), exitOK},
		{"UTF-16LE without newline", utf16Text(le, password), exitOK},
		{"UTF-16 lone surrogate", utf16Units('p', 0xd83d, 'w', '\r', '\n'), exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"ECONNECT_URL": s.URL, "ECONNECT_USERNAME": "windows"}
			r := runInProcess(t, env, tt.stdin, "-password-stdin", "-no-cache")
			if tt.code != exitOK {
				checkFailure(t, r, tt.code, "-password-stdin: reading stdin: the first line is not valid UTF-16 text", password)
				return
			}
			if r.code != exitOK || !jwtLine.MatchString(r.stdout) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 0 and a token", r.code, r.stdout, r.stderr)
			}
		})
	}
	if st := s.Stats(); st.Refused != 0 {
		t.Errorf("server refused %d logins, want 0: a badly decoded password counts toward the lockout", st.Refused)
	}
}
