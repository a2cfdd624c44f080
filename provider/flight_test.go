package provider

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A shared reading always starts after the reader arrived: nobody gets
// data read before its open, and different keys never share.
func TestFlightsShareOnlyLaterReadings(t *testing.T) {
	g := &flightGroup{gates: map[flightKey]*flightGate{}}
	var clock, reads, calls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint(i % 2)
			for range 300 {
				calls.Add(1)
				arrived := clock.Add(1)
				r := g.do(key, func() memResult {
					reads.Add(1)
					started := clock.Add(1)
					time.Sleep(20 * time.Microsecond)
					// The key and the start travel in hostRaw.
					return memResult{view: memView{hostRaw: []byte(fmt.Sprintf("%s %d", key, started))}}
				})
				var k string
				var started int64
				fmt.Sscanf(string(r.view.hostRaw), "%s %d", &k, &started)
				if k != key {
					errs <- fmt.Errorf("key %s got key %s's reading", key, k)
					return
				}
				if started <= arrived {
					errs <- fmt.Errorf("reading started at %d, before the reader arrived at %d", started, arrived)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d opens, %d readings", calls.Load(), reads.Load())
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.gates) != 0 {
		t.Errorf("%d gates left after all readers finished", len(g.gates))
	}
}

// A lone reader reads itself, at once.
func TestFlightsLoneReaderReads(t *testing.T) {
	g := &flightGroup{gates: map[flightKey]*flightGate{}}
	n := 0
	for range 3 {
		g.do("x", func() memResult { n++; return memResult{} })
	}
	if n != 3 {
		t.Fatalf("%d readings for 3 sequential opens, want 3", n)
	}
}
