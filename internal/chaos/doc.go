// Package chaos is econnect's chaos benchmark: it drives [econnect.Config.Client],
// oauth2.NewClient around [econnect.Config.TokenSource] and a naive client
// side by side, under load, against an econnecttest server whose login and
// renewal endpoints fail at random, and prints a Markdown table of how each
// fared.
//
// The benchmark is TestChaos, skipped unless -chaos is given. The full run
// takes a few minutes; CI runs a short one:
//
//	go test ./internal/chaos -run TestChaos -v -timeout 30m -chaos -chaos.strict -chaos.out chaos.md
//	go test ./internal/chaos -run TestChaos -v -chaos -chaos.duration 2s
//
// Every run, short or full, fails on what a run can judge from its first
// second: a corrupted body, of any client kind; a goroutine still running
// once the clients of a scenario were done; and, for Config.Client in every
// scenario, an auth call sent inside a Retry-After window the server had
// announced, or a request that failed while the client's last token was
// still usable by the server's clock (this last one also for
// oauth2.NewClient in garbled-30%). Add -chaos.strict, as the full run
// does, to fail also when Config.Client misses its availability targets:
// the share of requests that succeed and the auth calls per token
// lifetime, rates that the few token lifetimes of a short run cannot judge.
//
// The same -chaos.seed draws the same faults in the same order; timing,
// and so the exact figures, still vary from run to run.
package chaos
