// Package econnecttest provides an in-process eConnect Identities server for
// tests and examples, in the spirit of [net/http/httptest]. It needs no
// *testing.T, so Example functions can start one.
//
// A [Server] answers the login endpoint (POST /api/v1/authenticate), the
// renewal endpoint (GET /api/v1/renewToken) and one protected sample endpoint
// (POST /api/v1/faceEdge/publish), under the cloud prefix "/identities" or none
// as on-premise installs have. It issues HS256 JWTs carrying unique_name, role,
// nbf, iat and exp, as the real server does, and refuses them once they expire
// by its own clock or once its signing key is rotated. With
// [Server.EnableHTTP2] it speaks HTTP/2 over TLS.
//
// Its settings, callable at any time, shape what clients meet: users and
// roles, token lifetime, a fake or offset clock, missing claims, latency,
// faults on demand for the next calls to login or renewal (an error status,
// a garbage body, a redirect, an answer held open or never given, a reset
// connection, a body cut short, a connection frozen for good), and faults
// drawn at random from a seed, for chaos runs ([Server.SetChaos]).
// [Server.Stats] counts what it saw, connections included, so that a test
// can tell whether a client retried on a fresh connection; [Server.WaitFor]
// blocks until the counts meet a condition, so that a test waits for a
// request to arrive without polling. [Server.Handle] mounts a handler of your
// own behind the same bearer check.
//
// A [Store] is an in-memory token store, a Store and a Locker for econnect's
// Config.Store, whose calls fail, hang, stick or return garbage on demand,
// and whose counts show whether its lock ever let two holders in.
package econnecttest
