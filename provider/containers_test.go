package provider

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
)

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu        sync.Mutex
	resolve   int
	fallbacks map[[2]string]int
	rounds    int
}

func (r *recorder) ResolveFailed() { r.mu.Lock(); r.resolve++; r.mu.Unlock() }
func (r *recorder) HostFallback(file, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fallbacks == nil {
		r.fallbacks = map[[2]string]int{}
	}
	r.fallbacks[[2]string{file, reason}]++
}
func (r *recorder) LoadRound(time.Duration) { r.mu.Lock(); r.rounds++; r.mu.Unlock() }

func TestContainersAreThoseRead(t *testing.T) {
	for _, mode := range []struct {
		name string
		root func(*testing.T) string
		dirs []string
	}{{"v1", v1Tree, []string{"memory", "cpuacct", "cpu", "cpuset", "blkio"}}, {"v2", v2Tree, []string{""}}} {
		t.Run(mode.name, func(t *testing.T) {
			root := mode.root(t)
			p := newFixtureProvider(t, root, true)
			if got := p.Containers(false); len(got) != 0 {
				t.Fatalf("containers before any read: %+v", got)
			}
			read(t, p, "proc/meminfo")
			got := p.Containers(false)
			if len(got) != 1 {
				t.Fatalf("containers after a read: %+v", got)
			}
			c := got[0]
			if c.Cgroup != "/ctr" || c.CPUs != 2 || c.Memory == nil || c.Memory.Total != 256<<20 || c.StealSeconds == nil {
				t.Errorf("container figures %+v (memory %+v)", c, c.Memory)
			}
			// The same figures as the file shows.
			if c.Memory.Available != 159744*1024+(52428800-4194304) {
				t.Errorf("MemAvailable %d", c.Memory.Available)
			}
			if p.TrackedContainers() != 1 {
				t.Errorf("tracked %d", p.TrackedContainers())
			}
			// Every cgroup, with all: /ctr only in these trees.
			if all := p.Containers(true); len(all) != 1 || all[0].Cgroup != "/ctr" {
				t.Errorf("all cgroups: %+v", all)
			}

			for _, d := range mode.dirs {
				if err := os.RemoveAll(filepath.Join(root, d, "ctr")); err != nil {
					t.Fatal(err)
				}
			}
			if got := p.Containers(false); len(got) != 0 {
				t.Errorf("a removed cgroup is still listed: %+v", got)
			}
			if p.TrackedContainers() != 0 {
				t.Errorf("a removed cgroup is still tracked")
			}
		})
	}
}

func TestContainersIdleOnesGo(t *testing.T) {
	p := newFixtureProvider(t, v2Tree(t), true)
	p.cfg.ContainerIdle = time.Millisecond
	read(t, p, "proc/cpuinfo")
	time.Sleep(10 * time.Millisecond)
	if got := p.Containers(false); len(got) != 0 {
		t.Errorf("an idle container is still listed: %+v", got)
	}
}

func TestRootCgroupIsNoContainer(t *testing.T) {
	p := newFixtureProvider(t, v2Tree(t), true)
	p.cfg.Resolver = fixedResolver{&caller.Caller{Pid: os.Getpid(), HostNS: true, InitPid: os.Getpid(),
		Cgroup: cgroupview.NewCgroup(p.cfg.Cgroups.Hierarchy(), "/")}}
	read(t, p, "proc/meminfo")
	if got := p.Containers(false); len(got) != 0 {
		t.Errorf("the root cgroup is listed: %+v", got)
	}
}

// A v2 cgroup without the memory controller gets the host's meminfo and
// swaps, and each such request is a fallback; the root cgroup is none.
func TestHostFallbackObserved(t *testing.T) {
	root := tree{t, t.TempDir()}
	root.write("cgroup.controllers", "cpu\n")
	root.write("ctr/cgroup.threads", "")
	rec := &recorder{}
	p := newFixtureProvider(t, root.root, true)
	p.obs = rec
	hostMem, _ := os.ReadFile(filepath.Join(p.cfg.ProcRoot, "meminfo"))
	if got := read(t, p, "proc/meminfo"); got != string(hostMem) {
		t.Errorf("a cgroup without memory controller should see the host's meminfo")
	}
	read(t, p, "proc/swaps")
	read(t, p, "proc/meminfo")
	if rec.fallbacks[[2]string{"proc/meminfo", FallbackNoMemoryController}] != 2 || rec.fallbacks[[2]string{"proc/swaps", FallbackNoMemoryController}] != 1 {
		t.Errorf("fallbacks %v", rec.fallbacks)
	}
	p.cfg.Resolver = fixedResolver{&caller.Caller{Pid: os.Getpid(), HostNS: true, InitPid: os.Getpid(),
		Cgroup: cgroupview.NewCgroup(p.cfg.Cgroups.Hierarchy(), "/")}}
	read(t, p, "proc/meminfo")
	if n := len(rec.fallbacks); n != 2 || rec.fallbacks[[2]string{"proc/meminfo", FallbackNoMemoryController}] != 2 {
		t.Errorf("the root cgroup counted as a fallback: %v", rec.fallbacks)
	}
}

type failingResolver struct{}

func (failingResolver) Resolve(int) (*caller.Caller, error) { return nil, caller.ErrGone }
func (failingResolver) Forget()                             {}

func TestResolveFailedObserved(t *testing.T) {
	rec := &recorder{}
	p := newFixtureProvider(t, v2Tree(t), true)
	p.obs = rec
	p.cfg.Resolver = failingResolver{}
	for _, f := range p.Files() {
		var err error
		if f.Dir != nil {
			_, err = f.Dir.List(context.Background(), 1, "")
		} else {
			_, err = f.Content(context.Background(), 1)
		}
		if f.Path == "sys/block" {
			// The host's disks, the same for everyone: no caller.
			rec.resolve++
			continue
		}
		if !errors.Is(err, caller.ErrGone) {
			t.Errorf("%s: %v, want ErrGone", f.Path, err)
		}
	}
	if rec.resolve != len(p.Files()) {
		t.Errorf("%d resolve failures observed, want %d", rec.resolve, len(p.Files()))
	}
}
