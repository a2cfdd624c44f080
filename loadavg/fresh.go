package loadavg

import (
	"sync"
	"time"
)

// freshStates serves snapshots of task states (one run of a BPF walk each)
// no older than its callers ask, running the walk when the last snapshot is
// older. Callers that arrive during a run wait for it and share its result.
//
// While callers come more often than maxAge (a busy top, an agent polling
// /proc/stat), the next run starts in the background once the snapshot is
// freshAhead of maxAge old, so that they go on with the current one rather
// than wait for a walk, which takes milliseconds over thousands of threads
// while every other request of a daemon that answers one at a time waits
// too. A caller that comes once a second gets no run it would not have had:
// it runs the walk itself.
type freshStates struct {
	// run walks once, into states.
	run  func(states map[int]byte) error
	runs *sync.WaitGroup

	mu   sync.Mutex
	last *TaskStates
	// asked is when get was last called; running is non-nil, and closed
	// when done, while a run is under way (err is its error).
	asked   time.Time
	running chan struct{}
	err     error
}

// freshAhead is the share of maxAge after which get, called again within
// maxAge of its previous call, starts the next run in the background.
const freshAhead = 0.8

// get returns a snapshot taken at most maxAge before the call.
func (f *freshStates) get(maxAge time.Duration) (*TaskStates, error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	busy := !f.asked.IsZero() && now.Sub(f.asked) < maxAge
	f.asked = now
	for {
		if l := f.last; l != nil && now.Sub(l.Taken) <= maxAge {
			if busy && f.running == nil && float64(now.Sub(l.Taken)) >= freshAhead*float64(maxAge) {
				f.startRunLocked()
			}
			return l, nil
		}
		if f.running == nil {
			// This caller waits either way: it runs the walk
			// itself, others arriving meanwhile wait for it.
			done := make(chan struct{})
			f.running = done
			f.mu.Unlock()
			f.runOnce(done)
			f.mu.Lock()
			if f.err != nil {
				return nil, f.err
			}
			continue
		}
		done := f.running
		f.mu.Unlock()
		<-done
		f.mu.Lock()
		if err := f.err; err != nil && f.running == nil {
			return nil, err
		}
		// The run that ended began after this call, so its snapshot is
		// fresh, unless it began earlier in the background and took
		// longer than maxAge: then look again (another run).
	}
}

// lastAsked is when get was last called.
func (f *freshStates) lastAsked() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked
}

// startRunLocked starts a run in the background; f.mu is held.
func (f *freshStates) startRunLocked() {
	done := make(chan struct{})
	f.running = done
	f.runs.Go(func() { f.runOnce(done) })
}

// runOnce runs the walk, stores the snapshot, and ends the run marked by
// done; f.mu is not held, and runs of one freshStates never overlap.
func (f *freshStates) runOnce(done chan struct{}) {
	// Taken before the run: the snapshot is no newer than its start.
	ts := &TaskStates{Taken: time.Now(), States: map[int]byte{}}
	err := f.run(ts.States)
	f.mu.Lock()
	if err == nil {
		f.last = ts
	}
	f.err = err
	f.running = nil
	f.mu.Unlock()
	close(done)
}
