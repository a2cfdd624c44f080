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
	var f func(context.Context, uint32) ([]byte, error)
	for _, sf := range p.Files() {
		if sf.Path == file {
			f = sf.Content
		}
	}
	if f == nil {
		return nil, "", fmt.Errorf("%s is not a served file", file)
	}
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, "", err
	}
	var b strings.Builder
	h := p.cfg.Cgroups.Hierarchy()
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
	case file == "proc/cpuinfo" || strings.HasPrefix(file, "sys/devices/system/cpu/"):
		p.explainCPUs(c, &b)
	case file == "proc/stat":
		p.explainCPUs(c, &b)
		if !hostCPU(c) {
			cpuDir, _ := c.Cgroup.Dir(cgroupview.CPUTimeResource)
			if h.Mode == cgroupview.Unified {
				fmt.Fprintf(&b, "user, system: %s/cpu.stat user_usec and system_usec, spread evenly over the CPUs shown\n", cpuDir)
			} else {
				fmt.Fprintf(&b, "user, system: %s/cpuacct.usage_all per host CPU (time on CPUs not shown spread evenly)\n", cpuDir)
			}
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
		if h.Mode == cgroupview.Unified {
			fmt.Fprintf(&b, "per device: %s/io.stat (rios, wios, dios, rbytes, wbytes, dbytes), the disk names and layout from the host's /proc/diskstats\n", dir)
		} else {
			fmt.Fprintf(&b, "per device: %s/blkio.throttle.io_serviced_recursive and io_service_bytes_recursive (blkio.bfq.* where present), names and layout from the host's /proc/diskstats\n", dir)
		}
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
		fmt.Fprintf(b, "cpuset: %s (the effective cpuset of %s, or of the nearest ancestor that sets one)\n", cgroupview.FormatCPUList(set), setDir)
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
		fmt.Fprintf(b, "shown: host CPUs %s as CPUs 0-%d\n", cgroupview.FormatCPUList(cpus), len(cpus)-1)
	}
}

// memKeys names a MemoryStat field's memory.stat key on v1 and v2.
type memKey struct{ v1, v2 string }

func (k memKey) name(m cgroupview.Mode) string {
	if m == cgroupview.Unified {
		return k.v2
	}
	return k.v1
}

var (
	keyAnon          = memKey{"total_rss", "anon"}
	keyAnonTHP       = memKey{"total_rss_huge", "anon_thp"}
	keyFile          = memKey{"total_cache", "file"}
	keyFileMapped    = memKey{"total_mapped_file", "file_mapped"}
	keyShmem         = memKey{"total_shmem", "shmem"}
	keyDirty         = memKey{"total_dirty", "file_dirty"}
	keyWriteback     = memKey{"total_writeback", "file_writeback"}
	keyActiveAnon    = memKey{"total_active_anon", "active_anon"}
	keyInactiveAnon  = memKey{"total_inactive_anon", "inactive_anon"}
	keyActiveFile    = memKey{"total_active_file", "active_file"}
	keyInactiveFile  = memKey{"total_inactive_file", "inactive_file"}
	keyUnevictable   = memKey{"total_unevictable", "unevictable"}
	keySlab          = memKey{"(none on v1: 0)", "slab"}
	keySlabReclaim   = memKey{"(none on v1: 0)", "slab_reclaimable"}
	keySlabUnreclaim = memKey{"(none on v1: 0)", "slab_unreclaimable"}
)

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
	m := h.Mode
	limitFile, usageFile := "memory.limit_in_bytes", "memory.usage_in_bytes"
	if m == cgroupview.Unified {
		limitFile, usageFile = "memory.max", "memory.current"
	}
	fmt.Fprintf(b, "limit: %s (the smallest %s of the cgroup and its ancestors)\n", bytesOrMax(mem.Limit), limitFile)
	fmt.Fprintf(b, "usage: %d B (%s)\n", mem.Usage, usageFile)
	s := mem.Stat
	fmt.Fprintf(b, "memory.stat: ")
	for i, kv := range []struct {
		k memKey
		v uint64
	}{{keyAnon, s.Anon}, {keyAnonTHP, s.AnonTHP}, {keyFile, s.File}, {keyFileMapped, s.FileMapped}, {keyShmem, s.Shmem},
		{keyDirty, s.FileDirty}, {keyWriteback, s.FileWriteback}, {keyActiveAnon, s.ActiveAnon}, {keyInactiveAnon, s.InactiveAnon},
		{keyActiveFile, s.ActiveFile}, {keyInactiveFile, s.InactiveFile}, {keyUnevictable, s.Unevictable}} {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(b, "%s=%d", kv.k.name(m), kv.v)
	}
	if m == cgroupview.Unified {
		fmt.Fprintf(b, " slab=%d slab_reclaimable=%d slab_unreclaimable=%d", s.Slab, s.SlabReclaimable, s.SlabUnreclaimable)
	}
	b.WriteString("\n")
	hostTotal, _ := host.Get("MemTotal")
	hostSwap, _ := host.Get("SwapTotal")
	kb := func(v uint64) string { return fmt.Sprintf("%d kB", v/1024) }
	if file == "proc/meminfo" {
		fmt.Fprintf(b, "MemTotal: %s = min(host MemTotal %d kB, limit)\n", kb(cm.Total), hostTotal)
		fmt.Fprintf(b, "MemFree: %s = MemTotal - usage\n", kb(cm.Free))
		fmt.Fprintf(b, "Cached: %s = %s - (%s + %s + %s + %d%% of %s) (page cache less what cannot be dropped)\n", kb(cm.Cached),
			keyFile.name(m), keyShmem.name(m), keyDirty.name(m), keyWriteback.name(m), min(pol.ActiveFileUsedPercent, 100), keyActiveFile.name(m))
		fmt.Fprintf(b, "MemAvailable: %s = min(MemTotal, MemFree + Cached + %s)\n", kb(cm.Available), keySlabReclaim.name(m))
		fmt.Fprintf(b, "Buffers, SwapCached: 0 kB\n")
		for _, l := range []struct {
			line string
			v    uint64
			keys []memKey
		}{
			{"Active", s.ActiveAnon + s.ActiveFile, []memKey{keyActiveAnon, keyActiveFile}},
			{"Inactive", s.InactiveAnon + s.InactiveFile, []memKey{keyInactiveAnon, keyInactiveFile}},
			{"Active(anon)", s.ActiveAnon, []memKey{keyActiveAnon}},
			{"Inactive(anon)", s.InactiveAnon, []memKey{keyInactiveAnon}},
			{"Active(file)", s.ActiveFile, []memKey{keyActiveFile}},
			{"Inactive(file)", s.InactiveFile, []memKey{keyInactiveFile}},
			{"Unevictable", s.Unevictable, []memKey{keyUnevictable}},
			{"Dirty", s.FileDirty, []memKey{keyDirty}},
			{"Writeback", s.FileWriteback, []memKey{keyWriteback}},
			{"AnonPages", s.Anon, []memKey{keyAnon}},
			{"Mapped", s.FileMapped, []memKey{keyFileMapped}},
			{"Shmem", s.Shmem, []memKey{keyShmem}},
			{"KReclaimable, SReclaimable", s.SlabReclaimable, []memKey{keySlabReclaim}},
			{"Slab", s.Slab, []memKey{keySlab}},
			{"SUnreclaim", s.SlabUnreclaimable, []memKey{keySlabUnreclaim}},
			{"AnonHugePages", s.AnonTHP, []memKey{keyAnonTHP}},
		} {
			names := make([]string, len(l.keys))
			for i, k := range l.keys {
				names[i] = k.name(m)
			}
			fmt.Fprintf(b, "%s: %s = %s\n", l.line, kb(l.v), strings.Join(names, " + "))
		}
	}
	swapFiles := "memory.memsw.usage_in_bytes and memory.memsw.limit_in_bytes, less memory's"
	if m == cgroupview.Unified {
		swapFiles = "memory.swap.current and memory.swap.max"
	}
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
