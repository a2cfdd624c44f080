package provider

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/loadavg"
)

// loadResource is the cgroup whose threads make a container's load: the
// one the CPU view reads the container's CPU time from (v1 cpuacct), so load
// and CPU time come from one set of tasks; runtimes put a container in the
// same path in every hierarchy.
const loadResource = cgroupview.CPUTimeResource

// LoadConfig configures per-container /proc/loadavg.
type LoadConfig struct {
	// Enabled tracks containers' load; off, /proc/loadavg is the host's.
	Enabled bool
	// IdleTimeout stops tracking a cgroup not read for this long (0:
	// never).
	IdleTimeout time.Duration
	// Counter is how threads are counted: "bpf" (exact and cheap, needs
	// kernel BTF and CAP_BPF), "threads" (exact, costlier), "cgroupstats"
	// (cgroup v1 only, inexact) or "auto"/"" (bpf where it loads, else
	// threads). See the README for the measured trade-off.
	Counter string
}

// tryCounter makes a counter and probes it on the hierarchy's root; nil,
// logged, when either fails, so the caller falls back to counting threads.
func (p *Provider) tryCounter(what string, open func() (loadavg.Counter, error)) loadavg.Counter {
	c, err := open()
	if err == nil {
		if err = probeCounter(c, p.cfg.Cgroups.Hierarchy()); err != nil {
			c.Close()
		}
	}
	if err != nil {
		p.log.Info("loadavg: "+what+" does not work here; counting threads", "reason", err)
		return nil
	}
	return c
}

// newLoadTracker builds the tracker the configuration asks for, or nil.
func (p *Provider) newLoadTracker() *loadavg.Tracker {
	lc := p.cfg.Load
	if !lc.Enabled {
		return nil
	}
	var counter loadavg.Counter
	switch lc.Counter {
	case "", "auto", "bpf":
		// Loading is the only honest test: BTF, the kernel version,
		// CAP_BPF and lockdown all decide, and NewBPFCounter checks
		// its first run.
		counter = p.tryCounter("the BPF counter", func() (loadavg.Counter, error) {
			return loadavg.NewBPFCounter(p.cfg.FS, p.cfg.Cgroups.ThreadsFile())
		})
	case "cgroupstats":
		// Ask the kernel rather than assume: cgroupstats_build accepts
		// only cgroup v1 directories (EINVAL on v2), and kernels
		// without CONFIG_TASKSTATS have no such netlink family.
		counter = p.tryCounter("cgroupstats", func() (loadavg.Counter, error) {
			return loadavg.NewCgroupstatsCounter()
		})
	}
	if counter == nil {
		counter = loadavg.NewThreadsCounter(p.cfg.FS, p.cfg.Cgroups.ThreadsFile())
	}
	// Where procs_running and procs_blocked come from: the thread scan
	// without BPF, else a BPF walk of each container's cgroup or of the
	// whole host.
	live := "threads"
	if b, ok := counter.(*loadavg.BPFCounter); ok {
		p.live = &liveTasks{states: b}
		p.live.cgroups, live = p.newCgroupTasks()
	}
	p.log.Info("loadavg tracking on", "counter", counter.Name(), "idle-timeout", lc.IdleTimeout, "procs-running", live)
	return loadavg.NewTracker(counter, lc.IdleTimeout, p.log)
}

// probeCounter counts the hierarchy's root cgroup once.
func probeCounter(c loadavg.Counter, h *cgroupview.Hierarchy) error {
	dir, ok := h.RootDir(loadResource)
	if !ok {
		return errors.New("no hierarchy for the CPU time controller")
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = c.Count(fd, dir)
	// The probe is no sampling round: without this, a counter that
	// reads every thread's state once per round (bpf) would serve the
	// first real round the states of the daemon's start, and a thread
	// that began running since would be missed for 5 s.
	c.EndRound()
	return err
}

// newCgroupTasks loads the BPF cgroup iterator behind a container's
// procs_running and procs_blocked (Linux 6.7 and later), checked on the
// daemon's own cgroup; nil where it cannot, and the host-wide walk serves.
// It also says which walk serves ("cgroup" or "host"), for the log.
func (p *Provider) newCgroupTasks() (*loadavg.CgroupTasks, string) {
	self, err := p.selfCgroupDir()
	if err == nil {
		var w *loadavg.CgroupTasks
		if w, err = loadavg.NewCgroupTasks(self); err == nil {
			return w, "cgroup"
		}
	}
	p.log.Info("procs_running and procs_blocked from a walk of every task on the host: the BPF cgroup iterator does not work here (Linux 6.7 and later)", "err", err)
	return nil, "host"
}

// selfCgroupDir is the directory of the daemon's own cgroup in the
// hierarchy of loadResource, as the resolver places a caller.
func (p *Provider) selfCgroupDir() (string, error) {
	c, err := p.cfg.Resolver.Resolve(os.Getpid())
	if err != nil {
		return "", err
	}
	return c.Cgroup.Dir(loadResource)
}
