// Package e2e tests the econnect package's public API as its users and attackers use it, on the real clock, against econnecttest and hostile servers.
package e2e
