package caller

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// fakeProc builds a /proc-like tree: ns/pid links, stat and cgroup files.
type fakeProc struct {
	t    *testing.T
	root string
}

func (f fakeProc) add(pid int, ns uint64, ppid int, start uint64, cgroup string) {
	f.addState(pid, ns, ppid, start, cgroup, 'S', 0)
}

// addState adds a process in a state, with PF_* flags.
func (f fakeProc) addState(pid int, ns uint64, ppid int, start uint64, cgroup string, state byte, flags uint64) {
	dir := filepath.Join(f.root, strconv.Itoa(pid))
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(fmt.Sprintf("pid:[%d]", ns), filepath.Join(dir, "ns", "pid")); err != nil {
		f.t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (sh) %c %d 1 1 0 -1 %d 0 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100 1 1\n", pid, state, ppid, flags, start)
	os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644)
	os.WriteFile(filepath.Join(dir, "cgroup"), []byte("4:memory:"+cgroup+"\n"), 0o644)
}

func (f fakeProc) remove(pid int) { os.RemoveAll(filepath.Join(f.root, strconv.Itoa(pid))) }

func TestResolverFollowsInitAndSurvivesPidReuse(t *testing.T) {
	f := fakeProc{t, t.TempDir()}
	const hostNS, ctrNS, otherNS = 1, 2, 3
	f.add(os.Getpid(), hostNS, 1, 1, "/daemon")
	f.add(50, hostNS, 1, 900, "/shim")
	f.add(100, ctrNS, 50, 1000, "/ctrA/init.scope")
	f.add(101, ctrNS, 100, 1001, "/ctrA/nested")
	r := newTestResolver(t, f)
	c, err := r.Resolve(101)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostNS || c.InitPid != 100 || c.InitStart != 1000 || c.Cgroup.Path(cgroupview.MemoryResource) != "/ctrA" {
		t.Fatalf("container caller: %+v path %q", c, c.Cgroup.Path(cgroupview.MemoryResource))
	}

	c, err = r.Resolve(50)
	if err != nil {
		t.Fatal(err)
	}
	if !c.HostNS || c.Cgroup.Path(cgroupview.MemoryResource) != "/shim" {
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
	if c.InitPid != 200 || c.Cgroup.Path(cgroupview.MemoryResource) != "/ctrC" {
		t.Fatalf("after pid reuse: init %d cgroup %q, want 200 /ctrC", c.InitPid, c.Cgroup.Path(cgroupview.MemoryResource))
	}

	// A different namespace that never was cached.
	f.add(300, otherNS, 50, 7000, "/ctrD")
	if c, err = r.Resolve(300); err != nil || c.InitPid != 300 || c.Cgroup.Path(cgroupview.MemoryResource) != "/ctrD" {
		t.Fatalf("init as caller: %+v %v", c, err)
	}

	if _, err := r.Resolve(999); !errors.Is(err, ErrGone) {
		t.Errorf("vanished caller: %v, want ErrGone", err)
	}
	// An exiting init's cgroup file reads the root (v1) or nothing (a
	// zombie): the container keeps the cgroup last seen, never the host's.
	f.addState(200, ctrNS, 50, 6000, "/", 'S', 0x4)
	if c, err = r.Resolve(201); err != nil || c.Cgroup.Path(cgroupview.MemoryResource) != "/ctrC" {
		t.Fatalf("exiting init: %+v, %v; want /ctrC", c, err)
	}
	f.addState(200, ctrNS, 50, 6000, "/", 'Z', 0x4)
	os.WriteFile(filepath.Join(f.root, "200", "cgroup"), nil, 0o644)
	if c, err = r.Resolve(201); err != nil || c.Cgroup.Path(cgroupview.MemoryResource) != "/ctrC" {
		t.Fatalf("zombie init: %+v, %v; want /ctrC", c, err)
	}
	// A container first seen while its init exits: an error, not a guess.
	const lateNS = 4
	f.addState(400, lateNS, 50, 8000, "/", 'Z', 0x4)
	f.add(401, lateNS, 400, 8001, "/ctrE")
	if c, err := r.Resolve(401); !errors.Is(err, ErrGone) {
		t.Errorf("init exiting when first seen: %+v, %v; want ErrGone", c, err)
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

// newTestResolver resolves callers in the fake /proc f, on a v1 hierarchy
// with a memory controller.
func newTestResolver(t *testing.T, f fakeProc) *Resolver {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "memory"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, err := cgroupview.Detect(root)
	if err != nil {
		t.Fatal(err)
	}
	fs := kernelfs.New(f.root, kernelfs.Options{})
	t.Cleanup(func() { fs.Close() })
	r, err := NewResolver(cgroupview.NewReader(h, fs), fs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
