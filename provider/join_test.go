package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// These tests render every served file through the provider from fixture
// cgroup, proc and sys trees, without root: the join of who is asking, what
// the cgroup says and what the host says. The caller is fixed; the real
// resolver has its own tests, and the integration tests run it all on real
// cgroups.

// fixedResolver answers every pid with one caller.
type fixedResolver struct{ c *caller.Caller }

func (r fixedResolver) Resolve(int) (*caller.Caller, error) { return r.c, nil }
func (r fixedResolver) Forget()                             {}

// tree writes files under a root directory.
type tree struct {
	t    *testing.T
	root string
}

func (tr tree) write(rel, content string) {
	tr.t.Helper()
	p := filepath.Join(tr.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr tree) link(target, rel string) {
	tr.t.Helper()
	p := filepath.Join(tr.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr tree) copy(rel, from string) {
	tr.t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.write(rel, string(data))
}

// hostTrees writes a 4-CPU host's proc and sys files, with one disk, sda.
func hostTrees(t *testing.T) (procRoot, sysRoot string) {
	proc, sys := tree{t, t.TempDir()}, tree{t, t.TempDir()}
	fixtures := "../procfiles/testdata/"
	proc.copy("meminfo", fixtures+"meminfo-host")
	proc.copy("stat", fixtures+"stat-host")
	proc.copy("cpuinfo", fixtures+"cpuinfo-x86")
	proc.copy("diskstats", fixtures+"diskstats/host-6.18")
	proc.write("loadavg", "3.00 2.00 1.00 5/900 4242\n")
	proc.write("uptime", "1000.00 3000.00\n")
	proc.write("swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
	proc.copy("vmstat", fixtures+"vmstat/host-6.18")
	for _, res := range []string{"cpu", "memory", "io"} {
		proc.copy("pressure/"+res, fixtures+"pressure/host-cpu-6.18")
	}
	sys.write("devices/system/cpu/online", "0-3\n")
	sys.write("devices/system/cpu/present", "0-3\n")
	sys.write("devices/system/cpu/possible", "0-7\n")
	sys.write("devices/system/cpu/offline", "4-7\n")
	sys.write("devices/system/cpu/isolated", "\n")
	sys.write("devices/system/cpu/kernel_max", "8191\n")
	// Host CPUs 0-3, hyperthread pairs 0,2 and 1,3, one shared cache, on
	// one NUMA node.
	for i, sib := range []string{"0,2", "1,3", "0,2", "1,3"} {
		cpu := fmt.Sprintf("devices/system/cpu/cpu%d/", i)
		sys.write(cpu+"topology/core_id", fmt.Sprintf("%d\n", i%2))
		sys.write(cpu+"topology/thread_siblings_list", sib+"\n")
		sys.write(cpu+"topology/thread_siblings", map[string]string{"0,2": "05", "1,3": "0a"}[sib]+"\n")
		sys.write(cpu+"cache/index0/shared_cpu_map", "0f\n")
		sys.write(cpu+"cache/index0/size", "32K\n")
		sys.link("../node/node0", cpu+"node0")
		sys.link(fmt.Sprintf("../../cpu/cpu%d", i), fmt.Sprintf("devices/system/node/node0/cpu%d", i))
	}
	sys.write("devices/system/cpu/cpufreq/policy1/related_cpus", "1\n")
	sys.link("../cpufreq/policy1", "devices/system/cpu/cpu1/cpufreq")
	sys.write("devices/system/node/node0/cpulist", "0-3\n")
	sys.write("devices/system/node/node0/cpumap", "0f\n")
	sys.write("devices/system/node/online", "0\n")
	sys.write("block/sda/dev", "8:0\n")
	sys.write("block/sda/stat", "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n")
	return proc.root, sys.root
}

// v1Tree is a container /ctr with a 256 MiB limit (100 MiB used), CPUs 1
// and 2 of the host's four, no quota, and I/O to sda.
func v1Tree(t *testing.T) string {
	cg := tree{t, t.TempDir()}
	cg.write("memory/memory.limit_in_bytes", "9223372036854771712\n")
	cg.write("memory/ctr/memory.limit_in_bytes", "268435456\n")
	cg.write("memory/ctr/memory.usage_in_bytes", "104857600\n")
	cg.write("memory/ctr/memory.stat", "total_cache 52428800\ntotal_rss 41943040\ntotal_shmem 4194304\ntotal_active_file 20971520\ntotal_inactive_file 31457280\npgfault 1\ntotal_pgfault 5000\ntotal_pgpgin 7\n")
	cg.write("cpuacct/ctr/cpuacct.usage_all", "cpu user system\n0 0 0\n1 2000000000 1000000000\n2 0 0\n3 0 0\n")
	cg.write("cpuacct/ctr/tasks", "")
	cg.write("cpu/ctr/cpu.cfs_quota_us", "-1\n")
	cg.write("cpu/ctr/cpu.cfs_period_us", "100000\n")
	cg.write("cpu/ctr/cpu.stat", "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n")
	cg.write("cpuset/ctr/cpuset.effective_cpus", "1-2\n")
	cg.write("blkio/ctr/blkio.throttle.io_serviced_recursive", "8:0 Read 10\n8:0 Write 20\n8:0 Total 30\nTotal 30\n")
	cg.write("blkio/ctr/blkio.throttle.io_service_bytes_recursive", "8:0 Read 40960\n8:0 Write 81920\n8:0 Total 122880\nTotal 122880\n")
	return cg.root
}

// v2Tree is the same container on cgroup v2.
func v2Tree(t *testing.T) string {
	cg := tree{t, t.TempDir()}
	cg.write("cgroup.controllers", "cpuset cpu io memory pids\n")
	cg.write("ctr/memory.max", "268435456\n")
	cg.write("ctr/memory.current", "104857600\n")
	cg.write("ctr/memory.stat", "anon 41943040\nfile 52428800\nshmem 4194304\nactive_file 20971520\ninactive_file 31457280\npgfault 5000\npswpin 3\n")
	cg.write("ctr/cpu.pressure", "some avg10=1.50 avg60=0.75 avg300=0.20 total=123456\nfull avg10=0.50 avg60=0.25 avg300=0.05 total=65432\n")
	cg.write("ctr/cpu.stat", "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n")
	cg.write("ctr/cpu.max", "max 100000\n")
	cg.write("ctr/cpuset.cpus.effective", "1-2\n")
	cg.write("ctr/io.stat", "8:0 rbytes=40960 wbytes=81920 rios=10 wios=20 dbytes=0 dios=0\n")
	cg.write("ctr/cgroup.threads", "")
	return cg.root
}

func newFixtureProvider(t *testing.T, cgroupRoot string, hostNS bool) *Provider {
	t.Helper()
	procRoot, sysRoot := hostTrees(t)
	kfs := kernelfs.New("/proc", kernelfs.Options{})
	t.Cleanup(func() { kfs.Close() })
	cgroups, err := cgroupview.New(cgroupRoot, kfs)
	if err != nil {
		t.Fatal(err)
	}
	c := &caller.Caller{Pid: os.Getpid(), HostNS: hostNS, InitPid: os.Getpid(), Cgroup: cgroupview.NewCgroup(cgroups.Hierarchy(), "/ctr")}
	p := New(Config{
		Cgroups: cgroups, Resolver: fixedResolver{c}, FS: kfs,
		ProcRoot: procRoot, SysRoot: sysRoot, CPUsFromQuota: true,
		Load: LoadConfig{Enabled: true, Counter: "threads"},
	})
	t.Cleanup(func() { p.Close() })
	return p
}

// read renders one served file for this process.
func read(t *testing.T, p *Provider, path string) string {
	t.Helper()
	for _, f := range p.Files() {
		if rel, ok := strings.CutPrefix(path, f.Path+"/"); ok && f.Dir != nil {
			data, err := f.Dir.Content(context.Background(), uint32(os.Getpid()), rel)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return string(data)
		}
		if f.Path == path {
			data, err := f.Content(context.Background(), uint32(os.Getpid()))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return string(data)
		}
	}
	t.Fatalf("%s is not served", path)
	return ""
}

func hasLine(s, line string) bool {
	for l := range strings.SplitSeq(s, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func TestJoinEveryServedFile(t *testing.T) {
	for _, mode := range []struct {
		name string
		root func(*testing.T) string
	}{{"v1", v1Tree}, {"v2", v2Tree}} {
		t.Run(mode.name, func(t *testing.T) {
			p := newFixtureProvider(t, mode.root(t), true)
			served := map[string]bool{}
			for _, f := range p.Files() {
				served[f.Path] = true
			}
			for _, want := range []string{"proc/meminfo", "proc/swaps", "proc/cpuinfo", "proc/stat", "proc/loadavg", "proc/uptime", "proc/diskstats",
				"sys/devices/system/cpu", "sys/devices/system/node", "sys/block",
				"proc/vmstat", "proc/pressure/cpu", "proc/pressure/memory", "proc/pressure/io"} {
				if !served[want] {
					t.Errorf("%s not served", want)
				}
			}

			meminfo := read(t, p, "proc/meminfo")
			for _, line := range []string{"MemTotal:         262144 kB", "MemFree:          159744 kB", "SwapTotal:             0 kB"} {
				if !hasLine(meminfo, line) {
					t.Errorf("meminfo has no %q:\n%s", line, meminfo)
				}
			}
			if swaps := read(t, p, "proc/swaps"); strings.Count(swaps, "\n") != 1 {
				t.Errorf("swaps without swap accounting should be the header alone:\n%s", swaps)
			}

			cpuinfo := read(t, p, "proc/cpuinfo")
			if n := strings.Count(cpuinfo, "processor\t:"); n != 2 || !strings.Contains(cpuinfo, "processor\t: 1\n") {
				t.Errorf("cpuinfo shows %d processors, want 0 and 1:\n%s", n, cpuinfo)
			}
			for _, name := range []string{"online", "present", "possible"} {
				if got := read(t, p, "sys/devices/system/cpu/"+name); got != "0-1\n" {
					t.Errorf("cpu/%s = %q, want 0-1", name, got)
				}
			}
			stat := read(t, p, "proc/stat")
			if !strings.Contains(stat, "\ncpu0 ") || !strings.Contains(stat, "\ncpu1 ") || strings.Contains(stat, "\ncpu2 ") {
				t.Errorf("stat should show cpu0 and cpu1 only:\n%s", stat)
			}
			if !strings.Contains(stat, "procs_running 0\n") {
				t.Errorf("stat should count the container's threads (none):\n%s", stat)
			}

			disk := read(t, p, "proc/diskstats")
			if f := strings.Fields(disk); len(f) < 10 || f[2] != "sda" || f[3] != "10" || f[5] != "80" || f[7] != "20" || f[9] != "160" {
				t.Errorf("diskstats = %q, want sda with 10 reads of 80 sectors and 20 writes of 160", disk)
			}
			if f := strings.Fields(read(t, p, "sys/block/sda/stat")); len(f) < 7 || f[0] != "10" || f[2] != "80" || f[4] != "20" || f[6] != "160" {
				t.Errorf("block stat = %v", f)
			}

			// A host-namespace caller gets its cgroup's load and the
			// host's last pid.
			if got := read(t, p, "proc/loadavg"); got != "0.00 0.00 0.00 0/0 4242\n" {
				t.Errorf("loadavg = %q", got)
			}
			if got := read(t, p, "proc/uptime"); got != "1000.00 3000.00\n" {
				t.Errorf("uptime of a host-namespace caller = %q, want the host's", got)
			}
		})
	}
}

// A caller in the root cgroup sees the host's files unchanged.
func TestJoinRootCgroupSeesHost(t *testing.T) {
	p := newFixtureProvider(t, v2Tree(t), true)
	p.cfg.Resolver = fixedResolver{&caller.Caller{Pid: os.Getpid(), HostNS: true, InitPid: os.Getpid(),
		Cgroup: cgroupview.NewCgroup(p.cfg.Cgroups.Hierarchy(), "/")}}
	for _, f := range []string{"meminfo", "stat", "cpuinfo", "diskstats", "loadavg", "vmstat", "pressure/cpu", "pressure/memory"} {
		want, err := os.ReadFile(filepath.Join(p.cfg.ProcRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		if got := read(t, p, "proc/"+f); got != string(want) {
			t.Errorf("%s in the root cgroup differs from the host's", f)
		}
	}
	if got := read(t, p, "sys/devices/system/cpu/possible"); got != "0-7\n" {
		t.Errorf("possible = %q, want the host's 0-7", got)
	}
}

// vmstat: the container's memory.stat events, page counts consistent with
// meminfo, pgpgin/pgpgout from its diskstats; pressure: the cgroup's file,
// or zeros in the host's lines where none tells it (v1 without cgroup2).
func TestJoinVMStatAndPressure(t *testing.T) {
	for _, mode := range []struct {
		name     string
		root     func(*testing.T) string
		pswpin   string
		pressure string
	}{
		{"v1", v1Tree, "pswpin 0", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"},
		{"v2", v2Tree, "pswpin 3", "some avg10=1.50 avg60=0.75 avg300=0.20 total=123456\nfull avg10=0.50 avg60=0.25 avg300=0.05 total=65432\n"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			p := newFixtureProvider(t, mode.root(t), true)
			vmstat := read(t, p, "proc/vmstat")
			// MemFree 159744 kB is 39936 pages; 10 reads of 40960 bytes
			// are 40 KiB, 20 writes of 81920 bytes 80 KiB.
			for _, line := range []string{"nr_free_pages 39936", "nr_file_pages 12800", "nr_shmem 1024", "nr_active_file 5120",
				"pgfault 5000", mode.pswpin, "pswpout 0", "pgpgin 40", "pgpgout 80", "numa_hit 0", "nr_dirty_threshold 1047696"} {
				if !hasLine(vmstat, line) {
					t.Errorf("vmstat has no %q:\n%s", line, vmstat)
				}
			}
			if got := read(t, p, "proc/pressure/cpu"); got != mode.pressure {
				t.Errorf("pressure/cpu = %q, want %q", got, mode.pressure)
			}
		})
	}
}
