package cgroupview

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// fakeProc builds a /proc-like tree: ns/pid links, stat and cgroup files.
type fakeProc struct {
	t    *testing.T
	root string
}

func (f fakeProc) add(pid int, ns uint64, ppid int, start uint64, cgroup string) {
	dir := filepath.Join(f.root, strconv.Itoa(pid))
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(fmt.Sprintf("pid:[%d]", ns), filepath.Join(dir, "ns", "pid")); err != nil {
		f.t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (sh) S %d 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100 1 1\n", pid, ppid, start)
	os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644)
	os.WriteFile(filepath.Join(dir, "cgroup"), []byte("4:memory:"+cgroup+"\n"), 0o644)
}

func (f fakeProc) remove(pid int) { os.RemoveAll(filepath.Join(f.root, strconv.Itoa(pid))) }

func TestResolverFollowsInitAndSurvivesPidReuse(t *testing.T) {
	h := &Hierarchy{Root: "/cg", Mode: Legacy, dirs: map[string]string{"memory": "/cg/memory"}}
	f := fakeProc{t, t.TempDir()}
	const hostNS, ctrNS, otherNS = 1, 2, 3
	f.add(os.Getpid(), hostNS, 1, 1, "/daemon")
	f.add(50, hostNS, 1, 900, "/shim")
	f.add(100, ctrNS, 50, 1000, "/ctrA/init.scope")
	f.add(101, ctrNS, 100, 1001, "/ctrA/nested")
	r, err := NewResolver(h, f.root)
	if err != nil {
		t.Fatal(err)
	}

	c, err := r.Resolve(101)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostNS || c.InitPid != 100 || c.InitStart != 1000 || c.Cgroup.Path("memory") != "/ctrA" {
		t.Fatalf("container caller: %+v path %q", c, c.Cgroup.Path("memory"))
	}

	c, err = r.Resolve(50)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HostNS || c.Cgroup.Path("memory") != "/shim" {
		t.Fatalf("host caller: %+v", c)
	}

	// The container ends; its namespace inode and the init's pid are
	// reused: pid 100 is now a host process, and a new container with
	// init 200 got the same namespace inode. The cached mapping must not
	// be served.
	f.remove(101)
	f.add(100, hostNS, 1, 5000, "/unrelated")
	f.add(200, ctrNS, 50, 6000, "/ctrC")
	f.add(201, ctrNS, 200, 6001, "/ctrC")
	c, err = r.Resolve(201)
	if err != nil {
		t.Fatal(err)
	}
	if c.InitPid != 200 || c.Cgroup.Path("memory") != "/ctrC" {
		t.Fatalf("after pid reuse: init %d cgroup %q, want 200 /ctrC", c.InitPid, c.Cgroup.Path("memory"))
	}

	// A different namespace that never was cached.
	f.add(300, otherNS, 50, 7000, "/ctrD")
	if c, err = r.Resolve(300); err != nil || c.InitPid != 300 || c.Cgroup.Path("memory") != "/ctrD" {
		t.Fatalf("init as caller: %+v %v", c, err)
	}

	if _, err := r.Resolve(999); !errors.Is(err, ErrCallerGone) {
		t.Errorf("vanished caller: %v, want ErrCallerGone", err)
	}
	// A zombie init has an empty cgroup file: an error, not a guess.
	os.WriteFile(filepath.Join(f.root, "200", "cgroup"), nil, 0o644)
	if _, err := r.Resolve(201); !errors.Is(err, ErrCallerGone) {
		t.Errorf("exited init: %v, want ErrCallerGone", err)
	}

	r.Forget()
	f.remove(300)
	r.Forget()
	r.mu.Lock()
	_, kept := r.inits[otherNS]
	r.mu.Unlock()
	if kept {
		t.Error("Forget kept a namespace whose init is gone")
	}
}
