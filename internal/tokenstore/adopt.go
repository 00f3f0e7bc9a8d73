package tokenstore

import "github.com/econnect-oss/econnect/internal/jwtclaims"

// Held is what a source holds when it looks in its store: the JWT in hand,
// if any, and the last JWT it saw refused, if any.
type Held struct {
	Token, Refused string
}

// Adopts reports whether a source holding h takes e, a valid entry for its
// key, instead of calling the server: e is neither the token in hand nor
// one the source saw refused, and it is newer than the token in hand by its
// own claims (exp, then iat: the server's clock orders tokens, so that
// machines never compare their own). After a refusal of the token in hand
// (or with no token but a refusal), any other token not older than the
// refused one will do. Whether e's token is usable is the source's to say:
// it knows its safety margin.
func Adopts(e Entry, h Held) bool {
	switch {
	case e.Token == h.Refused || e.Token == h.Token:
		return false
	case h.Token != "" && h.Token != h.Refused:
		return Newer(e.Claims, claimsOf(h.Token))
	case h.Refused != "":
		return !Newer(claimsOf(h.Refused), e.Claims)
	}
	return true
}

// claimsOf returns the claims of jwt, zero for a token that is not a JWT.
func claimsOf(jwt string) jwtclaims.Claims {
	cl, _ := jwtclaims.Parse(jwt)
	return cl
}
