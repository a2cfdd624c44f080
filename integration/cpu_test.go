package integration

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// setCPULimits puts cg on cpus with a CFS quota in microseconds per 100 ms
// period (-1: none), on v1 or v2.
func setCPULimits(t *testing.T, cg *testCgroup, cpus string, quotaUS int) {
	t.Helper()
	if cpus != "" {
		cg.Set(t, "cpuset", "cpuset.cpus", cpus)
	}
	if unified {
		q := "max"
		if quotaUS >= 0 {
			q = strconv.Itoa(quotaUS)
		}
		cg.Set(t, "cpu", "cpu.max", q+" 100000")
		return
	}
	cg.Set(t, "cpu", "cpu.cfs_period_us", "100000")
	cg.Set(t, "cpu", "cpu.cfs_quota_us", strconv.Itoa(quotaUS))
}

// cgroupCPUUsage is the cgroup's CPU time so far in microseconds.
func cgroupCPUUsage(t *testing.T, cg *testCgroup) int64 {
	t.Helper()
	if unified {
		for _, l := range strings.Split(cg.Get(t, "cpu", "cpu.stat"), "\n") {
			if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no usage_usec in cpu.stat")
	}
	n, err := strconv.ParseInt(cg.Get(t, "cpuacct", "cpuacct.usage"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n / 1000
}

// startBusy starts n busy loops in cg and waits until they burn CPU.
func startBusy(t *testing.T, d *daemon, cg *testCgroup, n int) {
	t.Helper()
	script := strings.Repeat("(while :; do :; done) &\n", n) + "wait\n"
	d.start(t, cg, script)
	before := cgroupCPUUsage(t, cg)
	poll(t, 10*time.Second, "busy loops to run", func() bool { return cgroupCPUUsage(t, cg)-before > 100000 })
}

var topField = regexp.MustCompile(`([0-9.]+) (us|sy|ni|id|wa|hi|si|st)`)

// topCPU runs procps top for two samples 3 s apart in cg and returns the
// fields of the second sample's %Cpu(s) line.
func topCPU(t *testing.T, d *daemon, cg *testCgroup) (map[string]float64, string) {
	t.Helper()
	out := d.run(t, cg, "/usr/bin/top -bn2 -d3 | grep '^%Cpu'")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("top printed %d %%Cpu lines, want 2:\n%s", len(lines), out)
	}
	m := map[string]float64{}
	for _, f := range topField.FindAllStringSubmatch(lines[1], -1) {
		m[f[2]], _ = strconv.ParseFloat(f[1], 64)
	}
	if len(m) != 8 {
		t.Fatalf("cannot parse top's %q", lines[1])
	}
	return m, lines[1]
}

func TestCPUViewOneCPUHalfQuota(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "cpu-one", nil)
	setCPULimits(t, cg, "0", 50000)
	out := d.run(t, cg, `grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online; grep -c '^cpu[0-9]' /proc/stat; lscpu | grep -E '^(CPU\(s\)|On-line CPU\(s\) list):'`)
	f := strings.Fields(out)
	want := []string{"1", "0", "1", "CPU(s):", "1", "On-line", "CPU(s)", "list:", "0"}
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Errorf("processors, online, cpuN lines, lscpu = %q, want %q", f, want)
	}
}

// Without a cpuset, the quota alone sets the count, unless
// --cpus-from-quota=false.
func TestCPUViewQuotaFlag(t *testing.T) {
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(online)) == "0" {
		t.Skip("needs at least two CPUs")
	}
	script := `grep -c ^processor /proc/cpuinfo; cat /sys/devices/system/cpu/online; grep -c '^cpu[0-9]' /proc/stat`
	for _, c := range []struct {
		flag string
		want string
	}{{"", "1 0 1"}, {"--cpus-from-quota=false", "2 0-1 2"}} {
		var args []string
		if c.flag != "" {
			args = append(args, c.flag)
		}
		d := startDaemon(t, args...)
		cg := newCgroup(t, "cpu-quota", nil)
		setCPULimits(t, cg, "0-1", 50000)
		// A parent's quota counts too.
		child := newCgroup(t, "child", cg)
		if !unified {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				child.Set(t, "cpuset", f, cg.Get(t, "cpuset", f))
			}
		}
		if got := strings.Join(strings.Fields(d.run(t, child, script)), " "); got != c.want {
			t.Errorf("flags %q: processors, online, cpuN lines = %q, want %q", c.flag, got, c.want)
		}
	}
}

// A busy loop against half a CPU of quota: top shows the time the quota
// holds it back as steal, not as idle.
func TestCPUTopShowsQuotaAsSteal(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "cpu-busy", nil)
	setCPULimits(t, cg, "0", 50000)
	startBusy(t, d, cg, 1)
	m, line := topCPU(t, d, cg)
	t.Logf("top in a busy cgroup at 50%% quota: %s", line)
	if busy := m["us"] + m["sy"]; busy < 35 || busy > 65 {
		t.Errorf("us+sy = %.1f, want 35 to 65", busy)
	}
	if m["st"] < 30 {
		t.Errorf("st = %.1f, want at least 30", m["st"])
	}
	if m["id"] > 20 {
		t.Errorf("id = %.1f, want at most 20", m["id"])
	}
}

// An idle container next to a busy host is idle.
func TestCPUIdleNextToBusyHost(t *testing.T) {
	d := startDaemon(t)
	hog := newCgroup(t, "cpu-hog", nil)
	startBusy(t, d, hog, 2)
	idle := newCgroup(t, "cpu-idle", nil)
	m, line := topCPU(t, d, idle)
	t.Logf("top in an idle cgroup beside two busy loops: %s", line)
	if m["id"] < 90 {
		t.Errorf("id = %.1f, want at least 90", m["id"])
	}
}

// 200 reads of /proc/stat while the quota and the cpuset change: no counter
// ever goes down.
func TestCPUStatMonotonic(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "cpu-mono", nil)
	twoCPUs(t, cg)
	setCPULimits(t, cg, "", 50000)
	// One loop: the readers share the quota with it, and a starved
	// reader makes the test crawl on an emulated CPU.
	startBusy(t, d, cg, 1)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		quotas := []int{30000, 150000, -1, 50000, 100000}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			// Errorf, not Fatalf: this is not the test's goroutine.
			q := quotas[i%len(quotas)]
			if err := writeQuota(cg, q); err != nil {
				t.Errorf("setting quota %d: %v", q, err)
				return
			}
		}
	}()
	out := d.run(t, cg, `for i in $(seq 200); do cat /proc/stat; echo ---; done`)
	close(stop)
	wg.Wait()

	samples := strings.Split(out, "---\n")
	samples = samples[:len(samples)-1]
	if len(samples) != 200 {
		t.Fatalf("%d samples, want 200", len(samples))
	}
	last := map[string][]uint64{}
	counts := map[int]int{}
	for i, s := range samples {
		n := 0
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
				if len(f) == 2 && f[0] == "procs_running" && f[1] == "0" {
					t.Errorf("sample %d: procs_running 0 with a busy loop", i)
				}
				continue
			}
			if f[0] != "cpu" {
				n++
			}
			vals := make([]uint64, len(f)-1)
			for j, v := range f[1:] {
				var err error
				if vals[j], err = strconv.ParseUint(v, 10, 64); err != nil {
					t.Fatalf("sample %d: %q: %v", i, l, err)
				}
			}
			if prev, ok := last[f[0]]; ok {
				for j := range vals {
					if vals[j] < prev[j] {
						t.Fatalf("sample %d: %s field %d went down from %d to %d", i, f[0], j+1, prev[j], vals[j])
					}
				}
			}
			last[f[0]] = vals
		}
		counts[n]++
	}
	t.Logf("samples by number of cpuN lines: %v; last cpu line %v", counts, last["cpu"])
}

func writeQuota(cg *testCgroup, q int) error {
	if unified {
		v := "max 100000"
		if q >= 0 {
			v = fmt.Sprintf("%d 100000", q)
		}
		return os.WriteFile(cg.file("cpu", "cpu.max"), []byte(v), 0)
	}
	return os.WriteFile(cg.file("cpu", "cpu.cfs_quota_us"), []byte(strconv.Itoa(q)), 0)
}

// top keeps /proc/stat open and seeks back to 0 for each refresh: every
// read at offset 0 must bring fresh content. A caller in the root cgroup
// (this test, on a host that runs it there) sees the host's files.
func TestCPUStatFreshAfterSeek(t *testing.T) {
	d := startDaemon(t)
	f, err := os.Open(d.Path("proc/stat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	n, err := f.ReadAt(buf, 0)
	if n == 0 {
		t.Fatalf("first read: %v", err)
	}
	first := strings.SplitN(string(buf[:n]), "\n", 2)[0]
	var again string
	poll(t, 5*time.Second, "a changed cpu line after seeking back", func() bool {
		n, _ := f.ReadAt(buf, 0)
		again = strings.SplitN(string(buf[:n]), "\n", 2)[0]
		return again != first
	})

	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	root := true
	for _, l := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		p := strings.SplitN(l, ":", 3)
		if len(p) == 3 && (unified && p[0] == "0" || regexp.MustCompile(`(^|,)(cpu|cpuacct|cpuset)(,|$)`).MatchString(p[1])) && p[2] != "/" {
			root = false
		}
	}
	if !root {
		t.Logf("not in the root cgroup, host files not checked:\n%s", self)
		return
	}
	for _, name := range []string{"sys/devices/system/cpu/online", "sys/devices/system/cpu/possible"} {
		got, err1 := os.ReadFile(d.Path(name))
		want, err2 := os.ReadFile("/" + name)
		if err1 != nil || err2 != nil || string(got) != string(want) {
			t.Errorf("%s in the root cgroup = %q, %v; want the host's %q, %v", name, got, err1, want, err2)
		}
	}
	got, _ := os.ReadFile(d.Path("proc/cpuinfo"))
	want, _ := os.ReadFile("/proc/cpuinfo")
	if strings.Count(string(got), "\nprocessor") != strings.Count(string(want), "\nprocessor") || len(got) == 0 {
		t.Errorf("cpuinfo in the root cgroup differs from the host's in its processors")
	}
}

// A container's first /proc/stat counts from the start of its pid
// namespace's init: a fresh daemon read by a container up for 2 s on one
// CPU shows about 2 s in user, system, steal and idle together (the
// container's own start-up may fill some of it, a lot on an emulated CPU).
func TestCPUIdleSinceContainerStart(t *testing.T) {
	d := startDaemon(t)
	cg := newCgroup(t, "cpu-start", nil)
	setCPULimits(t, cg, "0", 50000)
	out := d.run(t, cg, `unshare -p -f sh -c 'sleep 2; grep -c ^processor /proc/cpuinfo; head -1 /proc/stat'`)
	f := strings.Fields(out)
	if len(f) < 10 || f[0] != "1" || f[1] != "cpu" {
		t.Fatalf("unexpected output %q", out)
	}
	var sum int
	for _, i := range []int{2, 4, 5, 9} { // user system idle steal
		v, err := strconv.Atoi(f[i])
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	t.Logf("first cpu line in a pid namespace up for 2 s: %s", strings.Join(f[1:], " "))
	if sum < 180 || sum > 400 {
		t.Errorf("user+system+idle+steal = %d ticks, want about 200 (2 s since the init started)", sum)
	}
}

// Four cgroups read /proc/stat and cpuinfo at once through one mount, half
// with one CPU of quota and half with two: each sees only its own count.
func TestCPUConcurrentReadersSeeOwnCPUs(t *testing.T) {
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(online)) == "0" {
		t.Skip("needs at least two CPUs")
	}
	d := startDaemon(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		cg := newCgroup(t, fmt.Sprintf("cpu-conc%d", i), nil)
		want := 1 + i%2
		setCPULimits(t, cg, "0-1", 100000*want)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := d.command(t.Context(), cg, `for i in $(seq 25); do echo $(grep -c '^cpu[0-9]' /proc/stat) $(grep -c ^processor /proc/cpuinfo); done`)
			out, err := cmd.Output()
			if err != nil {
				errs <- fmt.Errorf("cgroup %d: %v", i, err)
				return
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 25 {
				errs <- fmt.Errorf("cgroup %d: %d lines, want 25", i, len(lines))
			}
			for _, l := range lines {
				if l != fmt.Sprintf("%d %d", want, want) {
					errs <- fmt.Errorf("cgroup %d with %d CPUs read %q", i, want, l)
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

// procs_running and procs_blocked come from the BPF task iterator's states
// at most 100 ms old: busy loops in a cgroup below the container's count
// while they run, and 150 ms after they were killed a read no longer shows
// them (a thread scan refreshed every second would). The reading thread
// counts as running, as in the kernel's own file.
func TestStatRunningIsFresh(t *testing.T) {
	d := startDaemon(t)
	if !strings.Contains(d.logs(), "counter=bpf") {
		t.Skip("the BPF counter does not load here")
	}
	// Linux 6.7 has the css_task kfuncs the walk of one cgroup needs;
	// before, the walk of every task serves (the test VM's 6.1).
	walk := "procs-running=host"
	if major, minor := kernelVersion(t); major > 6 || major == 6 && minor >= 7 {
		walk = "procs-running=cgroup"
	}
	if !strings.Contains(d.logs(), walk) {
		t.Fatalf("the daemon does not log %s:\n%s", walk, d.logs())
	}
	ctr := newCgroup(t, "live", nil)
	busy := newCgroup(t, "busy", ctr)
	counts := func() string {
		out := d.run(t, ctr, "grep -E '^procs_(running|blocked)' /proc/stat")
		return strings.Join(strings.Fields(out), " ")
	}
	if got, want := counts(), "procs_running 1 procs_blocked 0"; got != want {
		t.Fatalf("idle container: %q, want %q", got, want)
	}
	startBusy(t, d, busy, 3)
	poll(t, 10*time.Second, "3 busy loops and the reader running", func() bool {
		return counts() == "procs_running 4 procs_blocked 0"
	})
	killProcs(busy.dirs()[0])
	poll(t, 10*time.Second, "the busy loops to be gone", func() bool {
		procs, err := os.ReadFile(busy.procsFiles()[0])
		return err == nil && len(strings.TrimSpace(string(procs))) == 0
	})
	// Not a poll: what is tested is that any read past the states'
	// 100 ms age sees the kill.
	time.Sleep(150 * time.Millisecond)
	if got, want := counts(), "procs_running 1 procs_blocked 0"; got != want {
		t.Fatalf("150 ms after the busy loops were killed: %q, want %q", got, want)
	}
}
