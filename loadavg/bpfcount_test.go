package loadavg

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func records(rs ...[2]uint32) []byte {
	var b []byte
	for _, r := range rs {
		b = binary.NativeEndian.AppendUint32(b, r[0])
		b = binary.NativeEndian.AppendUint32(b, r[1])
	}
	return b
}

func TestParseTaskRecords(t *testing.T) {
	m := map[int]byte{}
	if err := ParseTaskRecords(records([2]uint32{7, 1}, [2]uint32{42, 2}, [2]uint32{4194304, 1}), m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m[7] != 'R' || m[42] != 'D' || m[4194304] != 'R' {
		t.Fatalf("parsed %v", m)
	}
	if err := ParseTaskRecords(nil, m); err != nil {
		t.Fatalf("empty output (no task runnable or in D): %v", err)
	}
	for name, bad := range map[string][]byte{
		"torn record": records([2]uint32{7, 1})[:7],
		"tid 0":       records([2]uint32{0, 1}),
		"huge tid":    records([2]uint32{1<<30 + 1, 1}),
		"kind 0":      records([2]uint32{7, 0}),
		"kind 3":      records([2]uint32{7, 3}),
	} {
		if err := ParseTaskRecords(bad, map[int]byte{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParseTaskRecords(f *testing.F) {
	f.Add(records([2]uint32{7, 1}, [2]uint32{42, 2}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := map[int]byte{}
		if err := ParseTaskRecords(data, m); err == nil {
			for tid, s := range m {
				if tid <= 0 || (s != 'R' && s != 'D') {
					t.Fatalf("accepted tid %d state %q", tid, s)
				}
			}
		}
	})
}

func TestCountStates(t *testing.T) {
	n := countStates([]int{1, 2, 3, 4}, map[int]byte{2: 'R', 3: 'D', 9: 'R'})
	if n != (Counts{Running: 1, Uninterruptible: 1, Total: 4, Newest: [3]int{4, 3, 2}}) {
		t.Fatalf("counts %+v", n)
	}
}

// bpfCounter loads the BPF counter for a test, closed when it ends; the
// test is skipped where it cannot load (not root, no BTF, ...).
func bpfCounter(t *testing.T) *BPFCounter {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF")
	}
	c, err := NewBPFCounter(testFS(t), "tasks")
	if err != nil {
		t.Skipf("the BPF counter does not load here: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The BPF counter on a directory whose "tasks" lists this process's
// threads: all counted, a busy thread running. Needs root (CAP_BPF) and
// kernel BTF; skipped where the counter does not load.
func TestBPFCounterOwnThreads(t *testing.T) {
	c := bpfCounter(t)
	fd, dir, list := ownThreadsDir(t)
	var n Counts
	var err error
	for range 3 {
		c.EndRound()
		if n, err = c.Count(fd, dir); err != nil {
			t.Fatal(err)
		}
		if n.Running >= 1 {
			break
		}
	}
	if n.Total != uint64(len(list)) || n.Running < 1 {
		t.Fatalf("counts %+v for %d threads, want all counted and one running", n, len(list))
	}
	// Without EndRound the round's states are reused: no second run.
	if n2, err := c.Count(fd, dir); err != nil || n2 != n {
		t.Fatalf("second count in a round: %+v, %v; want %+v", n2, err, n)
	}
	os.WriteFile(filepath.Join(dir, "tasks"), []byte(strconv.Itoa(1<<30)+"x\n"), 0o644)
	if _, err := c.Count(fd, dir); err == nil {
		t.Fatal("no error for a malformed thread list")
	}
	os.Remove(filepath.Join(dir, "tasks"))
	if _, err := c.Count(fd, dir); err == nil {
		t.Fatal("no error for a cgroup without a thread list")
	}
}

// Fresh: a snapshot younger than maxAge is shared, an older one is replaced
// by a new run, and a run from a locked thread sees that thread running.
// Needs root and a kernel where the counter loads.
func TestBPFCounterFresh(t *testing.T) {
	c := bpfCounter(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a, err := c.Fresh(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if tid := unix.Gettid(); a.States[tid] != 'R' {
		t.Errorf("the reading thread %d is %q in the snapshot, want R", tid, a.States[tid])
	}
	if b, err := c.Fresh(time.Hour); err != nil || b != a {
		t.Errorf("a second call within maxAge ran again (%v)", err)
	}
	if b, err := c.Fresh(0); err != nil || b == a || !b.Taken.After(a.Taken) {
		t.Errorf("a call past maxAge did not run again (%v)", err)
	}
}

// Fresh runs ahead for callers that come more often than maxAge: past
// freshAhead of maxAge the call still gets the current snapshot at once and
// the next run starts in the background; a caller that came longer than
// maxAge ago starts no background run. Needs root and a kernel where the
// counter loads.
func TestBPFCounterFreshRunsAhead(t *testing.T) {
	c := bpfCounter(t)
	const maxAge = 2 * time.Second
	a, err := c.Fresh(maxAge)
	if err != nil {
		t.Fatal(err)
	}
	// Past 80% of maxAge, with a margin of 300 ms before it ends.
	time.Sleep(time.Duration(freshAhead*float64(maxAge)) + 100*time.Millisecond)
	if b, err := c.Fresh(maxAge); err != nil || b != a {
		t.Fatalf("a busy caller past %.0f%% of maxAge got %p (%v), want the current snapshot %p at once", freshAhead*100, b, err, a)
	}
	// Before a is maxAge old, a new snapshot can only come from the run
	// ahead: past it the caller would run the iterator itself.
	deadline := a.Taken.Add(maxAge - 20*time.Millisecond)
	for {
		b, err := c.Fresh(maxAge)
		if err != nil {
			t.Fatal(err)
		}
		if b != a {
			if !b.Taken.After(a.Taken) {
				t.Fatalf("the run ahead's snapshot is not newer: %v, %v", b.Taken, a.Taken)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no run ahead before the snapshot a busy caller got was maxAge old")
		}
		time.Sleep(time.Millisecond)
	}

	// An idle caller (last call longer than maxAge ago) runs the
	// iterator itself and starts nothing in the background.
	const short = 50 * time.Millisecond
	if _, err := c.Fresh(short); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * short)
	before := time.Now()
	b, err := c.Fresh(short)
	if err != nil || b.Taken.Before(before) {
		t.Fatalf("an idle caller got a snapshot taken at %v, before its call at %v (%v)", b.Taken, before, err)
	}
	c.live.mu.Lock()
	running := c.live.running != nil
	c.live.mu.Unlock()
	if running {
		t.Fatal("an idle caller started a run in the background")
	}
}
