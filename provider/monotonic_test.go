package provider

import (
	"os"
	"testing"

	"github.com/cgprocfs/cgprocfs/cgroupview"
)

func TestCounterFold(t *testing.T) {
	var c counter
	for _, st := range []struct{ raw, want uint64 }{{5, 5}, {9, 9}, {2, 11}, {4, 13}, {4, 13}, {0, 13}, {1, 14}} {
		if got := c.fold(st.raw); got != st.want {
			t.Fatalf("fold(%d) = %d, want %d", st.raw, got, st.want)
		}
	}
}

// vmstat's events only grow; its sizes are what the cgroup says.
func TestVMStateEventsMonotonic(t *testing.T) {
	dir := t.TempDir()
	var s vmState
	idx := func(name string) int {
		for i := range cgroupview.NumVMKeys {
			if n, _ := cgroupview.VMKey(i); n == name {
				return i
			}
		}
		t.Fatalf("no key %s", name)
		return 0
	}
	pgfault, stack := idx("pgfault"), idx("kernel_stack")
	step := func(fault, st uint64) (uint64, uint64) {
		var raw cgroupview.VMCounters
		raw[pgfault], raw[stack] = fault, st
		out := s.fold("k", dir, raw)
		if out[pgfault].Key != "pgfault" || out[stack].Key != "kernel_stack" {
			t.Fatalf("values out of order: %v", out)
		}
		return out[pgfault].Value, out[stack].Value
	}
	for _, st := range []struct{ fault, stack, wantFault, wantStack uint64 }{
		{100, 8192, 100, 8192},
		{150, 4096, 150, 4096},
		{20, 16384, 170, 16384}, // a v1 child's events gone with it
		{30, 0, 180, 0},
	} {
		if f, k := step(st.fault, st.stack); f != st.wantFault || k != st.wantStack {
			t.Fatalf("raw %d/%d: shown %d/%d, want %d/%d", st.fault, st.stack, f, k, st.wantFault, st.wantStack)
		}
	}
	// The cgroup made again under the same path starts from zero.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	s.forget()
	if s.len() != 0 {
		t.Fatalf("state of a removed cgroup kept")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if f, _ := step(7, 0); f != 7 {
		t.Fatalf("new cgroup at the same path shows %d, want 7", f)
	}
}
