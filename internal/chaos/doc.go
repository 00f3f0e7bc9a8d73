// Package chaos is econnect's chaos benchmark: it drives [econnect.Config.Client],
// oauth2.NewClient around [econnect.Config.TokenSource] and a naive client
// side by side, under load, against an econnecttest server whose login and
// renewal endpoints fail at random, and prints a Markdown table of how each
// fared.
//
// The benchmark is TestChaos, skipped unless -chaos is given. The full run
// takes a few minutes; CI runs a short one:
//
//	go test ./internal/chaos -run TestChaos -v -timeout 30m -chaos -chaos.out chaos.md
//	go test ./internal/chaos -run TestChaos -v -chaos -chaos.duration 2s
//
// Add -chaos.strict to fail when Config.Client misses its availability
// targets. The same -chaos.seed draws the same faults in the same order;
// timing, and so the exact figures, still vary from run to run.
package chaos
