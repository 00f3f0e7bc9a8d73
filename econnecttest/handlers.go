package econnecttest

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
)

// Size limits of request bodies.
const (
	authLimit    = 1 << 20
	publishLimit = 16 << 20 // publish carries a face image
)

// login serves POST {prefix}/api/v1/authenticate, wrapped in s.auth.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	// s.auth has read the body already, within authLimit.
	body, readErr := io.ReadAll(r.Body)
	var req struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if status := decodeJSON(r, body, readErr, &req); status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	u, ok := s.lookup(req.Username)
	if !ok || subtle.ConstantTimeCompare([]byte(u.password), []byte(req.Password)) != 1 {
		s.count(&s.stats.Refused)
		// Never echo what was sent: the body may reach a client's logs.
		http.Error(w, "invalid username or password", http.StatusBadRequest)
		return
	}
	s.answerToken(w, req.Username, u.roles)
}

// renew serves GET {prefix}/api/v1/renewToken, wrapped in s.auth.
func (s *Server) renew(w http.ResponseWriter, r *http.Request) {
	c, err := s.bearer(r)
	if err != nil {
		s.refuse(w, err)
		return
	}
	// The new token carries the user's roles of now, not those of the old
	// token.
	u, _ := s.lookup(c.Username)
	s.answerToken(w, c.Username, u.roles)
}

// answerToken answers an auth call with a new token for a user.
func (s *Server) answerToken(w http.ResponseWriter, username string, roles []string) {
	token, err := s.issue(username, roles)
	if err != nil {
		http.Error(w, "cannot sign token", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(struct {
		Username string `json:"username"`
		Token    string `json:"token"`
	}{username, token})
}

// publish serves POST {prefix}/api/v1/faceEdge/publish once its bearer and
// role have been checked. It checks the body and answers 200 with none.
func publish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Expanded      []byte `json:"expanded"` // base64 in JSON
		DetectorName  string `json:"detectorName"`
		IanaTimeZone  string `json:"ianaTimeZone"`
		DetectTimeUtc string `json:"detectTimeUtc"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, publishLimit))
	if status := decodeJSON(r, body, err, &req); status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if len(req.Expanded) == 0 || req.DetectorName == "" || req.IanaTimeZone == "" || req.DetectTimeUtc == "" {
		http.Error(w, "expanded, detectorName, ianaTimeZone and detectTimeUtc are required",
			http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// decodeJSON decodes the JSON body of r into v; readErr is the error of
// reading it. It returns 0, or the status that refuses the request.
func decodeJSON(r *http.Request, body []byte, readErr error, v any) int {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var tooBig *http.MaxBytesError
	switch {
	case err != nil || mt != "application/json":
		return http.StatusUnsupportedMediaType
	case errors.As(readErr, &tooBig):
		return http.StatusRequestEntityTooLarge
	case readErr != nil || json.Unmarshal(body, v) != nil:
		return http.StatusBadRequest
	}
	return 0
}
