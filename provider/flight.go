package provider

import (
	"sync"
)

// memFlights shares one reading of a cgroup's memory among readers of the
// same cgroup that open at the same time, without ever serving old data:
// a reader only shares a reading that starts after it arrived.
//
// While a reading of cgroup X runs, readers of X that arrive queue for the
// next one, which the first of them starts as soon as the running one ends;
// they all get its result. A reader that finds nothing running reads at
// once, as without sharing, so a lone reader never waits. Under load (8
// readers of one container on 2 cores) this halves the cgroup and host
// files read per open.
//
// The key is the cgroup's memory Key, and the group belongs to one
// Provider, so that a result is only shared within one cgroup, of one
// configuration.
type flightKey = string

type flightGroup struct {
	mu    sync.Mutex // guards gates and every gate's fields
	gates map[flightKey]*flightGate
}

type flightGate struct {
	cur  *flight // running
	next *flight // queued: joinable until it starts
}

// memResult is a shared reading of a cgroup's memory view.
type memResult struct {
	view memView
	err  error
}

type flight struct {
	done chan struct{}
	res  memResult
}

// do returns the result of a run of read that started after do was called,
// run by this caller or shared with others of the same key.
func (g *flightGroup) do(k flightKey, read func() memResult) memResult {
	g.mu.Lock()
	gate := g.gates[k]
	if gate == nil {
		gate = &flightGate{}
		g.gates[k] = gate
	}
	if gate.cur == nil {
		f := &flight{done: make(chan struct{})}
		gate.cur = f
		g.mu.Unlock()
		return g.run(k, gate, f, read)
	}
	if f := gate.next; f != nil {
		g.mu.Unlock()
		<-f.done
		return f.res
	}
	f := &flight{done: make(chan struct{})}
	gate.next = f
	prev := gate.cur
	g.mu.Unlock()
	<-prev.done
	g.mu.Lock()
	// From here on nobody joins f: all who did arrived before it reads.
	if gate.next == f {
		gate.next = nil
	}
	gate.cur = f
	g.mu.Unlock()
	return g.run(k, gate, f, read)
}

func (g *flightGroup) run(k flightKey, gate *flightGate, f *flight, read func() memResult) memResult {
	f.res = read()
	close(f.done)
	g.mu.Lock()
	if gate.cur == f {
		gate.cur = nil
	}
	if gate.cur == nil && gate.next == nil && g.gates[k] == gate {
		delete(g.gates, k)
	}
	g.mu.Unlock()
	return f.res
}
