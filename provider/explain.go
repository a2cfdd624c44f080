// Explanations for `cgprocfs show --explain`: which cgroup and host files,
// and which values, a container's file was computed from.

package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// Explain renders file ("proc/meminfo") for pid, as Files' content does,
// and says where its computed lines came from. For meminfo and swaps both
// come from one reading; for the other files the explanation is a second
// reading, just after the content's.
func (p *Provider) Explain(ctx context.Context, pid uint32, file string) (content []byte, explanation string, err error) {
	f := p.Content(file)
	if f == nil {
		return nil, "", fmt.Errorf("%s is not a served file", file)
	}
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "caller: pid %d, %s\n", c.Pid, callerKind(c))
	switch file {
	case "proc/meminfo", "proc/swaps":
		content, err = p.explainMemory(c, file, &b)
		return content, b.String(), err
	}
	if content, err = f(ctx, pid); err != nil {
		return nil, "", err
	}
	switch {
	case file == "proc/cpuinfo" || strings.HasPrefix(file, "sys/devices/system/cpu/") || strings.HasPrefix(file, "sys/devices/system/node/"):
		p.explainCPUs(c, &b)
		if !strings.HasPrefix(file, "proc/") {
			fmt.Fprintf(&b, "the container's cpuN is the N-th visible CPU's directory; lists and masks naming CPUs keep the visible ones, renumbered; other files are the host's (%s)\n", p.cfg.SysRoot)
		}
	case file == "proc/stat":
		p.explainCPUs(c, &b)
		if !hostCPU(c) {
			cpuDir, _ := c.Cgroup.Dir(cgroupview.CPUTimeResource)
			fmt.Fprintf(&b, "user, system: %s/%s\n", cpuDir, p.cfg.Cgroups.Sources().CPUTime)
			fmt.Fprintf(&b, "steal: the runqueue wait of the cgroup's threads (/proc/<tid>/schedstat), at least the throttled time of cpu.stat; idle: the rest of each CPU's wall time\n")
			fmt.Fprintf(&b, "note: counters accumulate from the first reading; this one started now, the daemon's when it first served the container\n")
			fmt.Fprintf(&b, "procs_running, procs_blocked: threads in state R and D of %s and below (%s)\n", cpuDir, p.cfg.Cgroups.ThreadsFile())
		}
	case file == "proc/loadavg":
		if p.load == nil || c.Cgroup.IsRoot(loadResource) {
			fmt.Fprintf(&b, "the host's /proc/loadavg (%s)\n", rootOrOff(p.load == nil))
			break
		}
		dir, _ := c.Cgroup.Dir(loadResource)
		fmt.Fprintf(&b, "averages: the kernel's load arithmetic over the R and D threads of %s and below, sampled every 5 s by the daemon\n", dir)
		fmt.Fprintf(&b, "note: the averages need the daemon's history; this process has none and shows them from 0 (the daemon's metrics export cgprocfs_container_load1)\n")
		fmt.Fprintf(&b, "threads: %s of %s and below; last pid: the newest thread as the caller's pid namespace numbers it\n", p.cfg.Cgroups.ThreadsFile(), dir)
	case file == "proc/uptime":
		if c.HostNS {
			fmt.Fprintf(&b, "the host's /proc/uptime (the caller shares the host's pid namespace)\n")
			break
		}
		fmt.Fprintf(&b, "uptime: since the start of pid %d, init of the caller's pid namespace (start %d ticks after boot)\n", c.InitPid, c.InitStart)
		fmt.Fprintf(&b, "idle: the idle time of the container's /proc/stat\n")
	case file == "proc/diskstats" || strings.HasPrefix(file, "sys/block/"):
		if c.Cgroup.IsRoot(cgroupview.IOResource) {
			fmt.Fprintf(&b, "the host's file (the caller sits in the root I/O cgroup)\n")
			break
		}
		dir, err := c.Cgroup.Dir(cgroupview.IOResource)
		if err != nil {
			fmt.Fprintf(&b, "no I/O cgroup (%v): no lines\n", err)
			break
		}
		fmt.Fprintf(&b, "per device: %s/%s, the disk names and layout from the host's /proc/diskstats\n", dir, p.cfg.Cgroups.Sources().IO)
	}
	return content, b.String(), nil
}

func callerKind(c *caller.Caller) string {
	if c.HostNS {
		return "in the host's pid namespace"
	}
	return fmt.Sprintf("in the pid namespace of init %d", c.InitPid)
}

func rootOrOff(off bool) string {
	if off {
		return "per-container load is off"
	}
	return "the caller sits in the root cgroup"
}

// explainCPUs says how the visible CPUs were chosen.
func (p *Provider) explainCPUs(c *caller.Caller, b *strings.Builder) {
	if hostCPU(c) {
		fmt.Fprintf(b, "the host's CPUs (the caller sits in the root cgroup of every CPU controller)\n")
		return
	}
	if data, err := p.sysFile("devices/system/cpu/online"); err == nil {
		fmt.Fprintf(b, "host online CPUs: %s (%s/devices/system/cpu/online)\n", strings.TrimSpace(string(data)), p.cfg.SysRoot)
	}
	setDir, _ := c.Cgroup.Dir(cgroupview.CPUSetResource)
	if set, err := p.cfg.Cgroups.CPUSet(c.Cgroup); err != nil {
		fmt.Fprintf(b, "cpuset: %v\n", err)
	} else if set == nil {
		fmt.Fprintf(b, "cpuset: none up the tree from %s (every CPU)\n", setDir)
	} else {
		fmt.Fprintf(b, "cpuset: %s (the effective cpuset of %s, or of the nearest ancestor that sets one)\n", procfiles.FormatCPUList(set), setDir)
	}
	quotaDir, _ := c.Cgroup.Dir(cgroupview.CPUQuotaResource)
	if !p.cfg.CPUsFromQuota {
		fmt.Fprintf(b, "quota: not applied (--cpus-from-quota=false)\n")
	} else if n, err := p.cfg.Cgroups.CPUQuota(c.Cgroup); err != nil {
		fmt.Fprintf(b, "quota: %v\n", err)
	} else if n == 0 {
		fmt.Fprintf(b, "quota: none up the tree from %s\n", quotaDir)
	} else {
		fmt.Fprintf(b, "quota: %d CPUs (the tightest CFS quota from %s up, rounded up): the lowest-numbered %d of the set\n", n, quotaDir, n)
	}
	if cpus, err := p.visibleCPUs(c); err == nil {
		fmt.Fprintf(b, "shown: host CPUs %s as CPUs 0-%d\n", procfiles.FormatCPUList(cpus), len(cpus)-1)
	}
}

// explainMemory renders meminfo or swaps from one reading and explains it.
func (p *Provider) explainMemory(c *caller.Caller, file string, b *strings.Builder) ([]byte, error) {
	if c.Cgroup.IsRoot(cgroupview.MemoryResource) {
		fmt.Fprintf(b, "the host's /%s (the caller sits in the root memory cgroup)\n", file)
		return p.hostFile(strings.TrimPrefix(file, "proc/"))
	}
	h := p.cfg.Cgroups.Hierarchy()
	dir, _ := c.Cgroup.Dir(cgroupview.MemoryResource)
	fmt.Fprintf(b, "memory cgroup: %s (%s, cgroup %s)\n", c.Cgroup.Path(cgroupview.MemoryResource), dir, h.Mode)
	host, err := p.hostMeminfo()
	if err != nil {
		return nil, fmt.Errorf("host meminfo: %w", err)
	}
	mem, err := p.cfg.Cgroups.Memory(c.Cgroup)
	if errors.Is(err, cgroupview.ErrNoMemoryController) {
		fmt.Fprintf(b, "no memory controller for this cgroup or an ancestor below the root: the host's file (counted in cgprocfs_host_fallback_total)\n")
		return p.hostFile(strings.TrimPrefix(file, "proc/"))
	}
	if err != nil {
		return nil, fmt.Errorf("memory of %s: %w", dir, err)
	}
	pol := p.cfg.Memory
	cm := procfiles.ComputeMemory(host, mem, pol.ActiveFileUsedPercent, pol.HideSwap)
	src := p.cfg.Cgroups.Sources()
	key := src.StatKey
	fmt.Fprintf(b, "limit: %s (the smallest %s of the cgroup and its ancestors)\n", bytesOrMax(mem.Limit), src.MemoryLimit)
	fmt.Fprintf(b, "usage: %d B (%s)\n", mem.Usage, src.MemoryUsage)
	s := mem.Stat
	fmt.Fprintf(b, "memory.stat:")
	for _, kv := range []struct {
		field string
		v     uint64
	}{{"Anon", s.Anon}, {"AnonTHP", s.AnonTHP}, {"File", s.File}, {"FileMapped", s.FileMapped}, {"Shmem", s.Shmem},
		{"FileDirty", s.FileDirty}, {"FileWriteback", s.FileWriteback}, {"ActiveAnon", s.ActiveAnon}, {"InactiveAnon", s.InactiveAnon},
		{"ActiveFile", s.ActiveFile}, {"InactiveFile", s.InactiveFile}, {"Unevictable", s.Unevictable},
		{"Slab", s.Slab}, {"SlabReclaimable", s.SlabReclaimable}, {"SlabUnreclaimable", s.SlabUnreclaimable}} {
		if k := key(kv.field); !strings.HasPrefix(k, "(") {
			fmt.Fprintf(b, " %s=%d", k, kv.v)
		}
	}
	b.WriteString("\n")
	hostTotal, _ := host.Get("MemTotal")
	hostSwap, _ := host.Get("SwapTotal")
	kb := func(v uint64) string { return fmt.Sprintf("%d kB", v/1024) }
	if file == "proc/meminfo" {
		fmt.Fprintf(b, "MemTotal: %s = min(host MemTotal %d kB, limit)\n", kb(cm.Total), hostTotal)
		fmt.Fprintf(b, "MemFree: %s = MemTotal - usage\n", kb(cm.Free))
		fmt.Fprintf(b, "Cached: %s = %s - (%s + %s + %s + %d%% of %s) (page cache less what cannot be dropped)\n", kb(cm.Cached),
			key("File"), key("Shmem"), key("FileDirty"), key("FileWriteback"), min(pol.ActiveFileUsedPercent, 100), key("ActiveFile"))
		fmt.Fprintf(b, "MemAvailable: %s = min(MemTotal, MemFree + Cached + %s)\n", kb(cm.Available), key("SlabReclaimable"))
		fmt.Fprintf(b, "Buffers, SwapCached: 0 kB\n")
		for _, l := range []struct {
			line   string
			v      uint64
			fields []string
		}{
			{"Active", s.ActiveAnon + s.ActiveFile, []string{"ActiveAnon", "ActiveFile"}},
			{"Inactive", s.InactiveAnon + s.InactiveFile, []string{"InactiveAnon", "InactiveFile"}},
			{"Active(anon)", s.ActiveAnon, []string{"ActiveAnon"}},
			{"Inactive(anon)", s.InactiveAnon, []string{"InactiveAnon"}},
			{"Active(file)", s.ActiveFile, []string{"ActiveFile"}},
			{"Inactive(file)", s.InactiveFile, []string{"InactiveFile"}},
			{"Unevictable", s.Unevictable, []string{"Unevictable"}},
			{"Dirty", s.FileDirty, []string{"FileDirty"}},
			{"Writeback", s.FileWriteback, []string{"FileWriteback"}},
			{"AnonPages", s.Anon, []string{"Anon"}},
			{"Mapped", s.FileMapped, []string{"FileMapped"}},
			{"Shmem", s.Shmem, []string{"Shmem"}},
			{"KReclaimable, SReclaimable", s.SlabReclaimable, []string{"SlabReclaimable"}},
			{"Slab", s.Slab, []string{"Slab"}},
			{"SUnreclaim", s.SlabUnreclaimable, []string{"SlabUnreclaimable"}},
			{"AnonHugePages", s.AnonTHP, []string{"AnonTHP"}},
		} {
			names := make([]string, len(l.fields))
			for i, f := range l.fields {
				names[i] = key(f)
			}
			fmt.Fprintf(b, "%s: %s = %s\n", l.line, kb(l.v), strings.Join(names, " + "))
		}
	}
	swapFiles := src.Swap
	switch {
	case pol.HideSwap:
		fmt.Fprintf(b, "SwapTotal, SwapFree: 0 kB (--hide-swap)\n")
	case !mem.SwapAccounting:
		fmt.Fprintf(b, "SwapTotal, SwapFree: 0 kB (the kernel does not account this cgroup's swap)\n")
	default:
		fmt.Fprintf(b, "SwapTotal: %s = min(host SwapTotal %d kB, swap limit %s) (%s)\n", kb(cm.SwapTotal), hostSwap, bytesOrMax(mem.SwapLimit), swapFiles)
		fmt.Fprintf(b, "SwapFree: %s = SwapTotal - swap usage %d B\n", kb(cm.SwapFree), mem.SwapUsage)
	}
	if file == "proc/meminfo" {
		fmt.Fprintf(b, "other lines: the host's\n")
		return procfiles.RenderMeminfo(host, cm), nil
	}
	return procfiles.RenderSwaps(cm), nil
}

func bytesOrMax(v uint64) string {
	if v == cgroupview.NoLimit {
		return "max (none)"
	}
	return fmt.Sprintf("%d B", v)
}
