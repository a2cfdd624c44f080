package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// diskOf finds the whole disk that holds dir's filesystem: its
// "major:minor" and the name /proc/diskstats gives it. cgroup I/O counters
// are kept per whole disk, never per partition.
func diskOf(t *testing.T, dir string) (devnum, name string) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^0xfff
	minor := dev&0xff | (dev>>12)&^0xff
	sys, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", major, minor))
	if err != nil {
		t.Skipf("%s is not on a block device (%d:%d): %v", dir, major, minor, err)
	}
	if exists(filepath.Join(sys, "partition")) {
		sys = filepath.Dir(sys)
	}
	b, err := os.ReadFile(filepath.Join(sys, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b)), filepath.Base(sys)
}

// diskstatsLines parses a diskstats file into name → counters, checking the
// kernel's shape on the way.
func diskstatsLines(t *testing.T, out string) map[string][]uint64 {
	t.Helper()
	m := map[string][]uint64{}
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 14 || fmt.Sprintf("%4s %7s %s", f[0], f[1], f[2]) != line[:len(fmt.Sprintf("%4s %7s %s", f[0], f[1], f[2]))] {
			t.Fatalf("diskstats line not in the kernel's layout: %q", line)
		}
		var c []uint64
		for _, s := range f[3:] {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("diskstats line %q: %v", line, err)
			}
			c = append(c, v)
		}
		m[f[2]] = c
	}
	return m
}

// Sectors written is the 7th counter after the name.
const sectorsWritten = 6

// A container that writes 64 MiB with O_DIRECT sees those writes, and only
// its own, in /proc/diskstats and in iostat; a quiet one next to it sees
// none.
func TestDiskstatsShowsContainerWrites(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	devnum, name := diskOf(t, dir)
	t.Logf("%s is on %s (%s)", dir, name, devnum)
	busy := newCgroup(t, "diskbusy", nil)
	quiet := newCgroup(t, "diskquiet", nil)
	if unified {
		if !exists(busy.file("io", "io.stat")) {
			t.Fatalf("no io.stat in %s: the io controller is not enabled for test cgroups", busy.Name)
		}
	} else {
		// v1 blkio counts a cgroup's bios only where throttling is
		// active on the device: a rule far above any disk's speed.
		for _, cg := range []*testCgroup{busy, quiet} {
			cg.Set(t, "blkio", "blkio.throttle.write_bps_device", devnum+" 10000000000")
		}
	}

	out := d.run(t, busy, fmt.Sprintf(`
dd if=/dev/zero of=%s/data bs=1M count=64 oflag=direct status=none
cat /proc/diskstats; echo @@@
/usr/bin/iostat -d -k %s; echo @@@
/usr/bin/vmstat -d
`, dir, name))
	hostRaw, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		t.Fatal(err)
	}
	host := diskstatsLines(t, string(hostRaw))
	parts := strings.Split(out, "@@@\n")
	if len(parts) != 3 {
		t.Fatalf("unexpected output:\n%s", out)
	}
	ctr := diskstatsLines(t, parts[0])
	t.Logf("container's diskstats:\n%s", parts[0])
	c, ok := ctr[name]
	if !ok {
		t.Fatalf("no %s line in the container's diskstats:\n%s", name, parts[0])
	}
	for n, l := range ctr {
		h, ok := host[n]
		if !ok {
			t.Errorf("container shows %s, which the host does not list", n)
		} else if len(l) != len(h) {
			t.Errorf("%s has %d counters, the host's line %d", n, len(l), len(h))
		}
	}
	if w := c[sectorsWritten]; w < 131072 || w >= host[name][sectorsWritten] {
		t.Errorf("%s sectors written = %d, want at least 131072 (64 MiB) and less than the host's %d", name, w, host[name][sectorsWritten])
	}
	if kb := iostatColumn(t, parts[1], name, "kB_wrtn"); kb < 65536 {
		t.Errorf("iostat kB_wrtn for %s = %v, want at least 65536:\n%s", name, kb, parts[1])
	}
	if !strings.Contains(parts[2], name) {
		t.Errorf("vmstat -d does not list %s:\n%s", name, parts[2])
	}

	qparts := strings.Split(d.run(t, quiet, "cat /proc/diskstats; echo @@@; /usr/bin/iostat -d -k "+name), "@@@\n")
	if len(qparts) != 2 {
		t.Fatalf("unexpected output in the quiet cgroup: %q", qparts)
	}
	qout := qparts[0]
	if kb := iostatColumn(t, qparts[1], name, "kB_wrtn"); kb != 0 {
		t.Errorf("iostat kB_wrtn for %s in the quiet cgroup = %v, want 0:\n%s", name, kb, qparts[1])
	}
	for n, l := range diskstatsLines(t, qout) {
		for i, v := range l {
			if v != 0 {
				t.Errorf("quiet container's %s counter %d = %d, want no lines or zeros:\n%s", n, i+1, v, qout)
				break
			}
		}
	}
}

// iostatColumn finds the value of column col in the row of device dev.
func iostatColumn(t *testing.T, out, dev, col string) float64 {
	t.Helper()
	var header []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "Device" || f[0] == "Device:" {
			header = f
			continue
		}
		if f[0] != dev || header == nil {
			continue
		}
		for i, h := range header {
			if h == col && i < len(f) {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					t.Fatalf("iostat %s %q: %v", col, f[i], err)
				}
				return v
			}
		}
	}
	t.Fatalf("no %s row with a %s column in iostat output:\n%s", dev, col, out)
	return 0
}

// A container's view includes the I/O of cgroups nested inside it. The
// reader sits in the container's init.scope, which stands for the container
// (v2 allows no processes in a cgroup with children that use controllers).
func TestDiskstatsCountsDescendants(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	devnum, name := diskOf(t, dir)
	parent := newCgroup(t, "diskparent", nil)
	work := newCgroup(t, "work", parent)
	scope := newCgroup(t, "init.scope", parent)
	if !unified {
		parent.Set(t, "blkio", "blkio.throttle.write_bps_device", devnum+" 10000000000")
	}
	d.run(t, work, fmt.Sprintf("dd if=/dev/zero of=%s/data bs=1M count=16 oflag=direct status=none", dir))
	out := d.run(t, scope, "cat /proc/diskstats")
	if w := diskstatsLines(t, out)[name]; len(w) == 0 || w[sectorsWritten] < 32768 {
		t.Errorf("parent's diskstats after its child wrote 16 MiB to %s: %v, want at least 32768 sectors written:\n%s", name, w, out)
	}
}

// On v1, a disk that uses the bfq scheduler is counted by bfq's files, with
// no throttle rule at all. The disk is a loop device the test attaches.
func TestDiskstatsV1BFQWithoutThrottleRule(t *testing.T) {
	needRoot(t)
	if unified {
		t.Skip("v1 only: cgroup v2 has no bfq counters of its own, io.stat counts every disk")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	out, err := runHost("losetup", "-f", "--show", "--direct-io=on", img)
	if err != nil {
		t.Skipf("no loop device: %v %s", err, out)
	}
	loop := strings.TrimSpace(out)
	name := filepath.Base(loop)
	sched := filepath.Join("/sys/block", name, "queue/scheduler")
	before, _ := os.ReadFile(sched)
	t.Cleanup(func() {
		// Put the scheduler back as it was, then detach.
		if i, j := strings.IndexByte(string(before), '['), strings.IndexByte(string(before), ']'); i >= 0 && j > i {
			os.WriteFile(sched, []byte(string(before)[i+1:j]), 0)
		}
		if out, err := runHost("losetup", "-d", loop); err != nil {
			t.Errorf("detaching %s: %v %s", loop, err, out)
		}
	})
	if err := os.WriteFile(sched, []byte("bfq"), 0); err != nil {
		t.Skipf("%s cannot use bfq: %v", name, err)
	}
	// Start after the loop device exists, so its sys/block stat is served.
	d := startDaemon(t)
	cg := newCgroup(t, "diskbfq", nil)
	res := d.run(t, cg, fmt.Sprintf(`
dd if=/dev/zero of=%s bs=1M count=32 oflag=direct status=none
cat /proc/diskstats; echo @@@
/usr/bin/iostat -d -k %s`, loop, name))
	parts := strings.Split(res, "@@@\n")
	if len(parts) != 2 {
		t.Fatalf("unexpected output:\n%s", res)
	}
	t.Logf("container's diskstats:\n%s", parts[0])
	if w := diskstatsLines(t, parts[0])[name]; len(w) == 0 || w[sectorsWritten] < 65536 {
		t.Errorf("%s after writing 32 MiB: %v, want at least 65536 sectors written", name, w)
	}
	if kb := iostatColumn(t, parts[1], name, "kB_wrtn"); kb < 32768 {
		t.Errorf("iostat kB_wrtn for %s = %v, want at least 32768:\n%s", name, kb, parts[1])
	}
}
