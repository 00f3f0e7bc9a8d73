package econnect_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

const face = `{"expanded":"aGVsbG8=","detectorName":"gate-2","ianaTimeZone":"Europe/Paris","detectTimeUtc":"2026-11-29T12:00:00Z"}`

// Config.Client is the one line most programs need: the client logs in on
// first use, renews the token before it expires, and heals a 401.
func ExampleConfig_Client() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")

	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	client := cfg.Client(context.Background())

	resp, err := client.Post(srv.URL+"/api/v1/faceEdge/publish", "application/json", strings.NewReader(face))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	srv.RotateKey() // every token issued so far is now refused
	resp, err = client.Post(srv.URL+"/api/v1/faceEdge/publish", "application/json", strings.NewReader(face))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "after a key rotation; logins:", srv.Stats().Logins)
	// Output:
	// 200 OK
	// 200 OK after a key rotation; logins: 2
}

// Config.TokenSource drops into oauth2.NewClient and any other oauth2-aware
// library; oauth2.NewClient keeps its renewal point.
func ExampleConfig_TokenSource() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")

	ctx := context.Background()
	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	client := oauth2.NewClient(ctx, cfg.TokenSource(ctx))

	for range 3 {
		resp, err := client.Post(srv.URL+"/api/v1/faceEdge/publish", "application/json", strings.NewReader(face))
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	fmt.Println("logins:", srv.Stats().Logins)
	// Output:
	// 200 OK
	// 200 OK
	// 200 OK
	// logins: 1
}

// Config.Token logs in once; the token's Expiry comes from the JWT.
func ExampleConfig_Token() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")
	srv.SetLifetime(20 * time.Minute)

	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	tok, err := cfg.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Type(), tok.Extra("username"), time.Until(tok.Expiry).Round(time.Minute))
	// Output: Bearer camera-1 20m0s
}

// A program that was handed a token, and no password, renews it for as long
// as the server allows.
func ExampleConfig_TokenSourceFrom() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")
	saved, err := (&econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}).Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}

	tokenOnly := &econnect.Config{BaseURL: srv.URL}
	ts := tokenOnly.TokenSourceFrom(context.Background(), saved)
	tok, err := ts.Token()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.AccessToken == saved.AccessToken, tok.Extra("username"))
	// Output: true camera-1
}

// A wrong password is reported with ErrBadCredentials, and the server's
// answer is there as an *oauth2.RetrieveError.
func ExampleErrBadCredentials() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")

	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "typo"}
	_, err := cfg.Token(context.Background())
	var re *oauth2.RetrieveError
	fmt.Println(errors.Is(err, econnect.ErrBadCredentials), errors.As(err, &re) && re.Response.StatusCode == 400)
	fmt.Println(err)
	// Output:
	// true true
	// econnect: login refused: 400 Bad Request (wrong username or password)
}

// An on-premise server listens on port 5009 without the /identities prefix,
// often with a self-signed certificate. Trust it through the HTTP client in
// the context; the Client builds on that client's Transport.
func ExampleConfig_Client_onPremise() {
	srv := econnecttest.NewUnstartedServer()
	srv.Prefix = "" // on premise: https://host:5009
	srv.StartTLS()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")

	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate()) // in production: roots.AppendCertsFromPEM(the server's PEM)
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: roots}
	defer base.CloseIdleConnections()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: base, Timeout: time.Minute})

	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	resp, err := cfg.Client(ctx).Post(srv.URL+"/api/v1/faceEdge/publish", "application/json", strings.NewReader(face))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 200 OK
}

// logging is a middleware RoundTripper, such as a tracing or metrics wrapper.
type logging struct{ next http.RoundTripper }

func (l logging) RoundTrip(r *http.Request) (*http.Response, error) {
	fmt.Println(r.Method, r.URL.Path, "authorized:", strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "))
	return l.next.RoundTrip(r)
}

// Transport composes with other round trippers: here a middleware below it
// sees each authorized request. Built around a source of this package, it
// heals a 401 as Config.Client does.
func ExampleTransport() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")

	ctx := context.Background()
	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	client := &http.Client{Transport: &econnect.Transport{
		Source: cfg.TokenSource(ctx),
		Base:   logging{http.DefaultTransport},
	}}
	resp, err := client.Post(srv.URL+"/api/v1/faceEdge/publish", "application/json", strings.NewReader(face))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// POST /identities/api/v1/faceEdge/publish authorized: true
	// 200 OK
}

// ParseToken reads a raw JWT, such as one a script saved, as an oauth2.Token.
func ExampleParseToken() {
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
		"eyJ1bmlxdWVfbmFtZSI6ImNhbWVyYS0xIiwiaWF0IjoxNzY0NDE3NjAwLCJleHAiOjE3NjQ0MjEyMDB9." +
		"c2lnbmF0dXJl"
	tok, err := econnect.ParseToken(jwt)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Extra("username"), tok.Expiry.UTC().Format(time.RFC3339))
	// Output: camera-1 2025-11-29T13:00:00Z
}

// With a Store, a restarted program takes the token it saved instead of
// logging in again: here two sources in turn, as two runs of a program
// would be, share one login through a DirStore.
func ExampleDirStore() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")
	dir, err := os.MkdirTemp("", "econnect-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	for run := 1; run <= 2; run++ {
		cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret",
			Store: econnect.DirStore(dir)}
		ts := cfg.TokenSource(ctx)
		if _, err := ts.Token(); err != nil {
			log.Fatal(err)
		}
		econnect.Flush(ctx, ts) // the token is saved before the program exits
		fmt.Println("run", run, "logins so far:", srv.Stats().Logins)
	}
	// Output:
	// run 1 logins so far: 1
	// run 2 logins so far: 1
}

// sealed encrypts what a Store keeps, with an AEAD of your key management:
// the stored token is then useless to whoever reads the store. It forwards
// Lock, so that sources keep the lease; a wrapper without Lock loses it.
type sealed struct {
	econnect.Store
	aead cipher.AEAD
}

func (s sealed) Save(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.Store.Save(ctx, key, s.aead.Seal(nonce, nonce, v, []byte(key)), ttl)
}

func (s sealed) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Store.Load(ctx, key)
	if err != nil || len(b) < s.aead.NonceSize() {
		return nil, cmp.Or(err, errors.New("sealed: value too short"))
	}
	return s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(key))
}

func (s sealed) Lock(ctx context.Context, key string, ttl time.Duration) (func(), error) {
	l, ok := s.Store.(econnect.Locker)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return l.Lock(ctx, key, ttl)
}

// A Store can be wrapped, here to encrypt the tokens it keeps.
func ExampleStore_encrypted() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")
	key := make([]byte, 32) // in production: from your key management, never beside the store
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	inner := econnecttest.NewStore()
	defer inner.Close()

	ctx := context.Background()
	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret", Store: sealed{inner, aead}}
	ts := cfg.TokenSource(ctx)
	tok, err := ts.Token()
	if err != nil {
		log.Fatal(err)
	}
	econnect.Flush(ctx, ts)
	stored, _ := inner.Value(inner.Keys()[0])
	fmt.Println("the store holds the token in clear:", bytes.Contains(stored, []byte(tok.AccessToken)))

	again, err := cfg.TokenSource(ctx).Token() // a restart
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("restart got the same token:", again.AccessToken == tok.AccessToken, "logins:", srv.Stats().Logins)
	// Output:
	// the store holds the token in clear: false
	// restart got the same token: true logins: 1
}

// StatusOf serves a health check: where the source stands and what it has
// done, without a secret.
func ExampleStatusOf() {
	srv := econnecttest.NewServer()
	defer srv.Close()
	srv.AddUser("camera-1", "s3cret")
	cfg := &econnect.Config{BaseURL: srv.URL, Username: "camera-1", Password: "s3cret"}
	client := cfg.Client(context.Background())

	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := econnect.StatusOf(client.Transport.(*econnect.Transport).Source)
		if st.State != "fresh" && st.State != "due" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(st)
	}))
	defer health.Close()
	show := func() {
		resp, err := http.Get(health.URL)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		var st econnect.Status
		json.NewDecoder(resp.Body).Decode(&st)
		fmt.Println(resp.StatusCode, st.State, "logins:", st.Logins)
	}

	show()
	resp, err := client.Post(srv.URL+"/api/v1/faceEdge/publish", "application/json", strings.NewReader(face))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	show()
	// Output:
	// 503 none logins: 0
	// 200 fresh logins: 1
}
