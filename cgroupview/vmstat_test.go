package cgroupview

import (
	"errors"
	"slices"
	"testing"
)

// vmValues maps the VMCounters to their names, for readable checks.
func vmValues(vm VMCounters) map[string]uint64 {
	m := map[string]uint64{}
	for i, v := range vm {
		name, _ := VMKey(i)
		m[name] = v
	}
	return m
}

func TestVMKeysSorted(t *testing.T) {
	names := make([]string, NumVMKeys)
	for i := range names {
		names[i], _ = VMKey(i)
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Fatalf("vmKeys must be sorted and unique for the binary search: %v", names)
	}
	for i, n := range names {
		if j, ok := vmKeyIndex([]byte(n)); !ok || j != i {
			t.Errorf("vmKeyIndex(%q) = %d, %v, want %d", n, j, ok, i)
		}
	}
	for _, n := range []string{"", "a", "pgpgin", "total_pgfault", "zzz", "pgfaul", "pgfaultx"} {
		if _, ok := vmKeyIndex([]byte(n)); ok {
			t.Errorf("vmKeyIndex(%q) found a key", n)
		}
	}
}

func TestReadMemoryVM(t *testing.T) {
	v1, err := Detect("testdata/vm-v1")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Detect("testdata/vm-v2")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		h    *Hierarchy
		path string
		want map[string]uint64 // the values checked; others must be 0
	}{
		{"v2 on 6.1: no pswpin, no pgscan_kswapd", v2, "/ctr61", map[string]uint64{
			"pgfault": 98765, "pgmajfault": 321, "pgrefill": 50, "pgactivate": 600, "pgdeactivate": 700,
			"workingset_refault_anon": 120, "workingset_refault_file": 340, "workingset_activate_anon": 20,
			"workingset_activate_file": 40, "workingset_restore_anon": 2, "workingset_restore_file": 4,
			"thp_fault_alloc": 2, "kernel_stack": 49152, "pagetables": 229376, "swapcached": 16384, "oom_kill": 1,
		}},
		{"v2 on 6.18: pswpin and the reclaim split", v2, "/ctr618", map[string]uint64{
			"pgfault": 98765, "pgmajfault": 321, "pgrefill": 50, "pgactivate": 600, "pgdeactivate": 700,
			"workingset_refault_anon": 120, "workingset_refault_file": 340, "workingset_activate_anon": 20,
			"workingset_activate_file": 40, "workingset_restore_anon": 2, "workingset_restore_file": 4,
			"thp_fault_alloc": 2, "kernel_stack": 49152, "pagetables": 229376, "swapcached": 16384, "oom_kill": 1,
			"pswpin": 1111, "pswpout": 2222, "pgscan_kswapd": 3000, "pgscan_direct": 2000, "pgsteal_kswapd": 2500, "pgsteal_direct": 1500,
		}},
		// Only total_* keys, and never total_pgpgin/out (charge events).
		{"v1 total keys", v1, "/ctr", map[string]uint64{
			"pgfault": 44393, "pgmajfault": 113, "workingset_refault_anon": 12, "workingset_refault_file": 34,
			"swapcached": 16384, "oom_kill": 3,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem, vm, err := NewReader(c.h, testFS(t)).MemoryVM(NewCgroup(c.h, c.path))
			if err != nil {
				t.Fatal(err)
			}
			if want, err := memoryOf(t, NewCgroup(c.h, c.path)); err != nil || want != mem {
				t.Errorf("MemoryVM's memory %+v, Memory's %+v (%v)", mem, want, err)
			}
			for name, got := range vmValues(vm) {
				if got != c.want[name] {
					t.Errorf("%s = %d, want %d", name, got, c.want[name])
				}
			}
		})
	}
}

func TestReadPressure(t *testing.T) {
	v1, err := Detect("testdata/vm-v1")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := Detect("testdata/vm-v2")
	if err != nil {
		t.Fatal(err)
	}
	want := "some avg10=1.50 avg60=0.75 avg300=0.20 total=123456\nfull avg10=0.50 avg60=0.25 avg300=0.05 total=65432\n"
	for _, c := range []struct {
		name string
		h    *Hierarchy
		path string
		res  PressureResource
		want string // "" for ErrNoPressure
	}{
		{"v2 cgroup", v2, "/ctr618", "cpu", want},
		{"v2 file hidden (cgroup.pressure 0)", v2, "/ctr618", "memory", ""},
		{"v2 root", v2, "/", "cpu", ""},
		{"v1 hybrid: the unified tree", v1, "/ctr", "cpu", want},
		{"v1 hybrid: at the unified tree's root", v1, "/", "cpu", ""},
		{"v1 hybrid: no such cgroup in the unified tree", v1, "/other", "cpu", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := NewReader(c.h, testFS(t)).Pressure(NewCgroup(c.h, c.path), c.res)
			if c.want == "" {
				if !errors.Is(err, ErrNoPressure) {
					t.Fatalf("got %q, %v, want ErrNoPressure", got, err)
				}
				return
			}
			if err != nil || string(got) != c.want {
				t.Fatalf("got %q, %v, want %q", got, err, c.want)
			}
		})
	}
	// A v1 host without a cgroup2 tree has no source.
	plain, err := Detect("testdata/v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewReader(plain, testFS(t)).Pressure(NewCgroup(plain, "/docker/ctr"), "cpu"); !errors.Is(err, ErrNoPressure) {
		t.Errorf("v1 without unified/: %v, want ErrNoPressure", err)
	}
}
