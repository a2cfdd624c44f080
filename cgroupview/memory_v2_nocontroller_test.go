package cgroupview

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A v2 cgroup without the memory controller reads as its nearest ancestor
// that has it; with none below the root, ErrNoMemoryController says the
// host's figures apply.
func TestReadMemoryV2WithoutController(t *testing.T) {
	root := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cgroup.controllers", "cpuset cpu io memory pids\n")
	write("memory.stat", "anon 1\n")
	write("lim/memory.max", "8192\n")
	write("lim/ctr/memory.max", "max\n")
	write("lim/ctr/memory.current", "4096\n")
	write("lim/ctr/memory.stat", "anon 4096\nfile 0\n")
	write("lim/ctr/memory.swap.current", "0\n")
	write("lim/ctr/memory.swap.max", "max\n")
	for _, d := range []string{"lim/ctr/plain/deeper", "none/plain"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h, err := Detect(root)
	if err != nil {
		t.Fatal(err)
	}

	m, err := memoryOf(t, NewCgroup(h, "/lim/ctr/plain/deeper"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Usage != 4096 || m.Limit != 8192 || m.Stat.Anon != 4096 || !m.SwapAccounting {
		t.Errorf("got %+v, want lim/ctr's usage and stat, lim's limit", m)
	}
	for _, p := range []string{"/none/plain", "/"} {
		if _, err := memoryOf(t, NewCgroup(h, p)); !errors.Is(err, ErrNoMemoryController) {
			t.Errorf("%s: %v, want ErrNoMemoryController", p, err)
		}
	}
}
