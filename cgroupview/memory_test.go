package cgroupview

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mib = 1 << 20

func TestReadMemory(t *testing.T) {
	v1, err := Detect("testdata/v1")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Detect("testdata/v2")
	if err != nil {
		t.Fatal(err)
	}
	if v1.Mode != Legacy || v2.Mode != Unified {
		t.Fatalf("modes %v %v, want v1 v2", v1.Mode, v2.Mode)
	}
	cases := []struct {
		name string
		h    *Hierarchy
		path string
		want Memory
	}{
		{
			// The parent limits 1 GiB memory and 2 GiB memsw; the
			// child is unlimited: both come from the parent.
			name: "v1 nested limits under unlimited child",
			h:    v1, path: "/docker/ctr",
			want: Memory{Limit: 1 << 30, Usage: 300 * mib, SwapAccounting: true, SwapLimit: 1 << 30, SwapUsage: 50 * mib},
		},
		{
			name: "v1 without memsw has no swap accounting",
			h:    v1, path: "/nomemsw",
			want: Memory{Limit: 512 * mib, Usage: 100 * mib},
		},
		{
			name: "v1 usage above the limit, memsw equal to memory: zero swap",
			h:    v1, path: "/over",
			want: Memory{Limit: 512 * mib, Usage: 600 * mib, SwapAccounting: true, SwapLimit: 0, SwapUsage: 0},
		},
		{
			// memory.max: 2G, max, 1G; swap.max: max, 256M, 512M.
			name: "v2 max walked up the tree",
			h:    v2, path: "/kubepods/pod/ctr",
			want: Memory{Limit: 1 << 30, Usage: 400 * mib, SwapAccounting: true, SwapLimit: 256 * mib, SwapUsage: 10 * mib},
		},
		{
			name: "v2 unlimited without swap files",
			h:    v2, path: "/noswap",
			want: Memory{Limit: NoLimit, Usage: 50 * mib},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := memoryOf(t, NewCgroup(c.h, c.path))
			if err != nil {
				t.Fatal(err)
			}
			got.Stat = MemoryStat{}
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestReadMemoryStatKeys(t *testing.T) {
	v1, _ := Detect("testdata/v1")
	m, err := memoryOf(t, NewCgroup(v1, "/docker/ctr"))
	if err != nil {
		t.Fatal(err)
	}
	// The hierarchical total_* keys, never the cgroup-local ones, and
	// exact keys: total_rss_huge must not land in total_rss.
	want := MemoryStat{
		Anon: 70 * mib, AnonTHP: 2 * mib, File: 200 * mib, FileMapped: 10 * mib,
		Shmem: 64 * mib, FileDirty: 4 * mib, FileWriteback: 1 * mib,
		ActiveAnon: 70 * mib, InactiveAnon: 64 * mib, ActiveFile: 45 * mib, InactiveFile: 90 * mib,
	}
	if m.Stat != want {
		t.Errorf("v1 stat\n got %+v\nwant %+v", m.Stat, want)
	}

	v2, _ := Detect("testdata/v2")
	m, err = memoryOf(t, NewCgroup(v2, "/kubepods/pod/ctr"))
	if err != nil {
		t.Fatal(err)
	}
	want = MemoryStat{
		Anon: 100 * mib, AnonTHP: 4 * mib, File: 250 * mib, FileMapped: 20 * mib,
		Shmem: 50 * mib, FileDirty: 8 * mib, FileWriteback: 2 * mib,
		ActiveAnon: 90 * mib, InactiveAnon: 60 * mib, ActiveFile: 50 * mib, InactiveFile: 150 * mib,
		Slab: 7 * mib, SlabReclaimable: 6 * mib, SlabUnreclaimable: 1 * mib,
	}
	if m.Stat != want {
		t.Errorf("v2 stat\n got %+v\nwant %+v", m.Stat, want)
	}
}

func TestReadMemoryErrors(t *testing.T) {
	v2, _ := Detect("testdata/v2")
	if _, err := memoryOf(t, NewCgroup(v2, "/empty")); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty memory.max: %v, want ErrEmpty", err)
	}
	if _, err := memoryOf(t, NewCgroup(v2, "/gone")); err == nil {
		t.Error("a cgroup that does not exist gave no error")
	}
	if _, err := Detect("testdata"); !errors.Is(err, ErrNoHierarchy) {
		t.Errorf("Detect of a non-hierarchy: %v, want ErrNoHierarchy", err)
	}
}

func TestParseLimit(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"max\n", NoLimit, false},
		{"9223372036854771712\n", NoLimit, false},
		{"9223372036854710272\n", NoLimit, false}, // 64 KiB pages
		{"-1\n", NoLimit, false},
		{"314572800\n", 300 * mib, false},
		{"0\n", 0, false},
		{"", 0, true},
		{"-5", 0, true},
		{"12abc", 0, true},
		{"99999999999999999999999", 0, true},
	}
	for _, c := range cases {
		got, err := ParseLimit([]byte(c.in))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ParseLimit(%q) = %d, %v; want %d, err %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	v1 := &Hierarchy{Root: "/sys/fs/cgroup", Mode: Legacy, dirs: map[string]string{"memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct"}}
	v2 := &Hierarchy{Root: "/sys/fs/cgroup", Mode: Unified}
	data := []byte("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc/init.scope\n1:name=systemd:/x\n0::/system.slice/foo/init.scope\n")
	c, err := ParseProcCgroup(v1, data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path(MemoryResource) != "/docker/abc" || c.Path(CPUTimeResource) != "/docker/abc" {
		t.Errorf("v1 paths: memory %q cpuacct %q", c.Path(MemoryResource), c.Path(CPUTimeResource))
	}
	if d, _ := c.Dir(CPUQuotaResource); d != "/sys/fs/cgroup/cpu,cpuacct/docker/abc" {
		t.Errorf("co-mounted dir %q", d)
	}
	if anc, _ := c.ancestors("memory"); len(anc) != 3 || anc[2] != "/sys/fs/cgroup/memory" {
		t.Errorf("ancestors %q", anc)
	}
	c, err = ParseProcCgroup(v2, data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Path(MemoryResource) != "/system.slice/foo" || c.IsRoot(MemoryResource) {
		t.Errorf("v2 path %q", c.Path(MemoryResource))
	}
	c, _ = ParseProcCgroup(v2, []byte("0::/init.scope\n"))
	if !c.IsRoot(MemoryResource) {
		t.Errorf("/init.scope at the root is the root, got %q", c.Path(MemoryResource))
	}
	for _, bad := range []string{"", "0::\n", "garbage\n", "4:memory:relative\n"} {
		if _, err := ParseProcCgroup(v2, []byte(bad)); err == nil {
			t.Errorf("ParseProcCgroup(%q): no error", bad)
		}
	}
	if _, err := ParseProcCgroup(v1, []byte("0::/only-v2\n")); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("v1 hierarchy with only a v2 line: %v, want ErrNoCgroup", err)
	}
}

// TestRootLimitsNotRead: the hierarchy root's limits are the kernel's fixed
// none, so the walks up the tree stop below the root and never pay for its
// files. A root carrying a limit (which no kernel shows) must not count.
func TestRootLimitsNotRead(t *testing.T) {
	mem := t.TempDir()
	if err := os.CopyFS(mem, os.DirFS("testdata/v1")); err != nil {
		t.Fatal(err)
	}
	// Without memory.stat's hierarchical limits, so that the memory
	// limits come from the walk (TestMemoryV1LimitsFromStat).
	stat := mem + "/memory/docker/ctr/memory.stat"
	data, err := os.ReadFile(stat)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(l, "hierarchical_") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(stat, []byte(strings.Join(kept, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	cpu := t.TempDir()
	if err := os.CopyFS(cpu, os.DirFS("testdata/cpu-v1")); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{
		mem + "/memory/memory.limit_in_bytes":       "1048576",
		mem + "/memory/memory.memsw.limit_in_bytes": "1048576",
		cpu + "/cpu/cpu.cfs_quota_us":               "1000",
		cpu + "/cpu/cpu.cfs_period_us":              "100000",
	} {
		if err := os.WriteFile(f, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := Detect(mem)
	if err != nil {
		t.Fatal(err)
	}
	m, err := memoryOf(t, NewCgroup(h, "/docker/ctr"))
	if err != nil || m.Limit != 1<<30 || m.SwapLimit != 1<<30 {
		t.Errorf("memory below a limited root: limit %d swap %d, %v; want the parent's 1 GiB and 1 GiB", m.Limit, m.SwapLimit, err)
	}
	if h, err = Detect(cpu); err != nil {
		t.Fatal(err)
	}
	if q, err := cpuQuotaOf(t, NewCgroup(h, "/sparse")); err != nil || q != 2 {
		t.Errorf("CPU quota below a limited root: %d, %v; want the cgroup's 2", q, err)
	}
}

// On v1 the limits are memory.stat's hierarchical ones, the kernel's
// smallest from the cgroup up, which save a walk of the ancestors' files;
// a memory.stat without them gets the walk.
func TestMemoryV1LimitsFromStat(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/v1")); err != nil {
		t.Fatal(err)
	}
	stat := filepath.Join(dir, "memory/docker/ctr/memory.stat")
	orig, err := os.ReadFile(stat)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	rewrite := func(keep func(line string) (string, bool)) {
		t.Helper()
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(string(orig)), "\n") {
			if l, ok := keep(l); ok {
				out = append(out, l)
			}
		}
		if err := os.WriteFile(stat, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The files say 1 GiB and 2 GiB (the parent's); memory.stat another.
	rewrite(func(l string) (string, bool) {
		switch {
		case strings.HasPrefix(l, "hierarchical_memory_limit "):
			return "hierarchical_memory_limit 734003200", true
		case strings.HasPrefix(l, "hierarchical_memsw_limit "):
			return "hierarchical_memsw_limit 9223372036854771712", true
		}
		return l, true
	})
	m, err := memoryOf(t, NewCgroup(h, "/docker/ctr"))
	if err != nil || m.Limit != 700*mib || m.SwapLimit != NoLimit {
		t.Errorf("from memory.stat: limit %d swap %d, %v; want %d and none", m.Limit, m.SwapLimit, err, 700*mib)
	}

	rewrite(func(l string) (string, bool) { return l, !strings.HasPrefix(l, "hierarchical_") })
	m, err = memoryOf(t, NewCgroup(h, "/docker/ctr"))
	if err != nil || m.Limit != 1<<30 || m.SwapLimit != 1<<30 {
		t.Errorf("walked: limit %d swap %d, %v; want the parent's 1 GiB and 1 GiB", m.Limit, m.SwapLimit, err)
	}
}
