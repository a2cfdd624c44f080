package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// On a v1 host the unified hierarchy exists but holds no controllers. A real
// v2 cgroup there gives the caller a real "0::/path" line, and a fixture
// cgroup2 tree served with --cgroup-root supplies the controller files, so
// the v2 code path runs end to end through the real mount. --proc-root
// serves a fixture host meminfo with swap, which this host lacks. The VM
// (hack/vm) runs the whole suite on a real cgroup2 kernel.
func TestV2FixtureTreeThroughRealMount(t *testing.T) {
	needRoot(t)
	if unified {
		t.Skip("cgroup v1 hosts only: on cgroup v2 the real tree is tested instead")
	}
	if !exists("/sys/fs/cgroup/unified/cgroup.procs") {
		t.Skip("no unified hierarchy mounted at /sys/fs/cgroup/unified")
	}
	name := fmt.Sprintf("cgprocfs-test-v2fix-%d-%d", os.Getpid(), cgroupSeq.Add(1))
	real := filepath.Join("/sys/fs/cgroup/unified", name)
	if err := os.MkdirAll(filepath.Join(real, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		removeCgroupDir(t, filepath.Join(real, "child"))
		removeCgroupDir(t, real)
	})

	root := t.TempDir()
	stat, err := os.ReadFile("../cgroupview/testdata/v2/kubepods/pod/ctr/memory.stat")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"cgroup.controllers":                "cpuset cpu io memory pids\n",
		name + "/memory.max":                fmt.Sprint(256*mib, "\n"),
		name + "/memory.swap.max":           "max\n",
		name + "/child/memory.max":          "max\n",
		name + "/child/memory.swap.max":     fmt.Sprint(64*mib, "\n"),
		name + "/child/memory.current":      fmt.Sprint(200*mib, "\n"),
		name + "/child/memory.swap.current": fmt.Sprint(16*mib, "\n"),
		name + "/child/memory.stat":         string(stat), // file 250M, shmem 50M, dirty 8M, writeback 2M, slab_reclaimable 6M
	}
	for p, content := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	procRoot := t.TempDir()
	hostMeminfo, err := os.ReadFile("../procfiles/testdata/meminfo-swap") // 2097148 kB of swap
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(procRoot, "meminfo"), hostMeminfo, 0o644)

	d := startDaemon(t, "--cgroup-root", root, "--proc-root", procRoot)
	out := d.run(t, nil, fmt.Sprintf("echo $$ > %s/child/cgroup.procs\n/usr/bin/free -b; echo ---; cat /proc/swaps; grep -E '^(Shmem|Dirty|Writeback|SReclaimable):' /proc/meminfo", real))
	parts := strings.SplitN(out, "---\n", 2)
	mem, swap := freeBytes(t, parts[0])
	// Cached = 250 - 50 - 8 - 2 = 190 MiB; free = 256 - 200 = 56 MiB;
	// available = 56 + 190 + 6 = 252 MiB; used = 4 MiB.
	want := map[string]int64{"total": 256 * mib, "free": 56 * mib, "available": 252 * mib, "used": 4 * mib}
	for k, v := range want {
		if mem[k] != v {
			t.Errorf("free Mem %s = %d MiB, want %d MiB", k, mem[k]/mib, v/mib)
		}
	}
	if swap["total"] != 64*mib || swap["used"] != 16*mib {
		t.Errorf("free Swap total %d used %d, want 64 MiB and 16 MiB", swap["total"], swap["used"])
	}
	if !strings.Contains(parts[1], "none") || !strings.Contains(parts[1], "\t65536\t") {
		t.Errorf("/proc/swaps lacks the 64 MiB virtual swap line:\n%s", parts[1])
	}
	for _, line := range []string{"Shmem:             51200 kB", "Dirty:              8192 kB", "Writeback:          2048 kB", "SReclaimable:       6144 kB"} {
		if !strings.Contains(parts[1], line) {
			t.Errorf("meminfo lacks %q:\n%s", line, parts[1])
		}
	}
}
