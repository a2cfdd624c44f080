package loadavg

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeCounter returns fixed counts per directory, so the tracker's walk,
// folding and forgetting are tested on a plain directory tree (whose link
// counts follow the same rule as kernfs: 2 + subdirectories).
type fakeCounter struct {
	mu     sync.Mutex
	counts map[string]Counts
	rounds int
}

func (f *fakeCounter) Count(dirfd int, dir string) (Counts, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[dir], nil
}
func (f *fakeCounter) EndRound()    { f.mu.Lock(); f.rounds++; f.mu.Unlock() }
func (f *fakeCounter) Close() error { return nil }
func (f *fakeCounter) Name() string { return "fake" }

func mkdirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTrackerSumsDescendants(t *testing.T) {
	root := t.TempDir()
	a := filepath.Join(root, "a")
	mkdirs(t, a+"/b/c", a+"/d", root+"/other")
	fc := &fakeCounter{counts: map[string]Counts{
		a:             {Running: 1, Total: 3},
		a + "/b":      {Uninterruptible: 1, Total: 1},
		a + "/b/c":    {Running: 2, Total: 5},
		a + "/d":      {Total: 7},
		root + "/oth": {Running: 100, Total: 100},
	}}
	tr := NewTracker(fc, 0, nil)
	if s := tr.Touch(a); s.Samples != 0 || s.Avg != (Avg{}) || len(s.Dirs) != 1 {
		t.Fatalf("fresh snapshot %+v", s)
	}
	tr.SampleAll(1)
	s := tr.Touch(a)
	if s.Counts != (Counts{Running: 3, Uninterruptible: 1, Total: 16}) {
		t.Fatalf("counts %+v, want the sum over a and its descendants", s.Counts)
	}
	if len(s.Dirs) != 4 {
		t.Fatalf("dirs %v, want a, a/b, a/b/c, a/d", s.Dirs)
	}
	if want := (Avg{}).Fold(4, 1); s.Avg != want {
		t.Fatalf("avg %v, want %v", s.Avg, want)
	}
	for range 7 {
		tr.SampleAll(1)
	}
	var want Avg
	for range 8 {
		want = want.Fold(4, 1)
	}
	if s := tr.Touch(a); s.Avg != want || s.Samples != 8 {
		t.Fatalf("after 8 samples avg %v (%d samples), want %v", s.Avg, s.Samples, want)
	}
	// A late round folds the missed periods in at once.
	tr.SampleAll(12)
	if s := tr.Touch(a); s.Avg != want.Fold(4, 12) {
		t.Fatalf("late round: avg %v, want %v", s.Avg, want.Fold(4, 12))
	}
}

func TestTrackerDropsRemovedAndIdle(t *testing.T) {
	root := t.TempDir()
	gone, idle, busy := root+"/gone", root+"/idle", root+"/busy"
	mkdirs(t, gone, idle, busy)
	tr := NewTracker(&fakeCounter{}, 200*time.Millisecond, nil)
	tr.Touch(gone)
	tr.Touch(idle)
	tr.Touch(busy)
	tr.SampleAll(1)
	if tr.Len() != 3 {
		t.Fatalf("tracking %d, want 3", tr.Len())
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	tr.SampleAll(1)
	if tr.Len() != 2 {
		t.Fatalf("tracking %d after a removal, want 2", tr.Len())
	}
	deadline := time.Now().Add(10 * time.Second)
	for tr.Len() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("idle cgroup still tracked: %d", tr.Len())
		}
		time.Sleep(50 * time.Millisecond)
		tr.Touch(busy)
		tr.SampleAll(1)
	}
	if s := tr.Touch(busy); s.Samples == 0 {
		t.Fatal("the busy cgroup lost its samples")
	}
	// Read again, a dropped cgroup starts from zero.
	if s := tr.Touch(idle); s.Samples != 0 {
		t.Fatalf("re-tracked cgroup has %d samples", s.Samples)
	}
}

// Run samples on a fixed grid: rounds follow start + n x period whatever a
// round costs, and end with the context.
func TestTrackerRunGrid(t *testing.T) {
	root := t.TempDir()
	tr := NewTracker(&fakeCounter{counts: map[string]Counts{root: {Running: 1, Total: 1}}}, 0, nil)
	tr.period = 50 * time.Millisecond
	tr.Touch(root)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { tr.Run(ctx); close(done) }()
	for tr.Rounds() < 10 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("only %d rounds in 10 s", tr.Rounds())
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	<-done
	// 10 rounds on a 50 ms grid end at 500 ms; a drifting ticker adds
	// each round's cost. Allow scheduling noise on a busy host.
	if elapsed < 450*time.Millisecond || elapsed > 2*time.Second {
		t.Fatalf("10 rounds took %v, want about 500 ms", elapsed)
	}
	// Samples fold 1 period per round or more (after a stall), never 0.
	if s := tr.Touch(root); s.Avg[0] == 0 {
		t.Fatalf("no load after %d rounds", tr.Rounds())
	}
}

// Touch is the read path: it must never wait for a round in progress.
func TestTouchDoesNotWaitForSampling(t *testing.T) {
	root := t.TempDir()
	block := make(chan struct{})
	tr := NewTracker(&blockingCounter{block: block}, 0, nil)
	tr.Touch(root)
	go tr.SampleAll(1)
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { tr.Touch(root); tr.Touch(root + "/new"); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Touch blocked behind a sampling round")
	}
	close(block)
}

type blockingCounter struct{ block chan struct{} }

func (b *blockingCounter) Count(int, string) (Counts, error) { <-b.block; return Counts{}, nil }
func (b *blockingCounter) EndRound()                         {}
func (b *blockingCounter) Close() error                      { return nil }
func (b *blockingCounter) Name() string                      { return "blocking" }

// Seed holds a reader's listing until the first sample, and no longer.
func TestTrackerSeed(t *testing.T) {
	a := t.TempDir()
	tr := NewTracker(&fakeCounter{counts: map[string]Counts{a: {Running: 1, Total: 2}}}, 0, nil)
	tr.Seed(a, Counts{Total: 9}) // not tracked yet: nothing
	if s := tr.Touch(a); s.Seeded || s.Counts != (Counts{}) {
		t.Fatalf("seeded before it was tracked: %+v", s)
	}
	tr.Seed(a, Counts{Total: 5, Newest: [3]int{42}})
	if s := tr.Touch(a); !s.Seeded || s.Samples != 0 || s.Counts.Total != 5 || s.Counts.Newest[0] != 42 || len(s.Dirs) != 1 {
		t.Fatalf("after Seed: %+v", s)
	}
	tr.SampleAll(1)
	tr.Seed(a, Counts{Total: 7})
	if s := tr.Touch(a); s.Seeded || s.Samples != 1 || s.Counts != (Counts{Running: 1, Total: 2}) {
		t.Fatalf("a seed after the first sample was taken: %+v", s)
	}
}
