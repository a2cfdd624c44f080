package provider

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
)

// The scan reads this test's own thread from a fixture tasks file, keeps
// its files open between scans, skips ids that are not threads, and counts
// nothing once the thread is no longer listed.
func TestTaskFilesScan(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"memory", "cpuacct/ctr/child"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self := strconv.Itoa(os.Getpid())
	write := func(rel, s string) {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cpuacct/ctr/tasks", "abc\n2147483647\n")
	write("cpuacct/ctr/child/tasks", self+"\n")
	p := newFixtureProvider(t, root, true)
	c := &caller.Caller{Cgroup: cgroupview.NewCgroup(p.cfg.Cgroups.Hierarchy(), "/ctr")}
	kept := p.cfg.FS.KeptFDs()
	ts := p.scanTasks(c)
	if _, ok := ts.waits[os.Getpid()]; !ok || len(ts.waits) != 1 {
		t.Fatalf("waits %v, want this process only", ts.waits)
	}
	// The main thread may be running or asleep, whichever thread runs
	// the test.
	if ts.running+ts.blocked > 1 {
		t.Errorf("running %d, blocked %d for one thread", ts.running, ts.blocked)
	}
	after := p.cfg.FS.KeptFDs()
	if after <= kept {
		t.Errorf("the thread's stat and schedstat are not kept open: %d descriptors, %d before", after, kept)
	}
	p.scanTasks(c)
	if again := p.cfg.FS.KeptFDs(); again != after {
		t.Errorf("descriptors not reused: %d kept, then %d", after, again)
	}
	write("cpuacct/ctr/child/tasks", "")
	if ts := p.scanTasks(c); len(ts.waits) != 0 {
		t.Errorf("after the thread left: waits %v", ts.waits)
	}
}
