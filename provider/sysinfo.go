// sysinfo(2): the numbers of the container's meminfo, uptime and loadavg as
// the kernel's struct sysinfo, for the seccomp agent to hand the caller.

package provider

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// Sysinfo is the struct sysinfo thread pid (in the daemon's pid namespace)
// should get, in the 64-bit layout of procfiles.EncodeSysinfo: each field
// from the same source as the served file that shows it, and the host's
// where that file is the host's for this caller. It is nil, with no error,
// when every field is the host's (a caller in the root cgroups and the
// host's pid namespace): the kernel's own answer is then the right one.
func (p *Provider) Sysinfo(pid int) ([]byte, error) {
	c, err := p.cfg.Resolver.Resolve(pid)
	if err != nil {
		return nil, fmt.Errorf("resolving caller %d: %w", pid, err)
	}
	// The daemon runs in the host's namespaces: its own sysinfo is the
	// host's, for the fields the caller sees the host in.
	var host unix.Sysinfo_t
	if err := unix.Sysinfo(&host); err != nil {
		return nil, fmt.Errorf("sysinfo: %w", err)
	}
	unit := uint64(max(host.Unit, 1))
	s := procfiles.Sysinfo{
		Uptime:   host.Uptime,
		Loads:    procfiles.LoadAverages(hostLoads(host.Loads)),
		TotalRAM: host.Totalram * unit, FreeRAM: host.Freeram * unit,
		SharedRAM: host.Sharedram * unit, BufferRAM: host.Bufferram * unit,
		TotalSwap: host.Totalswap * unit, FreeSwap: host.Freeswap * unit,
		Procs: uint64(host.Procs),
	}
	own := false

	// proc/meminfo: MemTotal, MemFree, Shmem, Buffers (0), SwapTotal,
	// SwapFree.
	mem, err := p.memoryView(c)
	if err != nil {
		return nil, err
	}
	if m := mem.container; m != nil {
		s.TotalRAM, s.FreeRAM, s.SharedRAM, s.BufferRAM = m.Total, m.Free, m.Stat.Shmem, 0
		s.TotalSwap, s.FreeSwap = m.SwapTotal, m.SwapFree
		own = true
	}

	// proc/uptime's first field, rounded up to whole seconds as
	// do_sysinfo rounds (tv_sec + !!tv_nsec).
	if !c.HostNS {
		now, err := bootNanos()
		if err != nil {
			return nil, err
		}
		up := max(now-int64(c.InitStart)*tick, 0)
		s.Uptime = (up + 1e9 - 1) / 1e9
		own = true
	}

	// proc/loadavg's averages, and its TOTAL as procs.
	if !c.Cgroup.IsRoot(loadResource) {
		dir, err := c.Cgroup.Dir(loadResource)
		if err != nil {
			return nil, err
		}
		if p.load != nil {
			snap := p.load.Touch(dir)
			s.Loads = loadAverages(snap.Avg)
			counts := snap.Counts
			if snap.Samples == 0 || counts.Newest[0] == 0 {
				counts = p.threadsNow(snap.Dirs)
			}
			s.Procs = counts.Total
		} else {
			// --loadavg=false: the host's load, as the served
			// file; the thread count is still the container's.
			s.Procs = p.threadsNow([]string{dir}).Total
		}
		own = true
	}

	if !own {
		return nil, nil
	}
	b := procfiles.EncodeSysinfo(s, uint64(os.Getpagesize()))
	return b[:], nil
}

// hostLoads takes the kernel's sysinfo loads (SI_LOAD_SHIFT, 16 fractional
// bits) back to avenrun's FSHIFT fixed point, which EncodeSysinfo scales
// again: the 5 bits shifted out were zero.
func hostLoads(l [3]uint64) [3]uint64 {
	const shift = 16 - 11 // SI_LOAD_SHIFT - FSHIFT
	return [3]uint64{l[0] >> shift, l[1] >> shift, l[2] >> shift}
}
