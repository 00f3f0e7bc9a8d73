package main

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// An address is where -listen says to serve.
type address struct {
	network string // "tcp" or "unix"
	addr    string // host:port, or the socket's path
}

var errListen = usagef("-listen takes host:port with a loopback host (127.0.0.1, ::1 or localhost), " +
	"such as 127.0.0.1:8080, or unix:PATH")

// parseListen parses -listen: host:port with a loopback host, so that the
// token's power stays on this machine, or unix:PATH.
func parseListen(s string) (address, error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if path == "" {
			return address{}, errListen
		}
		return address{"unix", path}, nil
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil || !loopbackHost(host) {
		return address{}, errListen
	}
	return address{"tcp", s}, nil
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// listen listens on -listen's address. It returns the listener and where
// it listens: http://HOST:PORT, or unix:PATH.
func listen(s string) (net.Listener, string, error) {
	a, err := parseListen(s)
	if err != nil {
		return nil, "", err
	}
	if a.network == "unix" {
		ln, err := listenUnix(a.addr)
		return ln, "unix:" + a.addr, err
	}
	ln, err := net.Listen("tcp", a.addr)
	if err != nil {
		return nil, "", usagef("-listen: %v", err)
	}
	// localhost might not resolve to loopback on a strange host.
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err != nil || !ap.Addr().IsLoopback() {
		ln.Close()
		return nil, "", errListen
	}
	return ln, "http://" + ln.Addr().String(), nil
}

// listenUnix listens on a unix socket at path that only this user may
// connect to. The socket is made in a private directory, made mode 0600,
// then moved to path, so that no other user can connect in between. A
// socket already at path is replaced if nothing listens on it; any other
// file is left alone.
func listenUnix(path string) (net.Listener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".econnect-token-")
	if err != nil {
		return nil, usagef("-listen: %v", err)
	}
	defer os.Remove(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, usagef("-listen: %v", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // it moves
	if err = os.Chmod(tmp, 0o600); err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, usagef("-listen: %v", err)
	}
	return &unixListener{Listener: ln, path: path}, nil
}

// removeStaleSocket removes the socket at path, if there is one and
// nothing listens on it.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return usagef("-listen: %v", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return usagef("-listen: %s exists and is not a socket; remove it, or choose another path", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return usagef("-listen: another process listens on %s", path)
	}
	if err := os.Remove(path); err != nil {
		return usagef("-listen: removing the stale socket: %v", err)
	}
	return nil
}

// unixListener removes its socket file when first closed; by a second
// Close, another process may have put its own socket there.
type unixListener struct {
	net.Listener
	path string
	once sync.Once
}

func (l *unixListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		err = l.Listener.Close()
		os.Remove(l.path)
	})
	return err
}
