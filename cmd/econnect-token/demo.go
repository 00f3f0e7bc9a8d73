package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/econnect-oss/econnect"
	"github.com/econnect-oss/econnect/econnecttest"
	"golang.org/x/oauth2"
)

const (
	demoUser = "camera-1"
	// demoLifetime is short, so that the demo meets a renewal within
	// seconds: a token living less than twice EarlyExpiry is renewed when
	// between 3/8 and 1/2 of its lifetime is left.
	demoLifetime = 4 * time.Second
)

// demo runs the library's real flow against an in-process fake server and
// tells on stderr what happens. It never prints the password or a token
// there.
type demo struct {
	srv    *econnecttest.Server
	ts     oauth2.TokenSource // cfg.TokenSource(ctx)
	hc     *http.Client       // authenticates with ts
	tok    *oauth2.Token      // the last token seen
	start  time.Time
	stderr io.Writer
}

// runDemo runs the demo and prints its last token on stdout.
func runDemo(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	d := newDemo(ctx, stderr)
	defer d.srv.Close()
	for _, step := range []func(context.Context) error{d.login, d.call, d.renewal, d.recovery} {
		if err := step(ctx); err != nil {
			return demoError(err)
		}
	}
	d.say("done: the last token is on stdout")
	return writeToken(stdout, d.tok, o)
}

// demoError says what to do about a failed demo.
func demoError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("demo: %w; the demo takes about 3 seconds: raise -timeout", err)
	}
	return fmt.Errorf("demo: %w; the demo runs on this machine alone, so this is a bug: please report it", err)
}

// newDemo starts the fake server with one user and a random password, and
// builds the token source and the client the steps use.
func newDemo(ctx context.Context, stderr io.Writer) *demo {
	srv := econnecttest.NewServer()
	password := rand.Text()
	srv.AddUser(demoUser, password)
	srv.SetLifetime(demoLifetime)
	cfg := &econnect.Config{BaseURL: srv.URL, Username: demoUser, Password: password}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, srv.Client())
	ts := cfg.TokenSource(ctx)
	// What cfg.Client(ctx) builds, but around a source the demo can also
	// ask for the token it prints.
	hc := &http.Client{Transport: &econnect.Transport{Source: ts, Base: srv.Client().Transport}}
	d := &demo{srv: srv, ts: ts, hc: hc, start: time.Now(), stderr: stderr}
	fmt.Fprintf(stderr, "econnect-token: demo: fake eConnect server at %s, user %q with a random password, tokens live %s\n",
		srv.URL, demoUser, demoLifetime)
	return d
}

// say tells what happened, with the time since the demo started.
func (d *demo) say(format string, a ...any) {
	fmt.Fprintf(d.stderr, "[%6.3fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, a...))
}

// login is step 1: the token source logs in.
func (d *demo) login(context.Context) error {
	d.say("1) login: cfg.TokenSource(ctx).Token() sends POST %s/api/v1/authenticate", d.srv.Prefix)
	tok, err := d.ts.Token()
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	d.tok = tok
	name, _ := tok.Extra("username").(string)
	d.say("   got a token for %q, valid for %s; server: %s", name, left(tok), stats(d.srv.Stats()))
	return nil
}

// call is step 2: an authenticated request.
func (d *demo) call(ctx context.Context) error {
	d.say("2) POST %s/api/v1/faceEdge/publish through an http.Client whose econnect.Transport adds the token", d.srv.Prefix)
	d.say("   (what cfg.Client(ctx) builds, here around the same token source)")
	status, err := d.publish(ctx)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	d.say("   answer: %s; server: %s", status, stats(d.srv.Stats()))
	return nil
}

// renewal is step 3: a call past the renewal point starts a renewal in the
// background, without making the call wait for it.
func (d *demo) renewal(ctx context.Context) error {
	st, _ := econnect.StatusOf(d.ts)
	wait := time.Until(st.RenewAt) + 50*time.Millisecond
	d.say("3) renewal: the renewal point comes when 3/8 to 1/2 of the lifetime is left; waiting %s to pass it",
		wait.Round(time.Millisecond))
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return ctx.Err()
	}
	before := d.srv.Stats()
	status, err := d.publish(ctx)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	d.say("   POST …/faceEdge/publish: %s, with the current token; the renewal runs in the background", status)
	if err := d.awaitNewToken(ctx); err != nil {
		return err
	}
	after := d.srv.Stats()
	d.say("   renewed with GET %s/api/v1/renewToken: renewals %d → %d, logins still %d; new token valid for %s",
		d.srv.Prefix, before.Renewals, after.Renewals, after.Logins, left(d.tok))
	if after.Renewals != before.Renewals+1 || after.Logins != before.Logins {
		return fmt.Errorf("renewal: server saw %s, want exactly one more renewal", stats(after))
	}
	return nil
}

// awaitNewToken waits, up to two seconds, for the background renewal to
// replace d.tok, looking every 10 ms.
func (d *demo) awaitNewToken(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Second)
	for {
		tok, err := d.ts.Token()
		if err != nil {
			return fmt.Errorf("renewal: %w", err)
		}
		if tok.AccessToken != d.tok.AccessToken {
			d.tok = tok
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline:
			return errors.New("renewal: no new token after two seconds")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// recovery is step 4: after a key rotation the server refuses the token;
// the client logs in once and retries.
func (d *demo) recovery(ctx context.Context) error {
	before := d.srv.Stats()
	d.srv.RotateKey()
	d.say("4) the server rotates its signing key, as after a restart: it now refuses every token issued so far")
	status, err := d.publish(ctx)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	after := d.srv.Stats()
	if d.tok, err = d.ts.Token(); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	d.say("   POST …/faceEdge/publish: %s; the client met a 401, dropped the token, logged in once and retried", status)
	d.say("   server before: %s", stats(before))
	d.say("   server after:  %s", stats(after))
	if after.Logins != before.Logins+1 || after.Refused != before.Refused+1 {
		return fmt.Errorf("recovery: server saw %s, want exactly one more login and one refusal", stats(after))
	}
	return nil
}

// publishRequest is the body of POST /api/v1/faceEdge/publish.
type publishRequest struct {
	Expanded      []byte `json:"expanded"` // base64 in JSON
	DetectorName  string `json:"detectorName"`
	IanaTimeZone  string `json:"ianaTimeZone"`
	DetectTimeUtc string `json:"detectTimeUtc"`
}

// publish posts a sample detection and returns the answer's status; any
// status other than 200 is an error.
func (d *demo) publish(ctx context.Context) (string, error) {
	body, err := json.Marshal(publishRequest{
		Expanded:      []byte("a face image"),
		DetectorName:  "econnect-token demo",
		IanaTimeZone:  "Europe/Amsterdam",
		DetectTimeUtc: time.Now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return "", err
	}
	// A bytes.Reader body can be replayed, so a 401 can be retried.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.srv.URL+"/api/v1/faceEdge/publish", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.Status, fmt.Errorf("answer %s, want 200 OK", resp.Status)
	}
	return resp.Status, nil
}

// left is the time tok has left, rounded for people.
func left(tok *oauth2.Token) time.Duration {
	return time.Until(tok.Expiry).Round(100 * time.Millisecond)
}

func stats(s econnecttest.Stats) string {
	return fmt.Sprintf("logins %d, renewals %d, refused %d, API calls %d", s.Logins, s.Renewals, s.Refused, s.APICalls)
}
