package procfiles

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
)

const (
	mib     = 1 << 20
	noLimit = math.MaxUint64
)

func loadMeminfo(t *testing.T, name string) (*Meminfo, []byte) {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMeminfo(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m, raw
}

func TestMeminfoRoundTrip(t *testing.T) {
	for _, name := range []string{"meminfo-host", "meminfo-swap"} {
		m, raw := loadMeminfo(t, name)
		if got := m.Bytes(); !bytes.Equal(got, raw) {
			t.Errorf("%s: rendering the parsed file changed it:\n%s", name, got)
		}
	}
}

func TestParseMeminfoErrors(t *testing.T) {
	for _, bad := range []string{"", "MemTotal 5 kB\n", "MemTotal: x kB\n", "A: 1\nA: 2\n", ": 5\n"} {
		if _, err := ParseMeminfo([]byte(bad)); err == nil {
			t.Errorf("ParseMeminfo(%q): no error", bad)
		}
	}
}

func TestComputeMemory(t *testing.T) {
	host, _ := loadMeminfo(t, "meminfo-swap") // 8024036 kB memory, 2097148 kB swap
	hostTotal, hostSwap := uint64(8024036*1024), uint64(2097148*1024)
	stat := MemoryStat{
		File: 60 * mib, Shmem: 10 * mib, FileDirty: 5 * mib, FileWriteback: 1 * mib,
		ActiveFile: 20 * mib, SlabReclaimable: 3 * mib,
	}
	cases := []struct {
		name string
		mem  CgroupMemory
		// The operator's choices.
		activeFileUsedPercent uint64
		hideSwap              bool
		want                  ContainerMemory
	}{
		{
			name: "limited, pinned cache is used",
			mem:  CgroupMemory{Limit: 300 * mib, Usage: 100 * mib, Stat: stat},
			want: ContainerMemory{Total: 300 * mib, Free: 200 * mib, Cached: 44 * mib, Available: 247 * mib},
		},
		{
			name:                  "a share of active file counts as used",
			mem:                   CgroupMemory{Limit: 300 * mib, Usage: 100 * mib, Stat: stat},
			activeFileUsedPercent: 50,
			want:                  ContainerMemory{Total: 300 * mib, Free: 200 * mib, Cached: 34 * mib, Available: 237 * mib},
		},
		{
			name: "unlimited is the host's total",
			mem:  CgroupMemory{Limit: noLimit, Usage: 100 * mib, Stat: stat},
			want: ContainerMemory{Total: hostTotal, Free: hostTotal - 100*mib, Cached: 44 * mib, Available: hostTotal - 100*mib + 47*mib},
		},
		{
			name: "usage above the limit: free 0, available capped",
			mem:  CgroupMemory{Limit: 50 * mib, Usage: 60 * mib, Stat: stat},
			want: ContainerMemory{Total: 50 * mib, Free: 0, Cached: 44 * mib, Available: 47 * mib},
		},
		{
			name: "more pinned than file: no cache",
			mem:  CgroupMemory{Limit: 300 * mib, Usage: 100 * mib, Stat: MemoryStat{File: 10 * mib, Shmem: 12 * mib}},
			want: ContainerMemory{Total: 300 * mib, Free: 200 * mib, Cached: 0, Available: 200 * mib},
		},
		{
			name: "swap limit below the host's",
			mem:  CgroupMemory{Limit: 300 * mib, Usage: 100 * mib, Stat: stat, SwapAccounting: true, SwapLimit: 1024 * mib, SwapUsage: 100 * mib},
			want: ContainerMemory{Total: 300 * mib, Free: 200 * mib, Cached: 44 * mib, Available: 247 * mib, SwapTotal: 1024 * mib, SwapFree: 924 * mib},
		},
		{
			name: "unlimited swap is the host's",
			mem:  CgroupMemory{Limit: 300 * mib, Usage: 100 * mib, Stat: stat, SwapAccounting: true, SwapLimit: noLimit, SwapUsage: 1 * mib},
			want: ContainerMemory{Total: 300 * mib, Free: 200 * mib, Cached: 44 * mib, Available: 247 * mib, SwapTotal: hostSwap, SwapFree: hostSwap - 1*mib},
		},
		{
			name: "swap usage above the swap limit",
			mem:  CgroupMemory{Limit: 300 * mib, Usage: 100 * mib, Stat: stat, SwapAccounting: true, SwapLimit: 10 * mib, SwapUsage: 20 * mib},
			want: ContainerMemory{Total: 300 * mib, Free: 200 * mib, Cached: 44 * mib, Available: 247 * mib, SwapTotal: 10 * mib, SwapFree: 0},
		},
		{
			name:     "hidden swap",
			mem:      CgroupMemory{Limit: 300 * mib, Usage: 100 * mib, Stat: stat, SwapAccounting: true, SwapLimit: noLimit},
			hideSwap: true,
			want:     ContainerMemory{Total: 300 * mib, Free: 200 * mib, Cached: 44 * mib, Available: 247 * mib},
		},
		{
			name: "zero swap limit",
			mem:  CgroupMemory{Limit: 300 * mib, Usage: 100 * mib, Stat: stat, SwapAccounting: true, SwapLimit: 0},
			want: ContainerMemory{Total: 300 * mib, Free: 200 * mib, Cached: 44 * mib, Available: 247 * mib},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.want.Stat = c.mem.Stat
			got := ComputeMemory(host, c.mem, c.activeFileUsedPercent, c.hideSwap)
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
			if got.Available > got.Total {
				t.Errorf("available %d above total %d", got.Available, got.Total)
			}
		})
	}

	// A host without swap shows none, whatever the cgroup allows.
	noSwapHost, _ := loadMeminfo(t, "meminfo-host")
	if hostSwapKB, _ := noSwapHost.Get("SwapTotal"); hostSwapKB == 0 {
		got := ComputeMemory(noSwapHost, CgroupMemory{Limit: noLimit, SwapAccounting: true, SwapLimit: noLimit}, 0, false)
		if got.SwapTotal != 0 {
			t.Errorf("host without swap: SwapTotal %d", got.SwapTotal)
		}
	}
}

func meminfoValue(t *testing.T, data []byte, key string) uint64 {
	t.Helper()
	m, err := ParseMeminfo(data)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := m.Get(key)
	if !ok {
		t.Fatalf("no %s line in\n%s", key, data)
	}
	return v
}

func TestRenderMeminfo(t *testing.T) {
	host, raw := loadMeminfo(t, "meminfo-swap")
	stat := MemoryStat{
		Anon: 70 * mib, AnonTHP: 2 * mib, File: 200 * mib, FileMapped: 10 * mib,
		Shmem: 64 * mib, FileDirty: 4 * mib, FileWriteback: 1 * mib,
		ActiveAnon: 70 * mib, InactiveAnon: 64 * mib, ActiveFile: 45 * mib, InactiveFile: 90 * mib,
		Unevictable: 1 * mib, Slab: 7 * mib, SlabReclaimable: 6 * mib, SlabUnreclaimable: 1 * mib,
	}
	mem := CgroupMemory{Limit: 300 * mib, Usage: 290 * mib, Stat: stat, SwapAccounting: true, SwapLimit: 100 * mib, SwapUsage: 20 * mib}
	out := RenderMeminfo(host, ComputeMemory(host, mem, 0, false))

	want := map[string]uint64{
		"MemTotal": 307200, "MemFree": 10240, "MemAvailable": 10240 + 131*1024 + 6*1024,
		"Buffers": 0, "Cached": 131 * 1024, "SwapCached": 0,
		"Active": 115 * 1024, "Inactive": 154 * 1024, "Active(anon)": 70 * 1024, "Inactive(anon)": 64 * 1024,
		"Active(file)": 45 * 1024, "Inactive(file)": 90 * 1024, "Unevictable": 1024,
		"SwapTotal": 100 * 1024, "SwapFree": 80 * 1024, "Dirty": 4 * 1024, "Writeback": 1024,
		"AnonPages": 70 * 1024, "Mapped": 10 * 1024, "Shmem": 64 * 1024, "KReclaimable": 6 * 1024,
		"Slab": 7 * 1024, "SReclaimable": 6 * 1024, "SUnreclaim": 1024, "AnonHugePages": 2 * 1024,
		// Lines without a cgroup source stay the host's.
		"VmallocTotal": 34359738367, "HugePages_Total": 0, "Hugepagesize": 2048, "CommitLimit": 6109164,
	}
	for k, v := range want {
		if got := meminfoValue(t, out, k); got != v {
			t.Errorf("%s = %d, want %d", k, got, v)
		}
	}
	// The host's layout: same keys in the same order, same widths.
	outLines, hostLines := strings.Split(string(out), "\n"), strings.Split(string(raw), "\n")
	if len(outLines) != len(hostLines) {
		t.Fatalf("%d lines, host has %d", len(outLines), len(hostLines))
	}
	for i := range hostLines {
		if len(outLines[i]) != len(hostLines[i]) || strings.SplitN(outLines[i], ":", 2)[0] != strings.SplitN(hostLines[i], ":", 2)[0] {
			t.Errorf("line %d %q does not line up with the host's %q", i, outLines[i], hostLines[i])
		}
	}
	if !strings.Contains(string(out), "\nMemTotal:") && !strings.HasPrefix(string(out), "MemTotal:         307200 kB\n") {
		t.Errorf("unexpected first line: %q", strings.SplitN(string(out), "\n", 2)[0])
	}
}

// procps 4 free computes used = total - available; procps 3 computes
// used = total - free - buffers - (Cached + SReclaimable). They must agree.
func TestFreeVersionsAgreeOnUsed(t *testing.T) {
	host, _ := loadMeminfo(t, "meminfo-host")
	for _, pct := range []uint64{0, 30, 100} {
		stat := MemoryStat{File: 120 * mib, Shmem: 30 * mib, FileDirty: 7 * mib, FileWriteback: 2 * mib, ActiveFile: 40 * mib, SlabReclaimable: 5 * mib}
		mem := CgroupMemory{Limit: 512 * mib, Usage: 300 * mib, Stat: stat}
		out := RenderMeminfo(host, ComputeMemory(host, mem, pct, false))
		get := func(k string) int64 { return int64(meminfoValue(t, out, k)) }
		v4 := get("MemTotal") - get("MemAvailable")
		v3 := get("MemTotal") - get("MemFree") - get("Buffers") - get("Cached") - get("SReclaimable")
		if v3 != v4 {
			t.Errorf("active share %d%%: procps 4 used %d kB, procps 3 used %d kB", pct, v4, v3)
		}
	}
}

func TestRenderSwaps(t *testing.T) {
	if got := string(RenderSwaps(ContainerMemory{})); got != "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" {
		t.Errorf("no swap: %q", got)
	}
	got := string(RenderSwaps(ContainerMemory{SwapTotal: 100 * mib, SwapFree: 80 * mib}))
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want header and one line, got %q", got)
	}
	if f := strings.Fields(lines[1]); len(f) != 5 || f[0] != "none" || f[1] != "virtual" || f[2] != "102400" || f[3] != "20480" || f[4] != "-1" {
		t.Errorf("swap line %q", lines[1])
	}
	if !strings.HasPrefix(lines[1], "none"+strings.Repeat(" ", 36)+"virtual") {
		t.Errorf("swap line not laid out as the kernel's: %q", lines[1])
	}
}

func FuzzParseMeminfo(f *testing.F) {
	for _, name := range []string{"meminfo-host", "meminfo-swap"} {
		raw, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte("A:\n"))
	f.Add([]byte("MemTotal: 99999999999999999999 kB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMeminfo(data)
		if err != nil {
			return
		}
		out := RenderMeminfo(m, ComputeMemory(m, CgroupMemory{Limit: noLimit, Usage: 1 << 40}, 0, false))
		if _, err := ParseMeminfo(out); err != nil {
			t.Fatalf("rendered output does not parse: %v\n%q", err, out)
		}
	})
}
