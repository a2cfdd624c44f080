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

// BenchmarkMeminfoContent is the daemon's work for one open of
// proc/meminfo without FUSE: resolving the caller, reading its cgroup and
// the host's meminfo, rendering. It runs as root from a memory cgroup it
// makes (cgprocfs-test-bench-*) and leaves; `make bench` measures the whole
// round trip.
func BenchmarkMeminfoContent(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to make a cgroup")
	}
	h, err := cgroupview.Detect("/sys/fs/cgroup")
	if err != nil {
		b.Skip(err)
	}
	base, limit := "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
	if h.Mode == cgroupview.Unified {
		base, limit = "/sys/fs/cgroup", "memory.max"
	}
	dir := filepath.Join(base, fmt.Sprintf("cgprocfs-test-bench-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	defer syscall.Rmdir(dir)
	if err := os.WriteFile(filepath.Join(dir, limit), []byte("268435456"), 0); err != nil {
		b.Fatal(err)
	}
	// Only this thread moves (v1 tasks file; v2 threaded mode is not
	// needed: cgroup.threads is refused, so move the process and back).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid := syscall.Gettid()
	tasks := filepath.Join(dir, "tasks")
	back := filepath.Join(base, "tasks")
	if h.Mode == cgroupview.Unified {
		tasks, back = filepath.Join(dir, "cgroup.procs"), filepath.Join(base, "cgroup.procs")
		tid = os.Getpid()
	}
	orig, _ := os.ReadFile("/proc/self/cgroup")
	_ = orig
	if err := os.WriteFile(tasks, []byte(fmt.Sprint(tid)), 0); err != nil {
		b.Fatal(err)
	}
	defer os.WriteFile(back, []byte(fmt.Sprint(tid)), 0)

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
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.meminfo(context.Background(), self); err != nil {
			b.Fatal(err)
		}
	}
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
