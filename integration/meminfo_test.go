package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const mib = 1 << 20

func TestFreeShowsMemoryLimit(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "free", nil)
	cg.SetMemoryLimit(t, 300*mib)
	mem, _ := freeBytes(t, d.run(t, cg, "/usr/bin/free -b"))
	if mem["total"] != 300*mib {
		t.Fatalf("free total = %d, want %d (300 MiB)", mem["total"], 300*mib)
	}
	if mem["used"] <= 0 || mem["used"] > 100*mib {
		t.Errorf("free used = %d, want a small positive amount", mem["used"])
	}
}

func TestParentLimitAppliesToUnlimitedChild(t *testing.T) {
	d := startDaemon(t)
	parent := newCgroup(t, "parent", nil)
	parent.SetMemoryLimit(t, 256*mib)
	child := newCgroup(t, "child", parent)
	mem, _ := freeBytes(t, d.run(t, child, "/usr/bin/free -b"))
	if mem["total"] != 256*mib {
		t.Fatalf("free total in unlimited child = %d, want the parent's %d", mem["total"], 256*mib)
	}
}

// Clean page cache can be dropped on demand, so it stays available; tmpfs
// pages cannot, so they are used memory.
func TestPageCacheAvailableTmpfsUsed(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "cache", nil)
	cg.SetMemoryLimit(t, 300*mib)
	dir := t.TempDir()
	if out, err := runHost("stat", "-f", "-c", "%T", dir); err == nil && strings.TrimSpace(out) == "tmpfs" {
		t.Skipf("%s is on tmpfs: its page cache is shmem, not clean cache", dir)
	}
	script := fmt.Sprintf(`
/usr/bin/free -b; echo ---
dd if=/dev/zero of=%[1]s/cache bs=1M count=150 status=none; sync
cat %[1]s/cache > /dev/null
/usr/bin/free -b; echo ---
mkdir %[1]s/tmpfs && mount -t tmpfs -o size=100m none %[1]s/tmpfs
dd if=/dev/zero of=%[1]s/tmpfs/data bs=1M count=64 status=none
/usr/bin/free -b
`, dir)
	parts := strings.Split(d.run(t, cg, script), "---")
	if len(parts) != 3 {
		t.Fatalf("unexpected output: %q", parts)
	}
	before, _ := freeBytes(t, parts[0])
	cached, _ := freeBytes(t, parts[1])
	tmpfs, _ := freeBytes(t, parts[2])
	t.Logf("used before %d MiB, after 150 MiB cache %d MiB (buff/cache %d MiB), after 64 MiB tmpfs %d MiB",
		before["used"]/mib, cached["used"]/mib, cached["buff/cache"]/mib, tmpfs["used"]/mib)
	if cached["buff/cache"]-before["buff/cache"] < 100*mib {
		t.Errorf("buff/cache grew by %d MiB after writing 150 MiB, want at least 100", (cached["buff/cache"]-before["buff/cache"])/mib)
	}
	if cached["available"] < cached["total"]-100*mib {
		t.Errorf("available = %d MiB of %d MiB with 150 MiB clean cache, want most of it", cached["available"]/mib, cached["total"]/mib)
	}
	if grew := cached["used"] - before["used"]; grew > 20*mib {
		t.Errorf("clean page cache raised used by %d MiB, want under 20", grew/mib)
	}
	if grew := tmpfs["used"] - cached["used"]; grew < 60*mib || grew > 72*mib {
		t.Errorf("64 MiB in tmpfs raised used by %d MiB, want about 64", grew/mib)
	}
}

// Sixteen cgroups with different limits read at once through one mount;
// each must only ever see its own MemTotal.
func TestConcurrentReadersSeeOwnLimits(t *testing.T) {
	d := startDaemon(t)
	// 16 containers of 200 reads each; fewer under the VM's emulated CPUs,
	// where each read forks a process and the whole took over a minute.
	n, reads := 16, 200
	if os.Getenv("CGPROCFS_VM") != "" {
		n, reads = 6, 60
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*n) // at most two per container
	for i := range n {
		limit := int64(100+8*i) * mib
		cg := newCgroup(t, fmt.Sprintf("conc%d", i), nil)
		cg.SetMemoryLimit(t, limit)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := d.command(t.Context(), cg, fmt.Sprintf("for i in $(seq %d); do head -n1 /proc/meminfo; done", reads))
			out, err := cmd.Output()
			if err != nil {
				errs <- fmt.Errorf("cgroup %d: %v", i, err)
				return
			}
			want := strconv.FormatInt(limit/1024, 10) + " kB"
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != reads {
				errs <- fmt.Errorf("cgroup %d: %d lines, want %d", i, len(lines), reads)
			}
			for _, l := range lines {
				if !strings.HasPrefix(l, "MemTotal:") || !strings.HasSuffix(l, " "+want) {
					errs <- fmt.Errorf("cgroup %d with limit %s read %q", i, want, l)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestSwapsHeaderAndMeminfoLayout(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "layout", nil)
	cg.SetMemoryLimit(t, 300*mib)
	out := d.run(t, cg, "cat /proc/meminfo; echo ---; cat /proc/swaps")
	parts := strings.SplitN(out, "---\n", 2)
	host, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	keys := func(s string) []string {
		var ks []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			ks = append(ks, strings.SplitN(l, ":", 2)[0])
		}
		return ks
	}
	if got, want := keys(parts[0]), keys(string(host)); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("meminfo keys differ from the host's:\n got %v\nwant %v", got, want)
	}
	if !strings.HasPrefix(parts[1], "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n") {
		t.Errorf("/proc/swaps lacks the kernel's header: %q", parts[1])
	}
}
