// Package apitest tests the econnect package from outside, through its
// exported API only, as its users and attackers use it: in process, on the
// real clock (or testing/synctest's), against econnecttest and hostile
// servers. The token source's timing is tested on a fake clock beside the
// package itself, in source_test.go.
package apitest
