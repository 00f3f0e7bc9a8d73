package econnecttest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors of VerifyToken. They are short and never quote the token.
var (
	errNoToken     = errors.New("econnecttest: no bearer token")
	errMalformed   = errors.New("econnecttest: malformed token")
	errSignature   = errors.New("econnecttest: token signature invalid")
	errExpired     = errors.New("econnecttest: token expired")
	errNotValidYet = errors.New("econnecttest: token not valid yet")
	errInvalid     = errors.New("econnecttest: token invalid")
	errUnknownUser = errors.New("econnecttest: token names no known user")
)

// claims is the payload of the server's tokens, the claims .NET's
// JwtSecurityTokenHandler writes, unique_name first.
type claims struct {
	Username string `json:"unique_name,omitempty"`
	Roles    roles  `json:"role,omitempty"`
	jwt.RegisteredClaims
}

// roles is the role claim: a string for one role, an array for several, as
// .NET writes it.
type roles []string

// MarshalJSON writes one role as a string, several as an array.
func (r roles) MarshalJSON() ([]byte, error) {
	if len(r) == 1 {
		return json.Marshal(r[0])
	}
	return json.Marshal([]string(r))
}

// UnmarshalJSON reads a string or an array of strings.
func (r *roles) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*r = roles{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(r))
}

// issue returns a new signed token for a user.
func (s *Server) issue(username string, rs []string) (string, error) {
	s.mu.Lock()
	c := s.newClaims(username, rs)
	key := s.key
	s.mu.Unlock()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
}

// newClaims returns the claims of a token issued now. s.mu must be held.
func (s *Server) newClaims(username string, rs []string) *claims {
	iat := time.Unix(s.now().Unix(), 0)
	life := max(s.lifetime.Truncate(time.Second), time.Second)
	c := &claims{
		Username: username,
		Roles:    rs,
		RegisteredClaims: jwt.RegisteredClaims{
			NotBefore: jwt.NewNumericDate(iat),
			IssuedAt:  jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(life)),
			// A random ID makes every token unique, even two issued to
			// the same user in the same second.
			ID: randomHex(16),
		},
	}
	s.dropOmitted(c)
	return c
}

// dropOmitted removes from c the claims OmitClaims named. s.mu must be held.
func (s *Server) dropOmitted(c *claims) {
	for _, name := range s.omit {
		switch name {
		case "unique_name":
			c.Username = ""
		case "role":
			c.Roles = nil
		case "nbf":
			c.NotBefore = nil
		case "iat":
			c.IssuedAt = nil
		case "exp":
			c.ExpiresAt = nil
		case "jti":
			c.ID = ""
		}
	}
}

// VerifyToken checks a token as the protected endpoints do, and returns the
// user it names. The token must be signed with the server's current key,
// must not have expired by the server's clock (it has once the clock reaches
// its exp), must be past its nbf, and must name a user of the server. Errors
// are short and never contain the token.
func (s *Server) VerifyToken(token string) (username string, err error) {
	c, err := s.verify(token)
	if err != nil {
		return "", err
	}
	return c.Username, nil
}

// verify checks a token and returns its claims.
func (s *Server) verify(token string) (*claims, error) {
	s.mu.Lock()
	key, now := s.key, s.now()
	s.mu.Unlock()
	c := new(claims)
	_, err := jwt.ParseWithClaims(token, c,
		func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, shortError(err)
	}
	if _, ok := s.lookup(c.Username); !ok {
		return nil, errUnknownUser
	}
	return c, nil
}

// shortError replaces an error of the jwt package, whose text may quote
// parts of the token, with one of ours.
func shortError(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return errExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errNotValidYet
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errSignature
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errMalformed
	}
	return errInvalid
}

// bearer checks the bearer token of r and returns its claims.
func (s *Server) bearer(r *http.Request) (*claims, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errNoToken
	}
	return s.verify(token)
}

// refuse answers 401 to a request whose token err refused, with the
// challenge ASP.NET's JwtBearer handler sends: a bare one when the request
// had no token, invalid_token when it had a bad one.
func (s *Server) refuse(w http.ResponseWriter, err error) {
	s.count(&s.stats.Refused)
	challenge := `Bearer error="invalid_token"`
	if errors.Is(err, errNoToken) {
		challenge = "Bearer"
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.WriteHeader(http.StatusUnauthorized)
}

// newKey returns a new random HS256 signing key.
func newKey() []byte {
	key := make([]byte, 32)
	rand.Read(key)
	return key
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
