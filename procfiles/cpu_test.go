package procfiles

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// values collects the values of key in a cpuinfo, in order.
func values(out []byte, key string) []string {
	var vs []string
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := cpuinfoField([]byte(l)); ok && string(k) == key {
			vs = append(vs, string(v))
		}
	}
	return vs
}

func TestRenderCPUInfo(t *testing.T) {
	cases := []struct {
		fixture string
		cpus    []int
		want    map[string]string // key: its values joined by ","
		absent  []string          // text that must not appear
	}{
		{
			fixture: "cpuinfo-x86", cpus: []int{0, 1, 2, 3},
			want: map[string]string{"processor": "0,1,2,3", "siblings": "4,4,4,4", "cpu cores": "2,2,2,2", "apicid": "0,2,1,3"},
		},
		{
			// Host CPUs 2 and 3 are the second threads of cores 0 and 1.
			fixture: "cpuinfo-x86", cpus: []int{2, 3},
			want: map[string]string{"processor": "0,1", "siblings": "2,2", "cpu cores": "2,2", "core id": "0,1", "apicid": "1,3"},
		},
		{
			// Two threads of one core.
			fixture: "cpuinfo-x86", cpus: []int{0, 2},
			want: map[string]string{"processor": "0,1", "siblings": "2,2", "cpu cores": "1,1", "core id": "0,0"},
		},
		{
			fixture: "cpuinfo-x86", cpus: []int{3},
			want: map[string]string{"processor": "0", "siblings": "1", "cpu cores": "1", "apicid": "3"},
		},
		{
			fixture: "cpuinfo-arm64", cpus: []int{1, 2},
			want: map[string]string{"processor": "0,1", "CPU part": "0xd0c,0xd0c"},
		},
		{
			// ppc numbers CPUs sparsely (SMT 8); the machine-wide
			// trailer stays.
			fixture: "cpuinfo-ppc64le", cpus: []int{8},
			want: map[string]string{"processor": "0", "timebase": "512000000", "machine": "CHRP IBM,9009-42A"},
		},
		{
			fixture: "cpuinfo-s390x", cpus: []int{1},
			want:   map[string]string{"# processors": "1", "cpu number": "0", "vendor_id": "IBM/S390"},
			absent: []string{"processor 1:"},
		},
	}
	for _, c := range cases {
		host, err := ParseCPUInfo(readFixture(t, c.fixture))
		if err != nil {
			t.Fatalf("%s: %v", c.fixture, err)
		}
		out := RenderCPUInfo(host, c.cpus)
		for k, want := range c.want {
			if got := strings.Join(values(out, k), ","); got != want {
				t.Errorf("%s for %v: %s = %q, want %q\n%s", c.fixture, c.cpus, k, got, want, out)
			}
		}
		for _, a := range c.absent {
			if bytes.Contains(out, []byte(a)) {
				t.Errorf("%s for %v: %q in\n%s", c.fixture, c.cpus, a, out)
			}
		}
		if !bytes.HasSuffix(out, []byte("\n")) || bytes.Contains(out, []byte("\n\n\n")) {
			t.Errorf("%s for %v: bad block separation:\n%q", c.fixture, c.cpus, out)
		}
	}
}

// Showing every CPU of a host whose numbering starts at 0 gives back the
// host's file byte for byte.
func TestRenderCPUInfoIdentity(t *testing.T) {
	for name, cpus := range map[string][]int{"cpuinfo-x86": {0, 1, 2, 3}, "cpuinfo-arm64": {0, 1, 2}, "cpuinfo-s390x": {0, 1}} {
		raw := readFixture(t, name)
		host, err := ParseCPUInfo(raw)
		if err != nil {
			t.Fatal(err)
		}
		if out := RenderCPUInfo(host, cpus); !bytes.Equal(out, raw) {
			t.Errorf("%s: all CPUs differ from the host's file:\n%q\nwant\n%q", name, out, raw)
		}
	}
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skip(err)
	}
	host, err := ParseCPUInfo(raw)
	if err != nil {
		t.Fatalf("this host's cpuinfo: %v", err)
	}
	var cpus []int
	for _, b := range host.Blocks {
		if b.Processor >= 0 {
			cpus = append(cpus, b.Processor)
		}
	}
	if cpus[0] == 0 && cpus[len(cpus)-1] == len(cpus)-1 {
		if out := RenderCPUInfo(host, cpus); !bytes.Equal(out, raw) {
			t.Errorf("this host's cpuinfo with all CPUs differs from the host's")
		}
	}
}

func TestParseCPUInfoErrors(t *testing.T) {
	for _, bad := range []string{"", "vendor_id : x\n", "processor : x\n", "processor : 0\nprocessor : 1\n", "processor : -1\n"} {
		if _, err := ParseCPUInfo([]byte(bad)); err == nil {
			t.Errorf("ParseCPUInfo(%q) succeeded", bad)
		}
	}
}

func TestRenderStat(t *testing.T) {
	host, err := ParseStat(readFixture(t, "stat-host"))
	if err != nil {
		t.Fatal(err)
	}
	out := RenderStat(host,
		CPUStat{User: 30, System: 3, Idle: 100, Steal: 20},
		[]CPUStat{{User: 10, System: 1, Idle: 50, Steal: 10}, {User: 20, System: 2, Idle: 50, Steal: 10}},
		1, 0)
	want := `cpu  30 0 3 100 0 0 0 20 0 0
cpu0 10 0 1 50 0 0 0 10 0 0
cpu1 20 0 2 50 0 0 0 10 0 0
intr 962967 0 0 0 0 0 1
ctxt 2935936
btime 1764106537
processes 14187
procs_running 1
procs_blocked 0
softirq 1008469 0 302012 21 3416 31389 0 2030 424806 0 244795
`
	if string(out) != want {
		t.Errorf("RenderStat:\n%s\nwant\n%s", out, want)
	}

	// An old kernel's 7 counters stay 7.
	old, err := ParseStat([]byte("cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\nctxt 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if out := RenderStat(old, CPUStat{User: 1}, []CPUStat{{User: 1}}, 0, 0); !regexp.MustCompile(`^cpu  1 0 0 0 0 0 0\ncpu0 1 0 0 0 0 0 0\nctxt 5\n$`).Match(out) {
		t.Errorf("7-field stat: %q", out)
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, bad := range []string{"", "ctxt 1\n", "cpu  1 2\n", "cpu  1 2 3 4\ncpu  1 2 3 4\n", "cpu  1 2 3 4\ncpux 1 2 3 4\n"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) succeeded", bad)
		}
	}
}

func TestRenderCPURange(t *testing.T) {
	for n, want := range map[int]string{0: "\n", 1: "0\n", 2: "0-1\n", 64: "0-63\n"} {
		if got := string(RenderCPURange(n)); got != want {
			t.Errorf("RenderCPURange(%d) = %q, want %q", n, got, want)
		}
	}
}

func FuzzParseCPUInfo(f *testing.F) {
	for _, name := range []string{"cpuinfo-x86", "cpuinfo-arm64", "cpuinfo-ppc64le", "cpuinfo-s390x"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("processor : 3\n\nprocessor 3: x\n# processors : 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ci, err := ParseCPUInfo(data)
		if err != nil {
			return
		}
		RenderCPUInfo(ci, []int{0, 3})
		RenderCPUInfo(ci, nil)
	})
}

func FuzzParseStat(f *testing.F) {
	if b, err := os.ReadFile("testdata/stat-host"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("cpu  1 2 3 4\ncpu\nprocs_running 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStat(data)
		if err != nil {
			return
		}
		RenderStat(s, CPUStat{}, []CPUStat{{}}, 1, 1)
	})
}

// BenchmarkCPUInfo parses a 64-CPU host's cpuinfo (the x86 fixture's first
// block, renumbered) and renders a 2-CPU container's, as every open of a
// container's proc/cpuinfo does.
func BenchmarkCPUInfo(b *testing.B) {
	fixture, err := os.ReadFile("testdata/cpuinfo-x86")
	if err != nil {
		b.Fatal(err)
	}
	block, _, _ := bytes.Cut(fixture, []byte("\n\n"))
	var host []byte
	for i := range 64 {
		host = append(host, bytes.Replace(block, []byte("processor\t: 0"), []byte("processor\t: "+strconv.Itoa(i)), 1)...)
		host = append(host, "\n\n"...)
	}
	b.ReportAllocs()
	for b.Loop() {
		ci, err := ParseCPUInfo(host)
		if err != nil {
			b.Fatal(err)
		}
		RenderCPUInfo(ci, []int{5, 6})
	}
}
