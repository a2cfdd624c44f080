package integration

// Tests of what only a pure cgroup v2 kernel has: "max" in limit files,
// nested cgroups enabled through cgroup.subtree_control, memory.swap.max,
// v2 memory.stat keys, and cgroups without the memory controller. They run
// in the VM of hack/vm (make test-v2) and skip on v1 hosts.

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func needV2(t *testing.T, what string) {
	t.Helper()
	needRoot(t)
	if !unified {
		t.Skip("cgroup v2 only: " + what)
	}
}

// kvFile parses "key value" lines (memory.stat) or "Key: value kB" lines
// (/proc/meminfo) into a map; meminfo values stay in kB.
func kvFile(t *testing.T, s string) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(strings.Replace(sc.Text(), ":", " ", 1))
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		m[f[0]] = v
	}
	return m
}

// meminfoIn reads /proc/meminfo through cgprocfs in cg.
func meminfoIn(t *testing.T, d *daemon, cg *testCgroup) map[string]int64 {
	t.Helper()
	return kvFile(t, d.run(t, cg, "cat /proc/meminfo"))
}

func TestV2MaxLimitsWalkedUpTheTree(t *testing.T) {
	needV2(t, "'max' in memory.max and nested cgroups through cgroup.subtree_control")
	d := startDaemon(t)
	top := newCgroup(t, "tree", nil)
	mid := newCgroup(t, "mid", top)
	leaf := newCgroup(t, "leaf", mid)
	for _, cg := range []*testCgroup{top, mid} {
		if on := cg.Get(t, "", "cgroup.subtree_control"); !strings.Contains(on, "memory") {
			t.Fatalf("%s enables %q for its children, want memory among them", cg.Name, on)
		}
	}
	hostTotal := kvFile(t, readText(t, "/proc/meminfo"))["MemTotal"]

	steps := []struct {
		top, mid, leaf string
		want           int64 // kB
	}{
		{"max", "max", "max", hostTotal},
		{"400M", "max", "max", 400 * 1024},
		{"400M", "200M", "max", 200 * 1024},
		{"400M", "200M", "300M", 200 * 1024},
		{"max", "max", "150M", 150 * 1024},
		{"max", "250M", "max", 250 * 1024},
	}
	for _, s := range steps {
		top.Set(t, "", "memory.max", s.top)
		mid.Set(t, "", "memory.max", s.mid)
		leaf.Set(t, "", "memory.max", s.leaf)
		// The kernel keeps "max" as the word, and a size in bytes.
		if s.leaf == "max" && leaf.Get(t, "", "memory.max") != "max" {
			t.Fatalf("leaf memory.max reads %q after writing max", leaf.Get(t, "", "memory.max"))
		}
		got := meminfoIn(t, d, leaf)["MemTotal"]
		if got != s.want {
			t.Errorf("memory.max %s/%s/%s (top/mid/leaf): MemTotal %d kB, want %d kB", s.top, s.mid, s.leaf, got, s.want)
		}
	}
}

// A cgroup whose parent does not enable the memory controller has no
// memory.* files; the kernel charges and limits its pages at the nearest
// ancestor that has the controller, and so does cgprocfs.
func TestV2CgroupWithoutMemoryController(t *testing.T) {
	needV2(t, "cgroups without a controller exist only in the v2 tree")
	d := startDaemon(t)
	parent := newCgroup(t, "nomemctl", nil)
	parent.SetMemoryLimit(t, 320*mib)
	// A child made by hand: newCgroup would enable the controllers in
	// parent. parent's removal removes it.
	child := &testCgroup{Name: parent.Name + "/plain"}
	if err := os.Mkdir(child.dirs()[0], 0o755); err != nil {
		t.Fatal(err)
	}
	if exists(child.file("", "memory.max")) || exists(child.file("", "memory.current")) {
		t.Fatalf("%s has memory files although %s enables %q", child.Name, parent.Name, parent.Get(t, "", "cgroup.subtree_control"))
	}
	out := d.run(t, child, "cat /proc/meminfo; echo ---; cat /proc/self/cgroup")
	parts := strings.SplitN(out, "---\n", 2)
	if !strings.Contains(parts[1], "/plain") {
		t.Fatalf("reader is not in %s: %s", child.Name, parts[1])
	}
	mem := kvFile(t, parts[0])
	if mem["MemTotal"] != 320*1024 {
		t.Errorf("MemTotal %d kB in a cgroup without the memory controller, want the parent's limit %d kB", mem["MemTotal"], 320*1024)
	}
	usage, _ := strconv.ParseInt(parent.Get(t, "", "memory.current"), 10, 64)
	if free := mem["MemFree"]; free < 320*1024-usage/1024-8*1024 || free > 320*1024 {
		t.Errorf("MemFree %d kB, want about the parent's limit − its usage = %d kB", free, 320*1024-usage/1024)
	}
}

func TestV2SwapMax(t *testing.T) {
	needV2(t, "memory.swap.max")
	d := startDaemon(t)
	host := kvFile(t, readText(t, "/proc/meminfo"))
	cg := newCgroup(t, "swap", nil)
	if !exists(cg.file("", "memory.swap.max")) {
		t.Skip("no swap accounting in this kernel (memory.swap.max missing)")
	}
	cg.SetMemoryLimit(t, 64*mib)
	for _, c := range []struct {
		max  string
		want int64 // kB
	}{
		{"max", host["SwapTotal"]},
		{"0", 0},
		{"96M", min(host["SwapTotal"], 96*1024)},
	} {
		cg.Set(t, "", "memory.swap.max", c.max)
		out := d.run(t, cg, "cat /proc/meminfo; echo ---; cat /proc/swaps")
		parts := strings.SplitN(out, "---\n", 2)
		mem := kvFile(t, parts[0])
		if mem["SwapTotal"] != c.want {
			t.Errorf("memory.swap.max %s, host SwapTotal %d kB: SwapTotal %d kB, want %d kB", c.max, host["SwapTotal"], mem["SwapTotal"], c.want)
		}
		lines := strings.Split(strings.TrimSpace(parts[1]), "\n")
		if wantLines := map[bool]int{true: 2, false: 1}[c.want > 0]; len(lines) != wantLines {
			t.Errorf("memory.swap.max %s: /proc/swaps has %d lines, want %d:\n%s", c.max, len(lines), wantLines, parts[1])
		}
	}
	if host["SwapTotal"] < 96*1024 {
		t.Logf("host SwapTotal %d kB: swapping out is not tried", host["SwapTotal"])
		return
	}

	// Push 100 MiB of tmpfs into a 64 MiB cgroup: at least 36 MiB go to
	// swap, and SwapFree is SwapTotal − memory.swap.current.
	dir := t.TempDir()
	out := d.run(t, cg, fmt.Sprintf(`
mkdir %[1]s/shm && mount -t tmpfs -o size=128m none %[1]s/shm
dd if=/dev/zero of=%[1]s/shm/data bs=1M count=100 status=none
cat %[2]s; echo ---; cat /proc/meminfo; echo ---; cat /proc/swaps; echo ---; cat %[2]s
`, dir, cg.file("", "memory.swap.current")))
	parts := strings.Split(out, "---\n")
	if len(parts) != 4 {
		t.Fatalf("unexpected output %q", out)
	}
	before, _ := strconv.ParseInt(strings.TrimSpace(parts[0]), 10, 64)
	after, _ := strconv.ParseInt(strings.TrimSpace(parts[3]), 10, 64)
	mem := kvFile(t, parts[1])
	t.Logf("swap.current %d→%d KiB, SwapTotal %d kB, SwapFree %d kB", before/1024, after/1024, mem["SwapTotal"], mem["SwapFree"])
	if before < 30*mib {
		t.Fatalf("memory.swap.current %d KiB after 100 MiB of tmpfs in 64 MiB, want at least 30 MiB swapped", before/1024)
	}
	if mem["SwapTotal"] != 96*1024 {
		t.Errorf("SwapTotal %d kB, want 96 MiB", mem["SwapTotal"])
	}
	if free := mem["SwapFree"]; free > 96*1024-min(before, after)/1024+64 || free < 96*1024-max(before, after)/1024-64 {
		t.Errorf("SwapFree %d kB, want 96 MiB − swap.current (%d…%d KiB)", free, before/1024, after/1024)
	}
	sw := strings.Fields(strings.Split(strings.TrimSpace(parts[2]), "\n")[1])
	if len(sw) != 5 || sw[2] != "98304" {
		t.Errorf("/proc/swaps line %q, want size 98304 (KiB)", sw)
	}
}

// TestV2HelperHoldAnon is not a test of its own: run as a child with
// CGPROCFS_HOLD_ANON_MIB set, it holds that much anonymous memory until
// killed, for the memory.stat test.
func TestV2HelperHoldAnon(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("CGPROCFS_HOLD_ANON_MIB"))
	if err != nil {
		t.Skip("helper process of TestV2MemoryStatKeysInMeminfo, not a test")
	}
	b := make([]byte, n*mib)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	fmt.Println("holding")
	time.Sleep(time.Hour)
	runtime.KeepAlive(b)
}

// Every meminfo line cgprocfs takes from memory.stat equals the value the
// kernel shows right before or after the read, within 1 MiB (rounding and
// per-CPU stat batching), with each kind of memory really present.
func TestV2MemoryStatKeysInMeminfo(t *testing.T) {
	needV2(t, "v2 memory.stat keys")
	dir := t.TempDir()
	if out, err := runHost("stat", "-f", "-c", "%T", dir); err == nil && strings.TrimSpace(out) == "tmpfs" {
		t.Skipf("%s is on tmpfs: its page cache is shmem, not file pages", dir)
	}
	d := startDaemon(t)
	cg := newCgroup(t, "stat", nil)
	cg.SetMemoryLimit(t, 512*mib)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d.start(t, cg, "CGPROCFS_HOLD_ANON_MIB=48 exec "+exe+" -test.run '^TestV2HelperHoldAnon$' >/dev/null")
	poll(t, 60*time.Second, "48 MiB of anon in memory.stat", func() bool {
		return kvFile(t, cg.Get(t, "", "memory.stat"))["anon"] >= 48*mib
	})

	stat := cg.file("", "memory.stat")
	// Shmem from tmpfs, reclaimable slab from 4000 new inodes and dentries,
	// then dirty page cache (32 MiB stays under the background writeback
	// threshold and the 30 s expiry, so it is still dirty when read).
	out := d.run(t, cg, fmt.Sprintf(`
mkdir %[1]s/shm && mount -t tmpfs -o size=64m none %[1]s/shm
dd if=/dev/zero of=%[1]s/shm/data bs=1M count=24 status=none
mkdir %[1]s/many && cd %[1]s/many && seq 4000 | xargs touch && cd /
dd if=/dev/zero of=%[1]s/dirty bs=1M count=32 status=none
cat %[2]s; echo ---; cat /proc/meminfo; echo ---; cat %[2]s
`, dir, stat))
	parts := strings.Split(out, "---\n")
	if len(parts) != 3 {
		t.Fatalf("unexpected output %q", out)
	}
	before, mem, after := kvFile(t, parts[0]), kvFile(t, parts[1]), kvFile(t, parts[2])

	const tol = 1024 // kB
	within := func(line string, got, b, a int64) {
		t.Helper()
		lo, hi := min(b, a)/1024-tol, max(b, a)/1024+tol
		if got < lo || got > hi {
			t.Errorf("%s %d kB, want %d…%d kB from memory.stat read before and after", line, got, min(b, a)/1024, max(b, a)/1024)
		} else {
			t.Logf("%-15s %8d kB (memory.stat %d…%d kB)", line, got, min(b, a)/1024, max(b, a)/1024)
		}
	}
	for _, p := range []struct{ key, line string }{
		{"anon", "AnonPages"},
		{"shmem", "Shmem"},
		{"file_dirty", "Dirty"},
		{"file_writeback", "Writeback"},
		{"active_file", "Active(file)"},
		{"inactive_file", "Inactive(file)"},
		{"active_anon", "Active(anon)"},
		{"inactive_anon", "Inactive(anon)"},
		{"slab_reclaimable", "SReclaimable"},
		{"slab_unreclaimable", "SUnreclaim"},
		{"file_mapped", "Mapped"},
	} {
		for _, m := range []map[string]int64{before, after} {
			if _, ok := m[p.key]; !ok {
				t.Fatalf("memory.stat has no %s", p.key)
			}
		}
		within(p.line, mem[p.line], before[p.key], after[p.key])
	}
	// Cached is file minus what cannot be dropped: shmem, dirty, writeback.
	cached := func(m map[string]int64) int64 {
		return m["file"] - m["shmem"] - m["file_dirty"] - m["file_writeback"]
	}
	within("Cached", mem["Cached"], cached(before), cached(after))

	// Each kind of memory is really there, so the comparisons above mean
	// something.
	for _, c := range []struct {
		key  string
		want int64
	}{
		{"anon", 48 * mib},
		{"shmem", 24 * mib},
		{"file_dirty", 16 * mib},
		{"file", 50 * mib},
		{"slab_reclaimable", 1 * mib},
	} {
		if v := min(before[c.key], after[c.key]); v < c.want {
			t.Errorf("memory.stat %s = %d KiB, want at least %d KiB for this test to mean something", c.key, v/1024, c.want/1024)
		}
	}
}

func readText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
