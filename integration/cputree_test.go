package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needTwoCPUs skips a test on a host with one online CPU.
func needTwoCPUs(t *testing.T) {
	t.Helper()
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(online)) == "0" {
		t.Skip("needs at least two CPUs")
	}
}

// sysconfProbe builds a static program that prints glibc's
// sysconf(_SC_NPROCESSORS_CONF) and (_SC_NPROCESSORS_ONLN), which glibc
// answers from sys/devices/system/cpu. Without gcc (the VM has none) it
// returns "" and the test checks the rest.
func sysconfProbe(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Log("no gcc (hack/deps.sh installs it): glibc's sysconf is not checked")
		return ""
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "sysconf.c")
	prog := `#include <stdio.h>
#include <unistd.h>
int main(void) {
	printf("%ld %ld\n", sysconf(_SC_NPROCESSORS_CONF), sysconf(_SC_NPROCESSORS_ONLN));
	return 0;
}
`
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sysconf")
	if out, err := exec.Command("gcc", "-static", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc -static: %v\n%s", err, out)
	}
	return bin
}

// lscpuField is the value of an lscpu line "name: value".
func lscpuField(out, name string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "(no " + name + " line)"
}

// A cpuset of one CPU: lscpu, nproc, nproc --all and glibc's sysconf all
// count 1, the NUMA line names only CPU 0, and sys/devices/system/cpu has
// cpu0 only; its files are the host CPU's, renumbered.
func TestCPUTreeOneCPU(t *testing.T) {
	needTwoCPUs(t)
	probe, sysconf := sysconfProbe(t), []string{"1", "1"}
	if probe == "" {
		probe, sysconf = "echo unchecked unchecked", []string{"unchecked", "unchecked"}
	}
	d := startDaemon(t)
	host := func(rel string) string {
		b, err := os.ReadFile("/sys/devices/system/cpu/" + rel)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	for _, c := range []struct{ cpuset, hostCPU string }{{"0", "cpu0"}, {"1", "cpu1"}} {
		t.Run("cpuset"+c.cpuset, func(t *testing.T) {
			cg := newCgroup(t, "cputree", nil)
			setCPULimits(t, cg, c.cpuset, -1)
			script := "LC_ALL=C /usr/bin/lscpu; echo @@@; /usr/bin/nproc; /usr/bin/nproc --all; " + probe +
				"; cd /sys/devices/system/cpu; echo cpu[0-9]*; cat online present possible; echo \"offline=$(cat offline)\"" +
				"; cat cpu0/topology/core_id cpu0/topology/thread_siblings_list; readlink /sys/devices/system/node/node0/cpu0; echo /sys/devices/system/node/node0/cpu[0-9]*"
			parts := strings.Split(d.run(t, cg, script), "@@@\n")
			if len(parts) != 2 {
				t.Fatalf("output: %q", parts)
			}
			lscpu := parts[0]
			for name, want := range map[string]string{
				"CPU(s)":              "1",
				"On-line CPU(s) list": "0",
				"NUMA node0 CPU(s)":   "0",
			} {
				if got := lscpuField(lscpu, name); got != want {
					t.Errorf("lscpu %s: %q, want %q\n%s", name, got, want, lscpu)
				}
			}
			got := strings.Fields(parts[1])
			want := append([]string{"1", "1"}, sysconf...) // nproc, nproc --all, sysconf CONF, ONLN
			want = append(want,
				"cpu0",
				"0", "0", "0", "offline=",
				host(c.hostCPU+"/topology/core_id"), "0",
				"../../cpu/cpu0", "/sys/devices/system/node/node0/cpu0",
			)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("nproc, nproc --all, sysconf, cpuN, online, present, possible, offline, core_id, thread_siblings_list, node0/cpu0, node0's CPUs:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// Two containers with different CPUs walk the same paths in turn: neither
// ever sees the other's cpuN, whatever the kernel cached for the other.
func TestCPUTreePerCallerEntries(t *testing.T) {
	needTwoCPUs(t)
	d := startDaemon(t)
	one := newCgroup(t, "cputree-one", nil)
	setCPULimits(t, one, "0", -1)
	two := newCgroup(t, "cputree-two", nil)
	setCPULimits(t, two, "0-1", -1)
	check := `for i in 1 2 3 4 5; do
		test -e /sys/devices/system/cpu/cpu1/topology/core_id && echo has || echo lacks
		echo cpu[0-9]* | tr -d '\n'; echo
	done`
	// Under TCG each round takes seconds: one is enough there.
	rounds := 3
	if os.Getenv("CGPROCFS_VM") != "" {
		rounds = 1
	}
	for round := range rounds {
		for _, c := range []struct {
			cg         *testCgroup
			has, names string
		}{{one, "lacks", "cpu0"}, {two, "has", "cpu0 cpu1"}} {
			out := d.run(t, c.cg, "cd /sys/devices/system/cpu; "+check)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for i := 0; i+1 < len(lines); i += 2 {
				if lines[i] != c.has || lines[i+1] != c.names {
					t.Fatalf("round %d, cpuset %s: %q, %q; want %q, %q", round, c.cg.Get(t, "cpuset", "cpuset.cpus"), lines[i], lines[i+1], c.has, c.names)
				}
			}
		}
	}
}

// loopCtlRemove is LOOP_CTL_REMOVE: losetup -d detaches a loop device's
// file, but the device stays until it is removed.
const loopCtlRemove = 0x4C81

// A loop device made after the daemon started gets sys/block/DISK/stat and
// its diskstats line within a second; once removed, it has neither.
func TestBlockDiskAppears(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("needs /dev/loop-control")
	}
	d := startDaemon(t)
	// A loop device number no disk has: losetup adds the device.
	n := 200
	for exists(fmt.Sprintf("/sys/block/loop%d", n)) {
		n++
	}
	name := fmt.Sprintf("loop%d", n)
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("losetup", "/dev/"+name, img).CombinedOutput(); err != nil {
		t.Fatalf("losetup: %v\n%s", err, out)
	}
	removed := false
	remove := func() error {
		if removed {
			return nil
		}
		exec.Command("losetup", "-d", "/dev/"+name).Run()
		f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		// The detach completes asynchronously: EBUSY until it has.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := unix.IoctlSetInt(int(f.Fd()), loopCtlRemove, n)
			if err == nil || errors.Is(err, unix.ENODEV) {
				removed = true
				return nil
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("removing %s: %w", name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		if err := remove(); err != nil {
			t.Error(err)
		}
	})

	stat := d.Path("sys/block/" + name + "/stat")
	listed := func() bool {
		entries, err := os.ReadDir(d.Path("sys/block"))
		if err != nil {
			return false
		}
		for _, e := range entries {
			if e.Name() == name {
				return true
			}
		}
		return false
	}
	poll(t, time.Second, name+" in the mount's sys/block", func() bool { return listed() && exists(stat) })

	// A container that reads the disk sees its own counters there and in
	// diskstats.
	cg := newCgroup(t, "blockdisk", nil)
	if !unified {
		// v1 blkio counts a cgroup's bios only where throttling is
		// active on the device: a rule far above any disk's speed.
		devnum, err := os.ReadFile("/sys/block/" + name + "/dev")
		if err != nil {
			t.Fatal(err)
		}
		cg.Set(t, "blkio", "blkio.throttle.read_bps_device", strings.TrimSpace(string(devnum))+" 10000000000")
	}
	out := d.run(t, cg, fmt.Sprintf("dd if=/dev/%s of=/dev/null bs=4096 count=16 iflag=direct 2>/dev/null; grep -w %s /proc/diskstats; echo @@@; cat /sys/block/%s/stat", name, name, name))
	parts := strings.Split(out, "@@@\n")
	if len(parts) != 2 {
		t.Fatalf("output %q", out)
	}
	ds, bs := diskstatsLines(t, parts[0])[name], strings.Fields(parts[1])
	// Both: reads, reads merged, sectors read, ...
	if len(ds) < 3 || ds[2] != 128 || len(bs) < 3 || bs[2] != "128" {
		t.Errorf("after reading 64 KiB of %s: diskstats %q, sys/block stat %q; want 128 sectors read in both", name, parts[0], parts[1])
	}

	if err := remove(); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Second, name+" gone from the mount's sys/block", func() bool { return !listed() && !exists(stat) })
	if strings.Contains(d.run(t, cg, "cat /proc/diskstats"), " "+name+" ") {
		t.Errorf("diskstats still has %s after its removal", name)
	}
}

// The daemon keeps the host's online CPU list between cpu uevents: a CPU
// taken offline and brought back shows in a container's files again, which
// a list kept past the hotplug would hide. Only in the test VM: taking a
// CPU of a shared host offline would disturb everything else on it.
func TestOnlineCPUsFollowHotplug(t *testing.T) {
	needTwoCPUs(t)
	if os.Getenv("CGPROCFS_VM") == "" {
		t.Skip("takes CPU 1 offline: only in the test VM (make test-v2)")
	}
	const switchPath = "/sys/devices/system/cpu/cpu1/online"
	setOnline := func(v string) error { return os.WriteFile(switchPath, []byte(v), 0o644) }
	if _, err := os.Stat(switchPath); err != nil {
		t.Skipf("CPU 1 cannot go offline here: %v", err)
	}
	d := startDaemon(t)
	cg := newCgroup(t, "hotplug", nil)
	setCPULimits(t, cg, "0-1", -1)
	script := `cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo; grep -c '^cpu[0-9]' /proc/stat`
	seen := func(want string) {
		t.Helper()
		var got string
		poll(t, 20*time.Second, "the container's CPU files to show "+want, func() bool {
			got = strings.Join(strings.Fields(d.run(t, cg, script)), " ")
			return got == want
		})
	}
	seen("0-1 2 2")
	if err := setOnline("0"); err != nil {
		t.Skipf("CPU 1 cannot go offline here: %v", err)
	}
	t.Cleanup(func() {
		if err := setOnline("1"); err != nil {
			t.Errorf("bringing CPU 1 back online: %v", err)
		}
	})
	seen("0 1 1")
	if err := setOnline("1"); err != nil {
		t.Fatal(err)
	}
	seen("0-1 2 2")
}
