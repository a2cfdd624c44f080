package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A churn of short-lived cgroups under a low descriptor limit: the daemon
// keeps descriptors of the cgroups it reads, and must neither run out (every
// read works) nor keep those of removed cgroups (its count of cgroup
// descriptors comes back to where it started within 10 s of the last
// removal).
func TestDescriptorsBoundedUnderCgroupChurn(t *testing.T) {
	needRoot(t)
	cycles := 5000
	if os.Getenv("CGPROCFS_VM") != "" {
		cycles = 200 // each cgroup operation costs milliseconds under TCG
	}
	d := startDaemonLimited(t, 4096)
	pid := d.serverPid()
	if got := nofileLimit(t, pid); got != 4096 {
		t.Fatalf("daemon runs with RLIMIT_NOFILE %d, want 4096", got)
	}
	back := ownCgroupProcsFiles(t)
	moveBack := func() {
		for _, f := range back {
			if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
				t.Errorf("moving the test back to %s: %v", f, err)
			}
		}
	}
	files := []string{"proc/meminfo", "proc/stat", "proc/diskstats", "proc/cpuinfo"}
	cycle := func(i int) {
		cg := newCgroup(t, "churn", nil)
		limit := int64(i%7+1) << 26
		cg.SetMemoryLimit(t, limit)
		func() {
			defer moveBack()
			for _, f := range cg.procsFiles() {
				if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
					t.Fatalf("joining %s: %v", f, err)
				}
			}
			for _, f := range files {
				data, err := os.ReadFile(d.Path(f))
				if err != nil {
					t.Fatalf("cycle %d: reading %s: %v\n%s", i, f, err, d.logs())
				}
				if f == "proc/meminfo" && !bytes.Contains(data, fmt.Appendf(nil, " %d kB\n", limit>>10)) {
					t.Fatalf("cycle %d: meminfo is not the new cgroup's (limit %d kB):\n%s", i, limit>>10, data)
				}
			}
		}()
		cg.remove(t)
	}
	for i := range 20 { // warm-up: the daemon's own steady descriptors
		cycle(i)
	}
	// Removed cgroups' descriptors go at the daemon's next sweep (every
	// 2 s): the start is the count once the warm-up's are gone.
	var start int
	prev := -1
	poll(t, 15*time.Second, "the daemon's descriptors to settle after the warm-up", func() bool {
		n := countFDs(t, pid)
		settled := n == prev
		prev, start = n, n
		if !settled {
			time.Sleep(2500 * time.Millisecond)
		}
		return settled
	})
	began := time.Now()
	for i := range cycles {
		cycle(i)
	}
	t.Logf("%d create/read/delete cycles in %v; daemon descriptors %d before, %d just after", cycles, time.Since(began).Round(time.Millisecond), start, countFDs(t, pid))
	poll(t, 10*time.Second, "the daemon's descriptors to come back to their start", func() bool {
		return countFDs(t, pid) <= start
	})
}

// startDaemonLimited starts the daemon with RLIMIT_NOFILE set to nofile
// (soft and hard), as `ulimit -n` does.
func startDaemonLimited(t *testing.T, nofile int) *daemon {
	t.Helper()
	return startDaemonWrapped(t, []string{"/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile)})
}

func nofileLimit(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, "Max open files") && len(f) >= 5 {
			n, _ := strconv.Atoi(f[3])
			return n
		}
	}
	t.Fatalf("no open files limit in /proc/%d/limits", pid)
	return 0
}

// countFDs counts the daemon's descriptors of cgroup files: those of
// removed cgroups must go. (Its /proc/<tid> descriptors follow the test's
// own threads, whose number the Go runtime changes as it likes.)
func countFDs(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(dir + "/" + fd.Name()); err == nil && strings.HasPrefix(target, cgroupRoot+"/") {
			n++
		}
	}
	return n
}

// ownCgroupProcsFiles are the cgroup.procs files of the cgroups this test
// process is in, for the controllers newCgroup uses.
func ownCgroupProcsFiles(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if unified {
			if parts[0] == "0" {
				out = append(out, filepath.Join(cgroupRoot, parts[2], "cgroup.procs"))
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			for _, want := range v1Controllers {
				if c == want {
					out = append(out, filepath.Join(cgroupRoot, c, parts[2], "cgroup.procs"))
				}
			}
		}
	}
	return out
}

// A cgroup removed and made again at the same path, and (v1) a cgroup
// renamed away with another made at its path: the daemon keeps descriptors
// of the cgroups it read, and a reader in the new cgroup must get the new
// cgroup's figures, never the old one's through those descriptors (removal
// fails their reads with ENODEV; a v1 rename is caught by the rename check, kernelfs/renames.go).
func TestCgroupMadeAgainAtTheSamePath(t *testing.T) {
	d := startDaemon(t)
	memTotal := func(cg *testCgroup) string {
		t.Helper()
		// Twice: the second read goes through the kept descriptors.
		out := d.run(t, cg, "head -n1 /proc/meminfo >/dev/null; head -n1 /proc/meminfo; cat /sys/devices/system/cpu/online")
		return memTotalLine(t, out) + " online " + strings.TrimSpace(out[strings.IndexByte(out, '\n')+1:])
	}
	setQuota := func(cg *testCgroup, cpus int) {
		if unified {
			cg.Set(t, "cpu", "cpu.max", fmt.Sprintf("%d 100000", cpus*100000))
		} else {
			cg.Set(t, "cpu", "cpu.cfs_period_us", "100000")
			cg.Set(t, "cpu", "cpu.cfs_quota_us", strconv.Itoa(cpus*100000))
		}
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs to tell a 1-CPU quota from none")
	}
	online := "0" // a 1-CPU quota's view

	first := newCgroup(t, "again", nil)
	first.SetMemoryLimit(t, 100*mib)
	setQuota(first, 1)
	if got, want := memTotal(first), kb(100*mib)+" online "+online; got != want {
		t.Fatalf("first cgroup: %q, want %q", got, want)
	}
	first.remove(t)
	again := makeCgroup(t, first.Name)
	again.SetMemoryLimit(t, 200*mib)
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	if got, want := memTotal(again), kb(200*mib)+" online "+all; got != want {
		t.Fatalf("cgroup made again at the same path: %q, want %q (the removed one's figures?)", got, want)
	}
	if unified {
		return // cgroup2 has no rename
	}
	moved := &testCgroup{Name: again.Name + "-moved"}
	for i, dir := range again.dirs() {
		if err := os.Rename(dir, moved.dirs()[i]); err != nil {
			t.Fatalf("renaming %s: %v", dir, err)
		}
	}
	t.Cleanup(func() { moved.remove(t) })
	third := makeCgroup(t, again.Name)
	third.SetMemoryLimit(t, 300*mib)
	setQuota(third, 1)
	if got, want := memTotal(third), kb(300*mib)+" online "+online; got != want {
		t.Fatalf("cgroup made at the path of one renamed away: %q, want %q (the renamed one's figures?)", got, want)
	}
	if got, want := memTotal(moved), kb(200*mib)+" online "+all; got != want {
		t.Fatalf("the renamed cgroup: %q, want %q", got, want)
	}
}
