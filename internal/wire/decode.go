package wire

import (
	"encoding/json"
	"time"

	"github.com/econnect-oss/econnect/internal/jwtclaims"
)

// decode reads a 2xx answer: JSON {"username": …, "token": "<JWT>"}.
func decode(op string, body []byte, sent, received time.Time) (Answer, error) {
	var a struct {
		Username *string `json:"username"`
		Token    *string `json:"token"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return Answer{}, &AnswerError{Op: op, What: "not a JSON token answer", Err: err}
	}
	if a.Token == nil || *a.Token == "" {
		return Answer{}, &AnswerError{Op: op, What: "no token"}
	}
	cl, err := jwtclaims.Parse(*a.Token)
	if err != nil {
		return Answer{}, &AnswerError{Op: op, What: "token is not a JWT", Err: err}
	}
	name := cl.Name
	if a.Username != nil && *a.Username != "" {
		name = *a.Username
	}
	return Answer{Token: *a.Token, Username: name, Claims: cl, Sent: sent, Received: received}, nil
}
