package provider

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// sysinfoOf decodes the provider's answer for this process.
func sysinfoOf(t *testing.T, p *Provider) (procfiles.Sysinfo, uint32) {
	t.Helper()
	b, err := p.Sysinfo(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != procfiles.SysinfoSize {
		t.Fatalf("sysinfo is %d bytes, want %d", len(b), procfiles.SysinfoSize)
	}
	return procfiles.DecodeSysinfo([procfiles.SysinfoSize]byte(b))
}

// The fixture container (256 MiB limit, 100 MiB used, 4 MiB shmem, no
// threads) in a container's pid namespace: memory and procs from its
// cgroup, uptime from its init's start, as its served files show them.
func TestSysinfoContainer(t *testing.T) {
	for _, mode := range []struct {
		name string
		root func(*testing.T) string
	}{{"v1", v1Tree}, {"v2", v2Tree}} {
		t.Run(mode.name, func(t *testing.T) {
			p := newFixtureProvider(t, mode.root(t), false)
			kfs := kernelfs.New("/proc", kernelfs.Options{})
			defer kfs.Close()
			st, err := kfs.PidStat(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			c := &caller.Caller{Pid: os.Getpid(), InitPid: os.Getpid(), InitStart: st.StartTime,
				Cgroup: cgroupview.NewCgroup(p.cfg.Cgroups.Hierarchy(), "/ctr")}
			p.cfg.Resolver = fixedResolver{c}

			before, err := bootNanos()
			if err != nil {
				t.Fatal(err)
			}
			s, unit := sysinfoOf(t, p)
			after, _ := bootNanos()
			const mib = 1 << 20
			want := procfiles.Sysinfo{TotalRAM: 256 * mib, FreeRAM: 156 * mib, SharedRAM: 4 * mib}
			got := s
			got.Uptime, got.Loads = 0, procfiles.LoadAverages{}
			if got != want || unit != 1 {
				t.Errorf("sysinfo %+v unit %d, want %+v unit 1", got, unit, want)
			}
			// The process's age, rounded up to the second.
			start := int64(st.StartTime) * tick
			if lo, hi := (before-start)/1e9, (after-start+1e9-1)/1e9+1; s.Uptime < lo || s.Uptime > hi {
				t.Errorf("uptime %d s, want the process's age, %d to %d s", s.Uptime, lo, hi)
			}
			if s.Loads != (procfiles.LoadAverages{}) {
				t.Errorf("loads %v, want 0 before the first sample", s.Loads)
			}
		})
	}
}

// A host-namespace caller in a container cgroup gets the host's uptime;
// one in the root cgroups too gets nothing, so the kernel answers.
func TestSysinfoHostCaller(t *testing.T) {
	p := newFixtureProvider(t, v2Tree(t), true)
	var host unix.Sysinfo_t
	if err := unix.Sysinfo(&host); err != nil {
		t.Fatal(err)
	}
	s, _ := sysinfoOf(t, p)
	if s.TotalRAM != 256<<20 {
		t.Errorf("totalram %d, want the cgroup's limit", s.TotalRAM)
	}
	if d := s.Uptime - host.Uptime; d < 0 || d > 2 {
		t.Errorf("uptime %d s, want the host's %d s", s.Uptime, host.Uptime)
	}

	p.cfg.Resolver = fixedResolver{&caller.Caller{Pid: os.Getpid(), HostNS: true, InitPid: os.Getpid(),
		Cgroup: cgroupview.NewCgroup(p.cfg.Cgroups.Hierarchy(), "/")}}
	b, err := p.Sysinfo(os.Getpid())
	if err != nil || b != nil {
		t.Fatalf("root cgroup, host namespace: %d bytes, %v; want nil, nil (the kernel answers)", len(b), err)
	}
}
