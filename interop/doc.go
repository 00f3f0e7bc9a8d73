// Package interop proves that the token source and client of
// [github.com/econnect-oss/econnect] work inside real oauth2-aware libraries:
// gRPC per-RPC credentials, a retrying HTTP client, a middleware transport
// and third-party clients built on [golang.org/x/oauth2.NewClient].
//
// It is a module of its own, so that these libraries never reach the
// go.mod of econnect. It holds only tests, to read as usage examples, and
// two recipes: Example_reauth, for gRPC clients that must recover at once
// when the server refuses a token, and Example_health, a health endpoint
// that serves a token source's status.
package interop
