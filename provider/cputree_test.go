package provider

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

func dirOf(t *testing.T, p *Provider, path string) fs.DirSource {
	t.Helper()
	for _, f := range p.Files() {
		if f.Path == path && f.Dir != nil {
			return f.Dir
		}
	}
	t.Fatalf("%s is not a served directory", path)
	return nil
}

func names(t *testing.T, src fs.DirSource, rel string) []string {
	t.Helper()
	entries, err := src.List(context.Background(), uint32(os.Getpid()), rel)
	if err != nil {
		t.Fatalf("listing %q: %v", rel, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	slices.Sort(out)
	return out
}

// The container of the fixtures sees host CPUs 1 and 2 as its CPUs 0 and 1:
// its cpuN directories are those, renumbered, and so are the files that
// name CPUs; the rest is the host's.
func TestCPUTreeRenumbers(t *testing.T) {
	for _, mode := range []struct {
		name string
		root func(*testing.T) string
	}{{"v1", v1Tree}, {"v2", v2Tree}} {
		t.Run(mode.name, func(t *testing.T) {
			p := newFixtureProvider(t, mode.root(t), true)
			ctx, pid := context.Background(), uint32(os.Getpid())
			cpu, node := dirOf(t, p, "sys/devices/system/cpu"), dirOf(t, p, "sys/devices/system/node")
			if got, want := names(t, cpu, ""), []string{"cpu0", "cpu1", "cpufreq", "isolated", "kernel_max", "offline", "online", "possible", "present"}; !slices.Equal(got, want) {
				t.Errorf("cpu lists %q, want %q", got, want)
			}
			for rel, want := range map[string]string{
				"online": "0-1\n", "present": "0-1\n", "possible": "0-1\n", "offline": "\n", "isolated": "\n",
				"kernel_max": "8191\n",
				// Host CPU 1: siblings 1,3 of which the container has 1.
				"cpu0/topology/thread_siblings_list": "0\n",
				"cpu0/topology/thread_siblings":      "01\n",
				"cpu0/topology/core_id":              "1\n",
				// Host CPU 2: siblings 0,2 → its own CPU 1.
				"cpu1/topology/thread_siblings_list": "1\n",
				"cpu1/topology/thread_siblings":      "02\n",
				"cpu1/topology/core_id":              "0\n",
				"cpu1/cache/index0/shared_cpu_map":   "03\n",
				"cpu1/cache/index0/size":             "32K\n",
				"cpufreq/policy1/related_cpus":       "0\n",
			} {
				if got := read(t, p, "sys/devices/system/cpu/"+rel); got != want {
					t.Errorf("cpu/%s = %q, want %q", rel, got, want)
				}
			}
			if got := read(t, p, "sys/devices/system/cpu/cpu0/cpufreq/related_cpus"); got != "0\n" {
				t.Errorf("cpu0/cpufreq (host cpu1's link) related_cpus = %q", got)
			}
			for _, rel := range []string{"cpu2", "cpu2/topology/core_id", "cpu3"} {
				if _, err := cpu.Stat(ctx, pid, rel); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("cpu/%s: %v, want not found", rel, err)
				}
			}
			if mode, err := cpu.Stat(ctx, pid, "cpu1/node0"); err != nil || mode&0o170000 != 0o120000 {
				t.Errorf("cpu1/node0: mode %o, %v; want a link", mode, err)
			}
			if got, want := names(t, node, "node0"), []string{"cpu0", "cpu1", "cpulist", "cpumap"}; !slices.Equal(got, want) {
				t.Errorf("node0 lists %q, want %q", got, want)
			}
			for rel, want := range map[string]string{"node0/cpulist": "0-1\n", "node0/cpumap": "03\n", "online": "0\n"} {
				if got := read(t, p, "sys/devices/system/node/"+rel); got != want {
					t.Errorf("node/%s = %q, want %q", rel, got, want)
				}
			}
			if l, err := node.Readlink(ctx, pid, "node0/cpu1"); err != nil || l != "../../cpu/cpu1" {
				t.Errorf("node0/cpu1 → %q, %v", l, err)
			}
			if _, err := node.Stat(ctx, pid, "node0/cpu2"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("node0/cpu2: %v, want not found", err)
			}
		})
	}
}

// A caller in the root cgroups sees the host's directories unchanged.
func TestCPUTreeHostCaller(t *testing.T) {
	p := newFixtureProvider(t, v2Tree(t), true)
	p.cfg.Resolver = fixedResolver{&caller.Caller{Pid: os.Getpid(), HostNS: true, InitPid: os.Getpid(),
		Cgroup: cgroupview.NewCgroup(p.cfg.Cgroups.Hierarchy(), "/")}}
	if got, want := names(t, dirOf(t, p, "sys/devices/system/cpu"), ""), []string{"cpu0", "cpu1", "cpu2", "cpu3", "cpufreq", "isolated", "kernel_max", "offline", "online", "possible", "present"}; !slices.Equal(got, want) {
		t.Errorf("cpu lists %q, want %q", got, want)
	}
	for rel, want := range map[string]string{"cpu/offline": "4-7\n", "cpu/cpu3/topology/thread_siblings_list": "1,3\n", "node/node0/cpumap": "0f\n"} {
		if got := read(t, p, "sys/devices/system/"+rel); got != want {
			t.Errorf("%s = %q, want the host's %q", rel, got, want)
		}
	}
}

// The kernel keeps a name only where it is the same for every caller:
// never cpuN past cpu0 (a container may lack it) nor a node's cpuN (which
// node a container's cpu0 is on depends on it), always the top cpu0, which
// every caller has, and what lies below.
func TestCPUTreeEntryTimeouts(t *testing.T) {
	p := newFixtureProvider(t, v2Tree(t), true)
	cpu, node := dirOf(t, p, "sys/devices/system/cpu"), dirOf(t, p, "sys/devices/system/node")
	for _, c := range []struct {
		src  fs.DirSource
		rel  string
		kept bool
	}{
		{cpu, "cpu0", true}, {cpu, "cpu0/topology", true}, {cpu, "cpu0/topology/thread_siblings_list", true},
		{cpu, "cpu1", false}, {cpu, "cpu12", false}, {cpu, "cpu1/topology", true}, {cpu, "online", true},
		{node, "node0", true}, {node, "node0/cpu0", false}, {node, "node0/cpu1", false}, {node, "node0/cpulist", true},
	} {
		if got := c.src.EntryTimeout(c.rel) > 0; got != c.kept {
			t.Errorf("%q kept by the kernel: %v, want %v", c.rel, got, c.kept)
		}
	}
}

// sys/block follows the host's disks as they come and go.
func TestBlockTreeFollowsHost(t *testing.T) {
	p := newFixtureProvider(t, v2Tree(t), true)
	blk := dirOf(t, p, "sys/block")
	if got := names(t, blk, ""); !slices.Equal(got, []string{"sda"}) {
		t.Errorf("block lists %q", got)
	}
	tr := tree{t, p.cfg.SysRoot}
	tr.write("block/loop9/dev", "7:9\n")
	if got := names(t, blk, ""); !slices.Equal(got, []string{"loop9", "sda"}) {
		t.Errorf("after adding loop9, block lists %q", got)
	}
	// No I/O of the container's on loop9: zeros.
	if got := read(t, p, "sys/block/loop9/stat"); got != "       0        0        0        0        0        0        0        0        0        0        0        0        0        0        0        0        0\n" {
		t.Errorf("loop9/stat = %q", got)
	}
	if err := os.RemoveAll(p.cfg.SysRoot + "/block/loop9"); err != nil {
		t.Fatal(err)
	}
	if _, err := blk.Stat(context.Background(), uint32(os.Getpid()), "loop9/stat"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("loop9/stat after its removal: %v", err)
	}
	if _, err := blk.Stat(context.Background(), uint32(os.Getpid()), "sda/size"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sda/size: %v, want not found (only stat is served)", err)
	}
}

func TestCPUTreeHostRel(t *testing.T) {
	m := procfiles.NewCPUMap([]int{2, 3})
	for _, c := range []struct {
		node      bool
		rel, want string
		missing   bool
	}{
		{rel: "cpu1/topology/thread_siblings_list", want: "cpu3/topology/thread_siblings_list"},
		{rel: "cpu0", want: "cpu2"},
		{rel: "cpu2/online", missing: true},
		{rel: "online", want: "online"},
		{rel: "cpufreq/policy0", want: "cpufreq/policy0"},
		{rel: "cpu01/online", want: "cpu01/online"},
		{node: true, rel: "node0/cpu1", want: "node0/cpu3"},
		{node: true, rel: "node0/cpu1/topology", want: "node0/cpu3/topology"},
		{node: true, rel: "node0", want: "node0"},
		{node: true, rel: "node0/cpulist", want: "node0/cpulist"},
		{node: true, rel: "node0/cpu7", missing: true},
	} {
		got, err := cpuTree{node: c.node}.hostRel(&m, c.rel)
		if c.missing {
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("node=%v %q: %q, %v; want ErrNotExist", c.node, c.rel, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("node=%v %q: %q, %v; want %q", c.node, c.rel, got, err, c.want)
		}
	}
	// A host caller's view (no map) is the host's path.
	if got, err := (cpuTree{}).hostRel(nil, "cpu1/online"); err != nil || got != "cpu1/online" {
		t.Errorf("no map: %q, %v", got, err)
	}
}
