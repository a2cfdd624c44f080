package provider

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/loadavg"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// loadController is the v1 hierarchy whose cgroup is the container for
// /proc/loadavg: cpuacct, because it is the hierarchy the CPU view reads the
// container's CPU time from, so load and CPU time come from one set of
// tasks; runtimes put a container in the same path in every hierarchy. On
// v2 the controller name is ignored.
const loadController = "cpuacct"

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
		if err = probeCounter(c, p.cfg.Hierarchy); err != nil {
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
			return loadavg.NewBPFCounter(tidsFile(p.cfg.Hierarchy))
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
		counter = loadavg.NewThreadsCounter("/proc", tidsFile(p.cfg.Hierarchy), threadFDBudget())
	}
	p.log.Info("loadavg tracking on", "counter", counter.Name(), "idle-timeout", lc.IdleTimeout)
	return loadavg.NewTracker(counter, lc.IdleTimeout, p.log)
}

// probeCounter counts the hierarchy's root cgroup once.
func probeCounter(c loadavg.Counter, h *cgroupview.Hierarchy) error {
	dir, ok := h.ControllerDir(loadController)
	if !ok {
		return fmt.Errorf("no %s hierarchy", loadController)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = c.Count(fd, dir)
	return err
}

func tidsFile(h *cgroupview.Hierarchy) string {
	if h.Mode == cgroupview.Unified {
		return "cgroup.threads"
	}
	return "tasks"
}

// threadFDBudget is how many /proc/<tid>/stat descriptors the counter may
// keep open: the descriptor limit (Go raises the soft limit to the hard one
// at start) less a reserve of 4096 for FUSE and the read path, which open a
// few files per request. Threads beyond it are opened per sample.
func threadFDBudget() int {
	const reserve = 4096
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < 2*reserve {
		return 0
	}
	return int(min(rl.Cur-reserve, 1<<20))
}

// loadavgFile serves /proc/loadavg.
func (p *Provider) loadavgFile(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(pid)
	if err != nil {
		return nil, err
	}
	if p.load == nil || c.Cgroup.IsRoot(loadController) {
		return p.hostFile("loadavg")
	}
	dir, err := c.Cgroup.Dir(loadController)
	if err != nil {
		return nil, err
	}
	snap := p.load.Touch(dir)
	l := procfiles.Loadavg{Avg: loadAverages(snap.Avg)}
	total, newest := p.threadsNow(snap.Dirs)
	l.Total = total
	l.Running = min(snap.Counts.Running, total)
	if c.HostNS {
		host, err := p.hostFile("loadavg")
		if err != nil {
			return nil, err
		}
		if l.LastPid, err = procfiles.ParseLoadavgLastPid(host); err != nil {
			return nil, err
		}
	} else {
		l.LastPid = p.newestNSPid(c, newest)
	}
	return procfiles.RenderLoadavg(l), nil
}

// threadsNow lists the threads of dirs now, for the fourth field's total
// and the fifth field: it returns the count and the highest host tids, the
// newest ones unless host pids wrapped around.
func (p *Provider) threadsNow(dirs []string) (uint64, []int) {
	name := tidsFile(p.cfg.Hierarchy)
	var total uint64
	var top [3]int // highest first
	var tids []int
	for _, d := range dirs {
		data, err := os.ReadFile(d + "/" + name)
		if err != nil {
			continue // removed since the last sample
		}
		tids, err = loadavg.ParseTids(data, tids[:0])
		if err != nil {
			p.log.Warn("reading threads", "cgroup", d, "err", err)
			continue
		}
		total += uint64(len(tids))
		for _, t := range tids {
			for i := range top {
				if t > top[i] {
					copy(top[i+1:], top[i:len(top)-1])
					top[i] = t
					break
				}
			}
		}
	}
	var out []int
	for _, t := range top {
		if t > 0 {
			out = append(out, t)
		}
	}
	return total, out
}

// newestNSPid numbers the newest thread as the caller's pid namespace does,
// from the NSpid line of /proc/<tid>/status. A thread outside the caller's
// namespace (its NSpid is too short) is skipped; 0 when none is left.
func (p *Provider) newestNSPid(c *cgroupview.Caller, tids []int) int {
	level, ok := p.nsLevel(c)
	if !ok {
		return 0
	}
	for _, t := range tids {
		ns, err := readNSpid(t)
		if err == nil && len(ns) >= level {
			return ns[level-1]
		}
	}
	return 0
}

// nsLevel is how deep the caller's pid namespace is: the length of its
// init's NSpid, cached per namespace (a namespace's depth never changes; the
// key holds the init and its start time too, since a namespace inode number
// may be reused by a later namespace).
func (p *Provider) nsLevel(c *cgroupview.Caller) (int, bool) {
	key := nsKey{c.PidNS, c.InitPid, c.InitStart}
	p.nsLevels.mu.Lock()
	l, ok := p.nsLevels.m[key]
	p.nsLevels.mu.Unlock()
	if ok {
		return l, true
	}
	ns, err := readNSpid(c.InitPid)
	if err != nil || len(ns) == 0 {
		return 0, false
	}
	p.nsLevels.mu.Lock()
	if p.nsLevels.m == nil || len(p.nsLevels.m) > 4096 {
		p.nsLevels.m = map[nsKey]int{}
	}
	p.nsLevels.m[key] = len(ns)
	p.nsLevels.mu.Unlock()
	return len(ns), true
}

// nsLevelCache maps pid namespaces to their depth.
type nsLevelCache struct {
	mu sync.Mutex
	m  map[nsKey]int
}

type nsKey struct {
	ns    uint64
	init  int
	start uint64
}

func readNSpid(pid int) ([]int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	return ParseNSpid(data)
}

// ParseNSpid takes the NSpid line out of /proc/<pid>/status: the pid in
// each pid namespace from the reader's down to the innermost.
func ParseNSpid(status []byte) ([]int, error) {
	for line := range bytes.SplitSeq(status, []byte{'\n'}) {
		rest, ok := bytes.CutPrefix(line, []byte("NSpid:"))
		if !ok {
			continue
		}
		var out []int
		for _, f := range bytes.Fields(rest) {
			n, err := strconv.Atoi(string(f))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("malformed NSpid %q", line)
			}
			out = append(out, n)
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("empty NSpid line")
		}
		return out, nil
	}
	return nil, fmt.Errorf("no NSpid line in status")
}

// uptimeFile serves /proc/uptime: the time since the caller's pid
// namespace's init started, and as idle the container's idle CPU time as
// its /proc/stat shows it.
func (p *Provider) uptimeFile(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(pid)
	if err != nil {
		return nil, err
	}
	if c.HostNS {
		return p.hostFile("uptime")
	}
	now, err := bootNanos()
	if err != nil {
		return nil, err
	}
	// InitStart was checked against the live init when the caller was
	// resolved, so it is a real start time even if the init has exited
	// since; clamp anyway so a clock oddity never prints garbage.
	up := max(now-int64(c.InitStart)*tick, 0)
	t, err := p.ContainerCPUTimes(c)
	if err != nil {
		return nil, err
	}
	var idle int64
	if t.Host {
		// The caller sees the host's /proc/stat: show the host's idle
		// share over the container's uptime.
		raw, err := p.hostFile("uptime")
		if err != nil {
			return nil, err
		}
		hostUp, hostIdle, err := procfiles.ParseUptime(raw)
		if err != nil {
			return nil, fmt.Errorf("host uptime: %w", err)
		}
		if hostUp > 0 {
			idle = int64(float64(hostIdle) * float64(up) / float64(hostUp))
		}
	} else {
		idle = int64(min(t.Idle, uint64(t.VisibleCPUs)*uint64(up)))
	}
	return procfiles.RenderUptime(up, idle), nil
}
