package econnecttest

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Chaos makes calls to the login and renewal endpoints fail at random, for
// tests of how clients fare against an unreliable server. Each call draws
// at most one of Faults, by their probabilities; a call with a fault queued
// by [Server.FailLogin] or [Server.FailRenew] takes that one instead and
// draws nothing.
//
// An outage is a Chance of 1 switched on with [Server.SetChaos] and off
// with SetChaos(Chaos{}).
type Chaos struct {
	// Faults are the faults a call may draw, each with its probability.
	Faults []Chance

	// Seed seeds the draws. Each endpoint draws from a sequence of its
	// own, started anew by every SetChaos: with the same Seed, the n-th
	// call to the login endpoint draws the same fault, whatever the
	// renewal endpoint saw and whichever request came n-th. Counts over a
	// number of calls are therefore exact, even for concurrent calls.
	Seed uint64
}

// Chance is a fault of [Chaos] and the probability that a call draws it.
type Chance struct {
	// P is the probability, from 0 to 1. The P of all the Faults of a
	// Chaos add up to at most 1; what is left is the probability of a
	// normal answer.
	P float64

	// Fault is the fault drawn.
	Fault Fault
}

// SetChaos makes the login and renewal endpoints draw their faults from c,
// replacing the previous Chaos and starting its draws anew. The zero Chaos
// ends the chaos. SetChaos panics if a probability is negative, not a
// number, or if they add up to more than 1.
func (s *Server) SetChaos(c Chaos) {
	login, renew := newChaos(c, 1), newChaos(c, 2)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginFaults.chaos = login
	s.renewFaults.chaos = renew
}

// chaos is the Chaos of one endpoint. It is guarded by the Server's mu.
type chaos struct {
	chances []Chance
	rnd     *rand.Rand
}

// newChaos returns the chaos of the endpoint whose sequence is stream.
func newChaos(c Chaos, stream uint64) chaos {
	sum := 0.0
	chances := make([]Chance, 0, len(c.Faults))
	for _, ch := range c.Faults {
		if ch.P < 0 || math.IsNaN(ch.P) {
			panic(fmt.Sprintf("econnecttest: Chance.P = %v, want 0 to 1", ch.P))
		}
		sum += ch.P
		// Clone the header: the caller may change it while handlers read it.
		ch.Fault.Header = ch.Fault.Header.Clone()
		chances = append(chances, ch)
	}
	// Allow for rounding: 0.1+0.2+0.7 is a little over 1.
	if sum > 1+1e-9 {
		panic(fmt.Sprintf("econnecttest: the Chance.P of a Chaos add up to %v, want at most 1", sum))
	}
	return chaos{chances: chances, rnd: rand.New(rand.NewPCG(c.Seed, stream))}
}

// draw returns the fault of the next call, if it draws one.
func (c *chaos) draw() (Fault, bool) {
	if len(c.chances) == 0 {
		return Fault{}, false
	}
	x := c.rnd.Float64()
	for _, ch := range c.chances {
		if x < ch.P {
			return ch.Fault, true
		}
		x -= ch.P
	}
	return Fault{}, false
}
