package integration

// proc/vmstat and proc/pressure/*: the container's paging, swapping and
// stalls, read with procps vmstat and cat inside real cgroups.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVmstatHelperTouch is not a test of its own: run as a child with
// CGPROCFS_TOUCH_MIB set, it touches that much anonymous memory over and
// over until killed, so that a cgroup limited below it keeps swapping or
// reclaiming.
func TestVmstatHelperTouch(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("CGPROCFS_TOUCH_MIB"))
	if err != nil {
		t.Skip("helper process of the vmstat and pressure tests, not a test")
	}
	b := make([]byte, n*mib)
	for round := byte(1); ; round++ {
		for i := 0; i < len(b); i += 4096 {
			b[i] = round
		}
		runtime.KeepAlive(b)
	}
}

// startToucher runs TestVmstatHelperTouch in cg over n MiB.
func startToucher(t *testing.T, d *daemon, cg *testCgroup, n int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d.start(t, cg, fmt.Sprintf("CGPROCFS_TOUCH_MIB=%d exec %s -test.run '^TestVmstatHelperTouch$' >/dev/null", n, exe))
}

// vmstatRows parses procps `vmstat N M` output into one map per sample,
// column name to value.
func vmstatRows(t *testing.T, out string) []map[string]int64 {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 {
		t.Fatalf("vmstat printed %q", out)
	}
	head := strings.Fields(lines[1])
	var rows []map[string]int64
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) != len(head) {
			t.Fatalf("vmstat row %q does not match the header %q", l, lines[1])
		}
		row := map[string]int64{}
		for i, s := range f {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("vmstat row %q: %v", l, err)
			}
			row[head[i]] = v
		}
		rows = append(rows, row)
	}
	return rows
}

func hostVmstat(t *testing.T) map[string]int64 { return kvFile(t, readText(t, "/proc/vmstat")) }

// A container that writes and reads 64 MiB with O_DIRECT and starts 40
// processes sees that in its /proc/vmstat (pgpgout, pgpgin, pgfault) and in
// vmstat -s, never the host's totals; an idle one next to it sees no
// paging and no swapping in procps vmstat.
func TestVmstatContainerIO(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	devnum, name := diskOf(t, dir)
	busy := newCgroup(t, "vmbusy", nil)
	idle := newCgroup(t, "vmidle", nil)
	if !unified {
		// v1 blkio counts a cgroup's bios only where throttling is
		// active on the device (see TestDiskstatsShowsContainerWrites).
		for _, cg := range []*testCgroup{busy, idle} {
			cg.Set(t, "blkio", "blkio.throttle.write_bps_device", devnum+" 10000000000")
			cg.Set(t, "blkio", "blkio.throttle.read_bps_device", devnum+" 10000000000")
		}
	}
	t.Logf("%s is on %s", dir, name)
	before := kvFile(t, d.run(t, busy, "cat /proc/vmstat"))
	// vmstat 1 3 runs while the writes and reads go on (its later rows
	// show them as bo and bi, when they last that long).
	out := d.run(t, busy, fmt.Sprintf(`
(dd if=/dev/zero of=%[1]s/data bs=1M count=64 oflag=direct status=none
dd if=%[1]s/data of=/dev/null bs=1M iflag=direct status=none) &
vmstat 1 3 >%[1]s/vmstat.out; wait
for i in $(seq 40); do /bin/true; done
cat /proc/vmstat; echo @@@; vmstat -s; echo @@@; cat %[1]s/vmstat.out
`, dir))
	host := hostVmstat(t)
	parts := strings.Split(out, "@@@\n")
	if len(parts) != 3 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	after := kvFile(t, parts[0])
	t.Logf("vmstat 1 3 in the busy container during 64 MiB of direct writes, then reads:\n%s", parts[2])
	var bi, bo int64
	for _, row := range vmstatRows(t, parts[2])[1:] {
		bi, bo = bi+row["bi"], bo+row["bo"]
	}
	// One-second rows of 64 MiB each way at most (with slack for rounding).
	if bi > 2*65536+1024 || bo > 2*65536+1024 {
		t.Errorf("vmstat rows add up to bi %d, bo %d KiB/s: more than the container did", bi, bo)
	}
	for _, c := range []struct {
		key  string
		min  int64
		what string
	}{
		{"pgpgout", 65536, "64 MiB written with O_DIRECT, in KiB"},
		{"pgpgin", 65536, "64 MiB read with O_DIRECT, in KiB"},
		// Each process started faults in dozens of pages (a large
		// buffer would not do: with THP a fault maps 2 MiB).
		{"pgfault", 1000, "40 processes started"},
	} {
		got := after[c.key] - before[c.key]
		if got < c.min {
			t.Errorf("%s grew by %d, want at least %d (%s)", c.key, got, c.min, c.what)
		}
		if after[c.key] >= host[c.key] {
			t.Errorf("%s %d in the container, the host's %d: want less than the host's", c.key, after[c.key], host[c.key])
		}
	}
	if !strings.Contains(parts[1], " K paged out\n") {
		t.Errorf("vmstat -s has no paged-out line:\n%s", parts[1])
	}
	for _, l := range strings.Split(parts[1], "\n") {
		if strings.HasSuffix(l, "K paged out") {
			if v, _ := strconv.ParseInt(strings.Fields(l)[0], 10, 64); v < 65536 || v >= host["pgpgout"] {
				t.Errorf("vmstat -s: %q, want the container's (at least 65536 K, less than the host's %d)", l, host["pgpgout"])
			}
		}
	}

	// The idle container: no paging, no swapping, its own page counts.
	out = d.run(t, idle, "cat /proc/vmstat; echo @@@; cat /proc/meminfo; echo @@@; vmstat 1 3")
	parts = strings.Split(out, "@@@\n")
	if len(parts) != 3 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	t.Logf("vmstat 1 3 in the idle container:\n%s", parts[2])
	vm, mem := kvFile(t, parts[0]), kvFile(t, parts[1])
	if vm["pgpgout"] > 1024 || vm["pswpin"] != 0 || vm["pswpout"] != 0 {
		t.Errorf("idle container: pgpgout %d, pswpin %d, pswpout %d; want about 0, 0, 0", vm["pgpgout"], vm["pswpin"], vm["pswpout"])
	}
	if vm["pgfault"] >= host["pgfault"] || vm["pgfault"] >= after["pgfault"] {
		t.Errorf("idle container: pgfault %d, want less than the busy one's %d and the host's %d", vm["pgfault"], after["pgfault"], host["pgfault"])
	}
	// nr_free_pages is meminfo's MemFree in pages (read just before).
	page := int64(os.Getpagesize())
	if free := vm["nr_free_pages"] * page / 1024; free > mem["MemTotal"] || free < mem["MemFree"]-4096 || free > mem["MemFree"]+4096 {
		t.Errorf("nr_free_pages %d (%d kB), want meminfo's MemFree %d kB", vm["nr_free_pages"], free, mem["MemFree"])
	}
	// No source: 0; the machine's writeback threshold: the host's.
	if vm["numa_hit"] != 0 || (vm["nr_dirty_threshold"] == 0) != (host["nr_dirty_threshold"] == 0) {
		t.Errorf("numa_hit %d (want 0), nr_dirty_threshold %d (want the host's, %d)", vm["numa_hit"], vm["nr_dirty_threshold"], host["nr_dirty_threshold"])
	}
	for i, row := range vmstatRows(t, parts[2]) {
		if row["si"] != 0 || row["so"] != 0 || (i > 0 && row["bo"] != 0) {
			t.Errorf("idle container's vmstat row %d: si %d so %d bo %d, want 0", i, row["si"], row["so"], row["bo"])
		}
	}
}

// On v2 a cgroup that swaps makes the host's pswpin/pswpout grow, while
// procps vmstat in an idle neighbour shows si and so 0. The swapping
// cgroup sees its own swapping where memory.stat counts it (pswpin and
// pswpout, 6.12 and later) and 0 on older kernels such as 6.1.
func TestVmstatSwapV2(t *testing.T) {
	needV2(t, "memory.swap.max and per-cgroup swap counters")
	host := kvFile(t, readText(t, "/proc/meminfo"))
	if host["SwapTotal"] < 128*1024 {
		t.Skipf("host SwapTotal %d kB: need 128 MiB of swap", host["SwapTotal"])
	}
	d := startDaemon(t)
	swapper := newCgroup(t, "vmswap", nil)
	idle := newCgroup(t, "vmswapidle", nil)
	swapper.SetMemoryLimit(t, 48*mib)
	swapper.Set(t, "", "memory.swap.max", "max")
	hostBefore := hostVmstat(t)
	startToucher(t, d, swapper, 96)
	poll(t, 90*time.Second, "the host's pswpin and pswpout to grow by 1000 pages", func() bool {
		h := hostVmstat(t)
		return h["pswpout"]-hostBefore["pswpout"] > 1000 && h["pswpin"]-hostBefore["pswpin"] > 1000
	})
	mid := hostVmstat(t)
	out := d.run(t, idle, "vmstat 1 3")
	hostAfter := hostVmstat(t)
	t.Logf("vmstat 1 3 in the idle container while its neighbour swaps (host pswpin %d→%d, pswpout %d→%d):\n%s",
		mid["pswpin"], hostAfter["pswpin"], mid["pswpout"], hostAfter["pswpout"], out)
	for i, row := range vmstatRows(t, out) {
		if row["si"] != 0 || row["so"] != 0 {
			t.Errorf("idle container's vmstat row %d: si %d so %d, want 0 0", i, row["si"], row["so"])
		}
	}
	if hostAfter["pswpout"] <= mid["pswpout"] {
		t.Errorf("the host's pswpout did not grow during the idle container's vmstat (%d→%d)", mid["pswpout"], hostAfter["pswpout"])
	}

	stat := kvFile(t, swapper.Get(t, "", "memory.stat"))
	sw := kvFile(t, d.run(t, swapper, "cat /proc/vmstat"))
	hostAfter = hostVmstat(t)
	t.Logf("vmstat 1 3 in the swapping container:\n%s", d.run(t, swapper, "vmstat 1 3"))
	if _, ok := stat["pswpout"]; ok {
		if sw["pswpout"] == 0 || sw["pswpin"] == 0 || sw["pswpout"] > hostAfter["pswpout"] {
			t.Errorf("memory.stat counts swapping: pswpin %d, pswpout %d in the container, want non-zero, its own", sw["pswpin"], sw["pswpout"])
		}
	} else {
		t.Logf("this kernel's memory.stat has no pswpin/pswpout: the swapping container sees 0 too (workingset_refault_anon %d)", sw["workingset_refault_anon"])
		if sw["pswpin"] != 0 || sw["pswpout"] != 0 {
			t.Errorf("no per-cgroup swap counters, yet pswpin %d, pswpout %d, want 0", sw["pswpin"], sw["pswpout"])
		}
	}
	if sw["pgmajfault"] == 0 || sw["pgmajfault"] > hostAfter["pgmajfault"] {
		t.Errorf("swapping container's pgmajfault %d, want non-zero and at most the host's %d", sw["pgmajfault"], hostAfter["pgmajfault"])
	}
}

// pressureAvg10 is the avg10 of a pressure file's "some" line.
func pressureAvg10(t *testing.T, s string) float64 {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) == 5 && f[0] == "some" && strings.HasPrefix(f[1], "avg10=") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(f[1], "avg10="), 64)
			if err != nil {
				t.Fatalf("pressure line %q: %v", l, err)
			}
			return v
		}
	}
	t.Fatalf("no some line in pressure file %q", s)
	return 0
}

// checkPressureLayout checks the kernel's layout: a some line and a full
// line (cpu's too since 5.13), each "KIND avg10=X.XX avg60=X.XX
// avg300=X.XX total=N".
func checkPressureLayout(t *testing.T, what, s string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 2 {
		t.Errorf("%s: %d lines, want some and full: %q", what, len(lines), s)
		return
	}
	for i, l := range lines {
		var a, b, c, d, e, f int
		var total uint64
		want := [...]string{"some", "full"}[i]
		if n, err := fmt.Sscanf(l, want+" avg10=%d.%d avg60=%d.%d avg300=%d.%d total=%d", &a, &b, &c, &d, &e, &f, &total); n != 7 || err != nil {
			t.Errorf("%s: line %q not in the kernel's layout (%v)", what, l, err)
		}
	}
}

// On v2 a cgroup under memory.high with more than that in use shows memory
// pressure in its /proc/pressure/memory, an idle one 0.00; a CPU-bound
// cgroup at a 20% quota shows CPU pressure. Writing a trigger fails with
// EROFS.
func TestPressureV2(t *testing.T) {
	needV2(t, "per-cgroup cpu.pressure, memory.pressure and io.pressure")
	d := startDaemon(t)
	if !exists(d.Path("proc/pressure/memory")) {
		t.Fatalf("proc/pressure/memory not served although /proc/pressure exists: %v", exists("/proc/pressure/memory"))
	}
	hog := newCgroup(t, "psimem", nil)
	idle := newCgroup(t, "psiidle", nil)
	cpu := newCgroup(t, "psicpu", nil)
	hog.Set(t, "", "memory.high", strconv.Itoa(24*mib))
	cpu.Set(t, "", "cpu.max", "20000 100000")
	startToucher(t, d, hog, 64)
	d.start(t, cpu, "while :; do :; done")

	var memOut, cpuOut string
	poll(t, 30*time.Second, "memory pressure in the hog and CPU pressure at a 20% quota", func() bool {
		memOut = d.run(t, hog, "cat /proc/pressure/memory")
		cpuOut = d.run(t, cpu, "cat /proc/pressure/cpu")
		return pressureAvg10(t, memOut) > 0 && pressureAvg10(t, cpuOut) > 0
	})
	t.Logf("memory pressure of the hog:\n%s(its memory.pressure: %s)\ncpu pressure at a 20%% quota:\n%s(its cpu.pressure: %s)",
		memOut, hog.Get(t, "", "memory.pressure"), cpuOut, cpu.Get(t, "", "cpu.pressure"))
	checkPressureLayout(t, "hog memory", memOut)
	checkPressureLayout(t, "cpu at 20%", cpuOut)

	out := d.run(t, idle, `cat /proc/pressure/memory; echo @@@; cat /proc/pressure/cpu; echo @@@; cat /proc/pressure/io; echo @@@
if echo "some 150000 1000000" > /proc/pressure/memory 2>/dev/null; then echo wrote; else echo refused; fi
/bin/sh -c 'echo "some 150000 1000000" > /proc/pressure/memory' 2>&1 || true`)
	parts := strings.Split(out, "@@@\n")
	if len(parts) != 4 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	for i, res := range []string{"memory", "cpu", "io"} {
		checkPressureLayout(t, "idle "+res, parts[i])
	}
	if v := pressureAvg10(t, parts[0]); v != 0 {
		t.Errorf("idle container's memory some avg10 = %.2f, want 0.00:\n%s", v, parts[0])
	}
	if !strings.HasPrefix(parts[3], "refused\n") || !strings.Contains(parts[3], "Read-only file system") {
		t.Errorf("writing a PSI trigger: %q, want refused with EROFS (Read-only file system)", parts[3])
	}
}

// On a v1 host the kernel still tracks pressure on the cgroup2 tree a
// hybrid system mounts at unified/: a container placed in a cgroup there
// sees that cgroup's files; one left at that tree's root (no per-cgroup
// source) sees zeros in the host's layout, never the host's stalls.
func TestPressureV1(t *testing.T) {
	needRoot(t)
	if unified {
		t.Skip("v1 only: the v1 choices for pressure files")
	}
	if !exists("/proc/pressure/cpu") {
		t.Skip("no /proc/pressure on this host (PSI off)")
	}
	d := startDaemon(t)
	cg := newCgroup(t, "psiv1", nil)
	own := readText(t, "/proc/self/cgroup")
	if !strings.Contains(own, "\n0::/\n") && !strings.HasPrefix(own, "0::/\n") {
		t.Skipf("the test runs in a cgroup2 cgroup other than the root (%q): the zeros case needs the root", own)
	}
	out := d.run(t, cg, "cat /proc/pressure/cpu; echo @@@; cat /proc/pressure/memory; echo @@@; cat /proc/pressure/io")
	for i, part := range strings.Split(out, "@@@\n") {
		res := []string{"cpu", "memory", "io"}[i]
		host := readText(t, "/proc/pressure/"+res)
		want := strings.Count(host, "\n")
		zeros := ""
		for _, kind := range []string{"some", "full"}[:want] {
			zeros += kind + " avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
		}
		if part != zeros {
			t.Errorf("%s pressure at the cgroup2 root: %q, want zeros in the host's lines %q", res, part, zeros)
		}
	}

	uroot := filepath.Join(cgroupRoot, "unified")
	if !exists(filepath.Join(uroot, "cgroup.procs")) {
		t.Skip("no cgroup2 tree at " + uroot)
	}
	udir := filepath.Join(uroot, filepath.Base(cg.Name))
	if err := os.Mkdir(udir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeCgroupDir(t, udir) })
	// A busy loop at a 20% v1 quota, in the cgroup2 cgroup too.
	cg.Set(t, "cpu", "cpu.cfs_quota_us", "20000")
	cg.Set(t, "cpu", "cpu.cfs_period_us", "100000")
	d.start(t, cg, "echo $$ > "+filepath.Join(udir, "cgroup.procs")+"; while :; do :; done")
	var got string
	poll(t, 30*time.Second, "CPU pressure of the cgroup2 cgroup", func() bool {
		got = d.run(t, cg, "echo $$ > "+filepath.Join(udir, "cgroup.procs")+"; cat /proc/pressure/cpu")
		return pressureAvg10(t, got) > 0
	})
	own2 := readText(t, filepath.Join(udir, "cpu.pressure"))
	t.Logf("served:\n%sthe cgroup2 cgroup's cpu.pressure:\n%s", got, own2)
	checkPressureLayout(t, "hybrid cpu", got)
}
