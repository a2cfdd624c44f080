// The CPU view that proc/cpuinfo, proc/stat, the CPU lists and proc/uptime
// share: which CPUs a container sees and how much CPU time it had.

package provider

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// userHZ is the kernel's USER_HZ, the unit of /proc/stat and of process
// start times: 100 on every architecture Linux runs on today.
const userHZ = 100

const tick = 1e9 / userHZ // nanoseconds per USER_HZ tick

// hostCPU tells whether the caller sees the host's CPU files: it sits in
// the root cgroup of every CPU controller, as the host itself does.
func hostCPU(c *caller.Caller) bool {
	g := c.Cgroup
	return g.IsRoot(cgroupview.CPUSetResource) && g.IsRoot(cgroupview.CPUQuotaResource) && g.IsRoot(cgroupview.CPUTimeResource)
}

// visibleCPUs are the host CPUs the caller's files show, sorted; the file
// shows them as CPUs 0, 1, ... The host's online CPUs, narrowed to the
// effective cpuset (walking up while empty), then, with CPUsFromQuota, to
// the lowest-numbered CPUs of that set as many as the quota rounded up.
func (p *Provider) visibleCPUs(c *caller.Caller) ([]int, error) {
	online, err := p.onlineCPUs.get(p.readOnlineCPUs)
	if err != nil {
		return nil, fmt.Errorf("host online CPUs: %w", err)
	}
	// The kept list is shared: clipped, an append to the result copies.
	cpus := slices.Clip(online)
	set, err := p.cfg.Cgroups.CPUSet(c.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("cpuset of %s: %w", c.Cgroup.Path(cgroupview.CPUSetResource), err)
	}
	if set != nil {
		// A cpuset naming only offline CPUs leaves its tasks on the
		// parent's CPUs; show the online ones then.
		if in := cgroupview.Intersect(online, set); len(in) > 0 {
			cpus = in
		}
	}
	if p.cfg.CPUsFromQuota {
		n, err := p.cfg.Cgroups.CPUQuota(c.Cgroup)
		if err != nil {
			return nil, fmt.Errorf("cpu quota of %s: %w", c.Cgroup.Path(cgroupview.CPUQuotaResource), err)
		}
		if n > 0 && n < len(cpus) {
			cpus = cpus[:n]
		}
	}
	return cpus, nil
}

// readOnlineCPUs reads and parses the host's online CPU list.
func (p *Provider) readOnlineCPUs() ([]int, error) {
	data, err := p.sysRecord("devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return cgroupview.ParseCPUList(data)
}

// CPUTimes is a container's CPU time as its /proc/stat shows it: the totals
// of the `cpu` line in nanoseconds (the file shows them in 10 ms ticks),
// over VisibleCPUs CPUs. Host is true for a caller that sees the host's
// files (the root cgroup); the other fields are then zero.
//
// Over time User+System+Steal+Idle grows by VisibleCPUs × wall time, so
// /proc/uptime's idle field (the sum of every CPU's idle time) is Idle, and
// its uptime field can be anything at least (User+System+Steal+Idle) /
// VisibleCPUs.
type CPUTimes struct {
	Host                      bool
	VisibleCPUs               int
	User, System, Steal, Idle uint64
}

// ContainerCPUTimes returns the CPU time of the caller's container as its
// /proc/stat shows it, advancing the same per-container counters; for
// /proc/uptime and anything else that must agree with /proc/stat.
func (p *Provider) ContainerCPUTimes(c *caller.Caller) (CPUTimes, error) {
	if hostCPU(c) {
		return CPUTimes{Host: true}, nil
	}
	cpus, err := p.visibleCPUs(c)
	if err != nil {
		return CPUTimes{}, err
	}
	r, err := p.cpuReading(c, cpus)
	if err != nil {
		return CPUTimes{}, err
	}
	total := r.total
	return CPUTimes{VisibleCPUs: len(cpus), User: total.User, System: total.System, Steal: total.Steal, Idle: total.Idle}, nil
}

// cpuReading is a container's /proc/stat figures: one line per visible CPU,
// their total, and what its threads were doing.
type cpuReading struct {
	lines []cpuTimes
	total cpuTimes
	tasks taskScan
}

// cpuReading reads the caller's CPU usage and its threads and folds them
// into its accumulator.
func (p *Provider) cpuReading(c *caller.Caller, cpus []int) (cpuReading, error) {
	u, err := p.cfg.Cgroups.CPUUsage(c.Cgroup)
	if err != nil {
		return cpuReading{}, fmt.Errorf("cpu usage of %s: %w", c.Cgroup.Path(cgroupview.CPUTimeResource), err)
	}
	now, err := bootNanos()
	if err != nil {
		return cpuReading{}, err
	}
	// The container started when its pid namespace's init did; a caller
	// in the host's pid namespace is no container's init, so its cgroup
	// starts when the daemon first sees it.
	start := now
	if !c.HostNS {
		start = min(now, int64(c.InitStart)*tick)
	}
	key := c.Cgroup.Key(cgroupview.CPUTimeResource) + "\x00" + c.Cgroup.Key(cgroupview.CPUQuotaResource) + "\x00" + c.Cgroup.Key(cgroupview.CPUSetResource)
	dir, err := c.Cgroup.Dir(cgroupview.CPUTimeResource)
	if err != nil {
		return cpuReading{}, err
	}
	a, _ := p.cpu.get(key, dir)
	a.mu.Lock()
	defer a.mu.Unlock()
	r := cpuReading{tasks: p.latestTasks(a, c, now)}
	r.lines, r.total = a.update(now, start, cpus, u)
	return r, nil
}

func bootNanos() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	return ts.Nano(), nil
}

func toTicks(t cpuTimes) procfiles.CPUStat {
	return procfiles.CPUStat{User: t.User / tick, System: t.System / tick, Steal: t.Steal / tick, Idle: t.Idle / tick}
}
