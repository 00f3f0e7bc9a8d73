package apitest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
)

// What a DirStore writes names nobody and holds no password: file names
// carry neither the host nor the user, no byte of any file is the password
// or its SHA-256 in hex or base64, and on Unix the directory is 0700 and
// its files 0600. Two users on one server, and the same server named
// localhost, make three keys.
func TestDirStoreNamesNobodyAndHoldsNoPassword(t *testing.T) {
	srv := econnecttest.NewServer()
	t.Cleanup(srv.Close)
	const otherUser, otherPassword = "camera-2", "pw-SENTINEL-other-41d8"
	srv.AddUser(testUser, testPassword)
	srv.AddUser(otherUser, otherPassword)
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	dir := filepath.Join(t.TempDir(), "state", "tokens") // parents made too
	accts := []account{
		{srv.URL, testUser, testPassword},
		{srv.URL, otherUser, otherPassword},
		{byName, testUser, testPassword},
	}
	for _, a := range accts {
		cfg := econnect.Config{BaseURL: a.url, Username: a.user, Password: a.password, Store: econnect.DirStore(dir)}
		startSource(t.Context(), t, &cfg)
	}
	if n := srv.Stats().Logins; n != len(accts) {
		t.Errorf("%d sources on three keys made %d logins, want %d", len(accts), n, len(accts))
	}
	wantPrivateStore(t, dir, len(accts), accts...)
}

// account is where and as whom a source logs in.
type account struct {
	url, user, password string
}

// wantPrivateStore checks dir, the directory of a DirStore that holds the
// tokens of accts under keys keys: a token file and a lock file per key
// and nothing else (no temporary file left behind), no file name holding
// the host, the user or the password of an account, no byte holding a
// password in any form, and on Unix a 0700 directory of regular 0600
// files.
func wantPrivateStore(t *testing.T, dir string, keys int, accts ...account) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2*keys {
		t.Errorf("the store holds %d files, want %d (a token and a lock per key)", len(entries), 2*keys)
	}
	wantMode(t, dir, fs.ModeDir|0o700)
	secrets := passwordForms(accts)
	for _, e := range entries {
		name := e.Name()
		for _, c := range append(inClear(t, accts), secrets...) {
			if strings.Contains(strings.ToLower(name), strings.ToLower(c)) {
				t.Errorf("file name %q holds %q in clear", name, c)
			}
		}
		path := filepath.Join(dir, name)
		wantMode(t, path, 0o600)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("file %q holds a password (or a digest of one): %q", name, s)
			}
		}
	}
}

// wantMode checks, where modes say who may use a file (not Windows), that
// path is not a link and has exactly the type and permissions want.
func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "windows" {
		want, fi = want.Type(), typeOnly{fi}
	}
	if got := fi.Mode(); got != want {
		t.Errorf("%s has mode %v, want %v", filepath.Base(path), got, want)
	}
}

// typeOnly hides the permissions Windows makes up from a mode.
type typeOnly struct{ fs.FileInfo }

func (f typeOnly) Mode() fs.FileMode { return f.FileInfo.Mode().Type() }

// inClear returns what no file name may hold: each account's user, host
// and host:port.
func inClear(t *testing.T, accts []account) []string {
	t.Helper()
	var names []string
	for _, a := range accts {
		u, err := url.Parse(a.url)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, a.user, u.Hostname(), u.Host)
	}
	return names
}

// passwordForms returns each account's password, in clear and in base64,
// and its SHA-256 in hex and base64.
func passwordForms(accts []account) []string {
	var forms []string
	for _, a := range accts {
		sum := sha256.Sum256([]byte(a.password))
		forms = append(forms, a.password, hex.EncodeToString(sum[:]), strings.ToUpper(hex.EncodeToString(sum[:])))
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			forms = append(forms, enc.EncodeToString(sum[:]), enc.EncodeToString([]byte(a.password)))
		}
	}
	return forms
}
