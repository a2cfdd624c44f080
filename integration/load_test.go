package integration

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loadavgFields parses a /proc/loadavg line.
func loadavgFields(t *testing.T, line string) (avg [3]float64, running, total, last int) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 5 {
		t.Fatalf("loadavg %q: want 5 fields", line)
	}
	for i := range avg {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil || !regexp.MustCompile(`^\d+\.\d\d$`).MatchString(f[i]) {
			t.Fatalf("loadavg %q: field %d", line, i+1)
		}
		avg[i] = v
	}
	rt := strings.Split(f[3], "/")
	var err1, err2, err3 error
	if len(rt) == 2 {
		running, err1 = strconv.Atoi(rt[0])
		total, err2 = strconv.Atoi(rt[1])
	}
	last, err3 = strconv.Atoi(f[4])
	if len(rt) != 2 || err1 != nil || err2 != nil || err3 != nil {
		t.Fatalf("loadavg %q: fields 4 and 5", line)
	}
	return
}

// twoCPUs gives cg the host's first two CPUs (or all of them, if fewer).
func twoCPUs(t *testing.T, cg *testCgroup) {
	t.Helper()
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	cpus := "0-1"
	if strings.TrimSpace(string(data)) == "0" {
		cpus = "0"
	}
	cg.Set(t, "cpuset", "cpuset.cpus", cpus)
}

var uptimeLoad = regexp.MustCompile(`load average: (\d+\.\d\d), (\d+\.\d\d), (\d+\.\d\d)`)

// Two busy threads for 40 s give the kernel's 2(1-e^(-40/60)) = 0.97 inside;
// procps uptime shows it; a cgroup of sleeping threads beside it stays idle.
func TestLoadavgTwoBusyThreads(t *testing.T) {
	d := startDaemon(t)
	busy := newCgroup(t, "load-busy", nil)
	twoCPUs(t, busy)
	idle := newCgroup(t, "load-idle", nil)
	// Reading the file once starts the tracking; the busy loops start
	// right after that read.
	d.start(t, busy, "cat /proc/loadavg >/dev/null; (while :; do :; done) & (while :; do :; done) & wait")
	// The idle cgroup's tracking starts once its sleepers are forked: a
	// sample that catches the forks counts them, as the kernel's would
	// (under the VM's TCG forking 8 sleeps takes long enough that one
	// did: 0.16 after 40 s).
	d.start(t, idle, "for i in 1 2 3 4 5 6 7 8; do sleep 1000 & done; cat /proc/loadavg >/dev/null; wait")
	poll(t, 10*time.Second, "both cgroups populated", func() bool {
		return len(strings.Fields(busy.Get(t, "cpuacct", tidsName()))) >= 3 &&
			len(strings.Fields(idle.Get(t, "cpuacct", tidsName()))) >= 9
	})
	time.Sleep(40 * time.Second)
	out := d.run(t, busy, "cat /proc/loadavg; /usr/bin/uptime")
	lines := strings.SplitN(out, "\n", 2)
	avg, running, total, _ := loadavgFields(t, lines[0])
	t.Logf("busy: %s", strings.TrimSpace(out))
	if avg[0] < 0.7 || avg[0] > 1.3 {
		t.Errorf("1-minute load of two busy threads after 40 s = %.2f, want 0.7 to 1.3 (kernel math: 0.97)", avg[0])
	}
	if avg[1] > avg[0] || avg[2] > avg[1] {
		t.Errorf("averages %v: the longer ones must lag behind while load rises", avg)
	}
	if running < 1 || running > total || total < 3 {
		t.Errorf("running/total = %d/%d, want 1..total running of at least 3 threads", running, total)
	}
	m := uptimeLoad.FindStringSubmatch(lines[1])
	if m == nil {
		t.Fatalf("procps uptime printed no load average: %q", lines[1])
	}
	if u, _ := strconv.ParseFloat(m[1], 64); u < 0.7 || u > 1.3 {
		t.Errorf("procps uptime shows 1-minute load %s, want 0.7 to 1.3", m[1])
	}

	out = d.run(t, idle, "cat /proc/loadavg")
	avg, _, total, _ = loadavgFields(t, out)
	t.Logf("idle: %s", strings.TrimSpace(out))
	if avg[0] >= 0.15 {
		t.Errorf("1-minute load of sleeping threads = %.2f, want under 0.15", avg[0])
	}
	if total < 9 {
		t.Errorf("idle cgroup shows %d threads, want at least 9", total)
	}
}

// tidsName is the cgroup file listing threads.
func tidsName() string {
	if unified {
		return "cgroup.threads"
	}
	return "tasks"
}

// A busy thread in a child cgroup counts in its parent's load, and its
// threads in the parent's total.
func TestLoadavgCountsDescendants(t *testing.T) {
	d := startDaemon(t)
	parent := newCgroup(t, "load-parent", nil)
	child := newCgroup(t, "child", parent)
	d.run(t, parent, "cat /proc/loadavg >/dev/null")
	d.start(t, child, "while :; do :; done")
	var last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the parent's last /proc/loadavg: %q; the child's threads: %q", last, child.Get(t, "cpuacct", tidsName()))
		}
	})
	// The first sample (5 s after the first read) must count it: 15 s
	// leaves a round of slack. Running and total come from that sample,
	// when the readers of the parent may all have gone: the child's
	// thread alone makes 1/1.
	poll(t, 15*time.Second, "the parent's load to count the child's busy thread", func() bool {
		last = d.run(t, parent, "cat /proc/loadavg")
		avg, running, total, _ := loadavgFields(t, last)
		return avg[0] >= 0.05 && running >= 1 && total >= 1
	})
}

// In a fresh pid namespace that has run 2 s, uptime is the namespace's age,
// idle is within 0 and CPUs x uptime, and the last pid is the namespace's
// own number; a host-namespace reader gets the host's uptime.
func TestUptimeFreshPidNamespace(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "uptime", nil)
	twoCPUs(t, cg)
	out := d.run(t, cg, "unshare -p -f /bin/sh -c 'sleep 2; cat /proc/uptime; cat /proc/loadavg; /usr/bin/uptime; nproc'")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("unexpected output %q", out)
	}
	t.Logf("in a 2 s old pid namespace: %q", out)
	f := strings.Fields(lines[0])
	if len(f) != 2 || !regexp.MustCompile(`^\d+\.\d\d$`).MatchString(f[0]) || !regexp.MustCompile(`^\d+\.\d\d$`).MatchString(f[1]) {
		t.Fatalf("uptime %q: want two decimals fields", lines[0])
	}
	up, _ := strconv.ParseFloat(f[0], 64)
	idle, _ := strconv.ParseFloat(f[1], 64)
	if up < 1.5 || up > 10 {
		t.Errorf("uptime in a 2 s old pid namespace = %.2f, want 1.5 to 10", up)
	}
	if idle < 0 || idle > 2*up+0.02 {
		t.Errorf("idle %.2f with uptime %.2f on 2 CPUs, want 0 to %.2f", idle, up, 2*up)
	}
	_, _, _, last := loadavgFields(t, lines[1])
	if last < 2 || last > 50 {
		t.Errorf("last pid in a fresh pid namespace = %d, want its own small number", last)
	}
	if !strings.Contains(lines[2], "up ") || !strings.Contains(lines[2], "load average") {
		t.Errorf("procps uptime output %q", lines[2])
	}

	// The host's pid namespace gets the host's uptime.
	host := d.run(t, cg, "cat /proc/uptime")
	mine, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	hu, _ := strconv.ParseFloat(strings.Fields(host)[0], 64)
	mu, _ := strconv.ParseFloat(strings.Fields(string(mine))[0], 64)
	if hu < mu-5 || hu > mu+5 {
		t.Errorf("host-namespace reader got uptime %.2f, host has %.2f", hu, mu)
	}
}

// A reader in the root cgroup, and any reader with --loadavg=false, gets
// the host's /proc/loadavg: the host's thread count, far above a test
// cgroup's.
func TestLoadavgHostViews(t *testing.T) {
	hostTotal := func() int {
		data, err := os.ReadFile("/proc/loadavg")
		if err != nil {
			t.Fatal(err)
		}
		_, _, total, _ := loadavgFields(t, string(data))
		return total
	}
	rootProcs := cgroupRoot + "/cpuacct/cgroup.procs"
	if unified {
		rootProcs = cgroupRoot + "/cgroup.procs"
	}
	d := startDaemon(t)
	_, _, total, _ := loadavgFields(t, d.run(t, nil, "echo $$ > "+rootProcs+" && cat /proc/loadavg"))
	if h := hostTotal(); total < h/2 || total > 2*h+50 {
		t.Errorf("root-cgroup reader sees %d threads, host has %d", total, h)
	}
	off := startDaemon(t, "--loadavg=false")
	cg := newCgroup(t, "load-off", nil)
	_, _, total, _ = loadavgFields(t, off.run(t, cg, "cat /proc/loadavg"))
	if h := hostTotal(); total < h/2 || total > 2*h+50 {
		t.Errorf("with --loadavg=false a container reader sees %d threads, host has %d", total, h)
	}
	_, _, total, _ = loadavgFields(t, d.run(t, cg, "cat /proc/loadavg"))
	if total > 10 {
		t.Errorf("container reader sees %d threads, want its own few", total)
	}
	// Which counter the default (auto) picked here: bpf where the BPF
	// task iterator loads, else threads, with the reason.
	for _, line := range strings.Split(d.logs(), "\n") {
		if strings.Contains(line, "loadavg") {
			t.Log(line)
		}
	}
}
