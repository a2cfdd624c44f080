package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// BenchmarkContent is the daemon's work for one open of each /proc file
// without FUSE: resolving the caller, reading its cgroup and the host's
// file, rendering. It runs as root from a memory cgroup it makes
// (cgprocfs-test-bench-*) and leaves; `make bench` measures the whole round
// trip.
func BenchmarkContent(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to make a cgroup")
	}
	h, err := cgroupview.Detect("/sys/fs/cgroup")
	if err != nil {
		b.Skip(err)
	}
	// Only this thread moves (v1 tasks files; on v2, where cgroup.threads
	// is refused outside threaded mode, the process moves and back).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	name := fmt.Sprintf("cgprocfs-test-bench-%d", os.Getpid())
	if h.Mode == cgroupview.Unified {
		joinBenchCgroup(b, "/sys/fs/cgroup", name, "cgroup.procs", os.Getpid(), map[string]string{
			"memory.max": "268435456", "cpu.max": "50000 100000",
		})
	} else {
		tid := syscall.Gettid()
		for c, settings := range map[string]map[string]string{
			"memory":  {"memory.limit_in_bytes": "268435456"},
			"cpu":     {"cpu.cfs_quota_us": "50000"},
			"cpuacct": nil,
			"cpuset":  {"cpuset.cpus": "", "cpuset.mems": ""},
			"blkio":   nil,
		} {
			joinBenchCgroup(b, filepath.Join("/sys/fs/cgroup", c), name, "tasks", tid, settings)
		}
	}

	kfs := kernelfs.New("/proc", kernelfs.Options{})
	defer kfs.Close()
	cgroups := cgroupview.NewReader(h, kfs)
	r, err := caller.NewResolver(cgroups, kfs)
	if err != nil {
		b.Fatal(err)
	}
	p := New(Config{Cgroups: cgroups, Resolver: r, FS: kfs, ProcRoot: "/proc"})
	defer p.Close()
	self := uint32(syscall.Gettid())
	data, err := p.meminfo(context.Background(), self)
	if err != nil {
		b.Fatal(err)
	}
	if !containsLine(data, "MemTotal:         262144 kB") {
		b.Fatalf("not the cgroup's view:\n%s", data)
	}
	for _, f := range []struct {
		name    string
		content func(context.Context, uint32) ([]byte, error)
	}{
		{"meminfo", p.meminfo}, {"swaps", p.swaps}, {"cpuinfo", p.cpuinfo},
		// Without the load tracker the daemon starts: no loadavg
		// (it would be the host's file), and stat counts procs_running
		// from a thread scan at most a second old instead of the BPF
		// iterator's states.
		{"stat", p.stat}, {"uptime", p.uptimeFile},
		{"diskstats", p.diskstats},
	} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.content(context.Background(), self); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// joinBenchCgroup makes cgroup name under base with settings (an empty value
// copies the parent's, as cpuset needs), moves id into it through its procs
// file, and at the end moves id back and removes the cgroup.
func joinBenchCgroup(b *testing.B, base, name, procs string, id int, settings map[string]string) {
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		b.Fatal(err)
	}
	b.Cleanup(func() { syscall.Rmdir(dir) })
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} { // before the rest: cpuset refuses tasks until both are set
		if v, ok := settings[f]; ok && v == "" {
			parent, err := os.ReadFile(filepath.Join(base, f))
			if err != nil {
				b.Fatal(err)
			}
			settings[f] = string(parent)
		}
	}
	for f, v := range settings {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0); err != nil {
			b.Fatalf("%s: %v", f, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, procs), []byte(fmt.Sprint(id)), 0); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.WriteFile(filepath.Join(base, procs), []byte(fmt.Sprint(id)), 0) })
}

func containsLine(data []byte, line string) bool {
	for l := range splitLines(data) {
		if l == line {
			return true
		}
	}
	return false
}

func splitLines(data []byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		start := 0
		for i, c := range data {
			if c == '\n' {
				if !yield(string(data[start:i])) {
					return
				}
				start = i + 1
			}
		}
	}
}
