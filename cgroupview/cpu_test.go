package cgroupview

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

func TestParseCPUList(t *testing.T) {
	cases := []struct {
		in   string
		want []int
		bad  bool
	}{
		{in: "", want: nil},
		{in: "\n", want: nil},
		{in: "0\n", want: []int{0}},
		{in: "0-3", want: []int{0, 1, 2, 3}},
		{in: "0,2-3,8\n", want: []int{0, 2, 3, 8}},
		{in: "8,0-1,1", want: []int{0, 1, 8}},
		{in: "0-7:2/4", want: []int{0, 1, 4, 5}},
		{in: "3-1", bad: true},
		{in: "0,,1", bad: true},
		{in: "0-", bad: true},
		{in: "-1", bad: true},
		{in: "a", bad: true},
		{in: "+1", bad: true},
		{in: "0-65536", bad: true},
		{in: "0-7:0/4", bad: true},
		{in: "0-7:5/4", bad: true},
		{in: "0-7:2", bad: true},
	}
	for _, c := range cases {
		got, err := ParseCPUList([]byte(c.in))
		if c.bad {
			if !errors.Is(err, ErrBadCPUList) {
				t.Errorf("ParseCPUList(%q) = %v, %v; want ErrBadCPUList", c.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseCPUList(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestFormatCPUList(t *testing.T) {
	for in, want := range map[string]string{"": "", "0": "0", "0-3": "0-3", "0,2-3,8": "0,2-3,8", "1,3,5-6": "1,3,5-6"} {
		cpus, err := ParseCPUList([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := procfiles.FormatCPUList(cpus); got != want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", cpus, got, want)
		}
	}
	if got := Intersect([]int{0, 2, 3, 8}, []int{1, 2, 3, 4, 8, 9}); !reflect.DeepEqual(got, []int{2, 3, 8}) {
		t.Errorf("Intersect = %v", got)
	}
}

func cpuFixtures(t *testing.T) (v1, v2 *Hierarchy) {
	t.Helper()
	var err error
	if v1, err = Detect("testdata/cpu-v1"); err != nil {
		t.Fatal(err)
	}
	if v2, err = Detect("testdata/cpu-v2"); err != nil {
		t.Fatal(err)
	}
	return v1, v2
}

func TestReadCPUSetAndQuota(t *testing.T) {
	v1, v2 := cpuFixtures(t)
	cases := []struct {
		name  string
		h     *Hierarchy
		path  string
		cpus  []int
		quota int
		bad   bool
	}{
		{name: "v1 root", h: v1, path: "/", cpus: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, quota: 0},
		{name: "v1 sparse cpuset, 1.5 CPUs of quota", h: v1, path: "/sparse", cpus: []int{0, 2, 3, 8}, quota: 2},
		{name: "v1 empty cpuset walks up, quota -1 under a parent's quota", h: v1, path: "/sparse/empty", cpus: []int{0, 2, 3, 8}, quota: 2},
		{name: "v1 child quota tighter than the parent's", h: v1, path: "/sparse/tight", cpus: []int{0, 2, 3, 8}, quota: 1},
		{name: "v1 empty cpusets up to the root, quota in another period", h: v1, path: "/emptyall/child", cpus: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, quota: 1},
		{name: "v1 bad cpulist", h: v1, path: "/bad", bad: true},
		{name: "v1 cpuset.cpus without effective_cpus (old kernels)", h: v1, path: "/old", cpus: []int{1, 3}, quota: 0},
		{name: "v2 empty cpuset walks up, max under 2 CPUs", h: v2, path: "/pod/ctr", cpus: []int{1, 2}, quota: 2},
		{name: "v2 half a CPU is one", h: v2, path: "/half", cpus: []int{0, 1, 2, 3}, quota: 1},
		{name: "v2 no cpu.max, no cpuset files", h: v2, path: "/nocpu", cpus: []int{0, 1, 2, 3}, quota: 0},
		{name: "v2 bad cpu.max", h: v2, path: "/badmax", cpus: []int{0, 1, 2, 3}, bad: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cg := NewCgroup(c.h, c.path)
			cpus, err := cpuSetOf(t, cg)
			if c.bad && c.cpus == nil {
				if err == nil {
					t.Fatalf("ReadCPUSet = %v, want an error", cpus)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(cpus, c.cpus) {
				t.Fatalf("ReadCPUSet = %v, %v; want %v", cpus, err, c.cpus)
			}
			q, err := cpuQuotaOf(t, cg)
			if c.bad {
				if err == nil {
					t.Fatalf("CPUQuota = %d, want an error", q)
				}
				return
			}
			if err != nil || q != c.quota {
				t.Fatalf("CPUQuota = %d, %v; want %d", q, err, c.quota)
			}
		})
	}
}

func TestReadCPUUsage(t *testing.T) {
	v1, v2 := cpuFixtures(t)
	u, err := cpuUsageOf(t, NewCgroup(v1, "/sparse/empty"))
	if err != nil {
		t.Fatal(err)
	}
	if u.User != 10000 || u.System != 100 || u.Throttled != 123456789 || len(u.PerCPU) != 10 || u.PerCPU[8] != (CPUTime{4000, 40}) {
		t.Errorf("v1 usage_all: %+v", u)
	}
	u, err = cpuUsageOf(t, NewCgroup(v1, "/old"))
	if err != nil {
		t.Fatal(err)
	}
	if u.User != 300 || u.System != 0 || len(u.PerCPU) != 3 || u.Throttled != 0 {
		t.Errorf("v1 usage_percpu: %+v", u)
	}
	if _, err := cpuUsageOf(t, NewCgroup(v1, "/none")); !errors.Is(err, ErrNoCPUAccounting) {
		t.Errorf("v1 without cpuacct files: %v, want ErrNoCPUAccounting", err)
	}
	u, err = cpuUsageOf(t, NewCgroup(v2, "/pod/ctr"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(u, CPUUsage{User: 2000000, System: 1000000, Throttled: 700000}) {
		t.Errorf("v2 cpu.stat: %+v", u)
	}
	// user+system short of usage: the rest counts as system.
	u, err = cpuUsageOf(t, NewCgroup(v2, "/half"))
	if err != nil || u.User != 4000 || u.System != 6000 {
		t.Errorf("v2 cpu.stat short of usage: %+v, %v", u, err)
	}
	if _, err := cpuUsageOf(t, NewCgroup(v2, "/pod")); !errors.Is(err, ErrNoCPUAccounting) {
		t.Errorf("v2 without cpu.stat: %v, want ErrNoCPUAccounting", err)
	}
}

func TestParseUsageAll(t *testing.T) {
	for _, bad := range []string{
		"", "cpu user\n0 1 2\n", "cpu user system\n1 1 2\n", "cpu user system\n0 1\n",
		"cpu user system\n0 1 x\n", "cpu user system\n0 1 2\n0 1 2\n",
		// A blank line is the end only at the end of the file.
		"cpu user system\n0 1 2\n\n1 3 4\n",
	} {
		if got, err := ParseUsageAll([]byte(bad)); err == nil {
			t.Errorf("ParseUsageAll(%q) = %v, want an error", bad, got)
		}
	}
	got, err := ParseUsageAll([]byte("cpu user system\n0 5 6\n1 7 8\n\n"))
	if err != nil || !reflect.DeepEqual(got, []CPUTime{{5, 6}, {7, 8}}) {
		t.Errorf("ParseUsageAll = %v, %v", got, err)
	}
}

func TestParseCPUMax(t *testing.T) {
	cases := []struct {
		in            string
		quota, period uint64
		bad           bool
	}{
		{in: "max 100000\n", quota: NoLimit, period: 100000},
		{in: "50000 100000\n", quota: 50000, period: 100000},
		{in: "50000 0", bad: true},
		{in: "50000", bad: true},
		{in: "-1 100000", bad: true},
		{in: "", bad: true},
	}
	for _, c := range cases {
		q, p, err := ParseCPUMax([]byte(c.in))
		if c.bad != (err != nil) || (!c.bad && (q != c.quota || p != c.period)) {
			t.Errorf("ParseCPUMax(%q) = %d, %d, %v", c.in, q, p, err)
		}
	}
	for _, c := range []struct {
		q, p uint64
		want int
	}{{NoLimit, 100000, 0}, {1, 100000, 1}, {100000, 100000, 1}, {100001, 100000, 2}, {50000, 0, 0}, {NoLimit - 1, 1, 0}} {
		if got := quotaCPUs(c.q, c.p); got != c.want {
			t.Errorf("quotaCPUs(%d, %d) = %d, want %d", c.q, c.p, got, c.want)
		}
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0-3", "0,2-3,8\n", "", "0-7:2/4", "1-0", "65535"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cpus, err := ParseCPUList(data)
		if err != nil {
			return
		}
		// What parses formats back to a list that parses the same.
		again, err := ParseCPUList([]byte(procfiles.FormatCPUList(cpus)))
		if err != nil || !reflect.DeepEqual(again, cpus) {
			t.Fatalf("%q: %v then %v, %v", data, cpus, again, err)
		}
	})
}

func FuzzParseCPUFiles(f *testing.F) {
	f.Add([]byte("cpu user system\n0 1 2\n1 3 4\n"))
	f.Add([]byte("usage_usec 3\nuser_usec 2\nsystem_usec 1\nthrottled_usec 5\n"))
	f.Add([]byte("nr_periods 1\nthrottled_time 2\n"))
	f.Add([]byte("max 100000"))
	f.Add([]byte("1 2 3 "))
	f.Add([]byte("cpu user system\n"))
	f.Add([]byte("cpu user system\n0 1 2\n\n1 3 4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseUsageAll(data)
		ParseUsagePerCPU(data)
		ParseCPUStatV1(data)
		ParseCPUStatV2(data)
		ParseCPUMax(data)
	})
}
