package provider

import (
	"os"
	"testing"
	"time"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// BenchmarkSeenTouch is what tracking containers for metrics adds to every
// request: one lookup in the set, a store at most once a second.
func BenchmarkSeenTouch(b *testing.B) {
	kfs := kernelfs.New("/proc", kernelfs.Options{})
	defer kfs.Close()
	h := &cgroupview.Hierarchy{Root: b.TempDir(), Mode: cgroupview.Unified}
	s := &seenSet{epoch: time.Now()}
	var callers []*caller.Caller
	for _, p := range []string{"/a", "/b", "/c", "/d"} {
		callers = append(callers, &caller.Caller{Pid: os.Getpid(), HostNS: true, Cgroup: cgroupview.NewCgroup(h, p)})
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.touch(callers[i&3])
			i++
		}
	})
}
