package provider

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cgprocfs/cgprocfs/cgroupview"
)

// The scan reads this test's own thread from a fixture tasks file, keeps
// its files open between scans, skips ids that are not threads, and closes
// what belongs to threads no longer listed.
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
	h, err := cgroupview.Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	c := &cgroupview.Caller{Cgroup: cgroupview.NewCgroup(h, "/ctr")}
	var tf taskFiles
	defer tf.close()
	ts := tf.scan(c)
	if _, ok := ts.waits[os.Getpid()]; !ok || len(ts.waits) != 1 {
		t.Fatalf("waits %v, want this process only", ts.waits)
	}
	// The main thread may be running or asleep, whichever thread runs
	// the test.
	if ts.running+ts.blocked > 1 {
		t.Errorf("running %d, blocked %d for one thread", ts.running, ts.blocked)
	}
	fds := tf.fds[os.Getpid()]
	tf.scan(c)
	if tf.fds[os.Getpid()] != fds {
		t.Errorf("descriptors not reused: %v then %v", fds, tf.fds[os.Getpid()])
	}
	write("cpuacct/ctr/child/tasks", "")
	if ts := tf.scan(c); len(ts.waits) != 0 || len(tf.fds) != 0 {
		t.Errorf("after the thread left: waits %v, fds %v", ts.waits, tf.fds)
	}
}
