// Package redisstore keeps the tokens of [github.com/econnect-oss/econnect]
// in Redis, so that they survive restarts and the processes of a farm that
// log in as the same user to the same server share one login per token
// lifetime. A [Store], made by [New] around a go-redis client, is an
// [econnect.Store] and an [econnect.Locker]: set it as
// [econnect.Config.Store].
//
// Under the prefix given to New, the value saved under key k lives at
// prefix+"{k}:token", set with PX = its ttl so that Redis drops a dead token
// itself, and the lease on k at prefix+"{k}:lock". The braces are a hash
// tag: both keys of one k land in the same Redis Cluster slot.
//
// The lease is SET … NX PX ttl with 16 random bytes as its value, released
// by a script that deletes it only while it still holds that value, so a
// holder whose lease lapsed never deletes its successor's. It keeps a farm
// from logging in many times over; it does not make a login exclusive,
// and need not: a failover that loses a lease, or a holder paused past its
// ttl, costs one more login and nothing else. That is why there is no
// Redlock.
//
// Redis counts ttls on the clock of the Redis host: a value or a lease
// lapses when that clock says so, whatever the clocks of the processes, and
// a step of that clock drops them early or late. econnect orders tokens by
// their own claims, so such a step costs at most a login.
//
// Every method returns by the deadline of its context, even through a client
// built without ContextTimeoutEnabled to a Redis that stopped answering: the
// command then goes on in a goroutine of its own until the client's own
// ReadTimeout and WriteTimeout (or Close) end it.
//
// A Store that wraps this one, to encrypt values for instance, must
// implement [econnect.Locker] itself and forward Lock, or the lease is lost
// and every process logs in on its own.
package redisstore
