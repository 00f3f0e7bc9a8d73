package main

import (
	"context"
	"errors"
	"testing"

	"github.com/econnect-oss/econnect"
	"golang.org/x/oauth2"
)

// TestInvalidatedTokenIsNotHandedOutAgain states what Invalidate promises
// (R15: "it drops t if t is still its token"): once a source with a
// password is told that the server refused its token, TokenContext gives
// a new token or the error of the login that failed to get one, never the
// refused token. The library hands the refused token out again, with no
// error, once the login after the refusal has failed: its source clears
// the refusal when the login is answered (source.backOffLocked) and the
// token, still unexpired, is usable again. Requests through Config.Client
// are spared (the transport checks that the token it retries with is not
// the refused one, and returns the 401), callers of TokenContext are not.
// The command works around it by asking a new source, which holds no
// token (getter.replace). This test fails until the library is fixed.
func TestInvalidatedTokenIsNotHandedOutAgain(t *testing.T) {
	t.Parallel()
	s := newServer(t, false)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, s.Client())
	cfg := &econnect.Config{BaseURL: s.URL, Username: testUser, Password: testPassword}
	ts := cfg.TokenSource(ctx)
	refused, err := econnect.TokenContext(ctx, ts)
	if err != nil {
		t.Fatal(err)
	}
	s.RotateKey()
	s.AddUser(testUser, "changed-SENTINEL-5") // and the password changed: the login fails
	econnect.Invalidate(ts, refused)
	tok, err := econnect.TokenContext(ctx, ts)
	if !errors.Is(err, econnect.ErrBadCredentials) {
		t.Errorf("TokenContext() after Invalidate and a refused login: the refused token: %t, error = %v; want ErrBadCredentials",
			tok != nil && tok.AccessToken == refused.AccessToken, err)
	}
	if st := s.Stats(); st.Logins != 2 {
		t.Errorf("server saw %d logins, want 2: the first and the one after the refusal", st.Logins)
	}
}
