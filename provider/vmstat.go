// proc/vmstat: the container's paging, swapping, faults and page counts.

package provider

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// vmState keeps the event counters of /proc/vmstat (pgfault, pswpin, ...)
// from going backwards, per container (monotonic.go). Sizes are shown as
// the cgroup says them.
type vmState struct {
	ctrStates[[cgroupview.NumVMKeys]counter]
}

// fold folds the cgroup's counters into the state of the container keyed
// key (memory cgroup directory dir) and returns the values to show, sorted
// by key as procfiles wants them.
func (s *vmState) fold(key, dir string, raw cgroupview.VMCounters) []procfiles.VMValue {
	out := make([]procfiles.VMValue, cgroupview.NumVMKeys)
	s.with(key, dir, func(ctrs *[cgroupview.NumVMKeys]counter) bool {
		for i, v := range raw {
			name, event := cgroupview.VMKey(i)
			if event {
				v = ctrs[i].fold(v)
			}
			out[i] = procfiles.VMValue{Key: name, Value: v}
		}
		return true
	})
	return out
}

// vmstat is the caller's /proc/vmstat: the host's file for a caller in the
// root memory cgroup (or, on v2, in a cgroup charged to the root), else the
// host's lines with the container's values (procfiles.RenderVMStat).
func (p *Provider) vmstat(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	hostRaw, err := p.hostFile("vmstat")
	if err != nil {
		return nil, fmt.Errorf("host vmstat: %w", err)
	}
	if c.Cgroup.IsRoot(cgroupview.MemoryResource) {
		return hostRaw, nil
	}
	host, err := p.hostMeminfo()
	if err != nil {
		return nil, fmt.Errorf("host meminfo: %w", err)
	}
	mem, raw, err := p.cfg.Cgroups.MemoryVM(c.Cgroup)
	if errors.Is(err, cgroupview.ErrNoMemoryController) {
		// Charged to the root, as meminfo says too.
		return hostRaw, nil
	}
	dir, _ := c.Cgroup.Dir(cgroupview.MemoryResource)
	if err != nil {
		return nil, fmt.Errorf("memory of %s: %w", dir, err)
	}
	vm := procfiles.ContainerVM{
		Memory:   procfiles.ComputeMemory(host, mem, p.cfg.Memory.ActiveFileUsedPercent, p.cfg.Memory.HideSwap),
		Values:   p.vm.fold(c.Cgroup.Key(cgroupview.MemoryResource), dir, raw),
		PageSize: uint64(os.Getpagesize()),
		THPSize:  p.hostTHPSize(),
	}
	// pgpgin and pgpgout add up the container's diskstats lines, so that
	// vmstat's bi/bo and iostat inside agree, and both only grow.
	disks, err := p.diskViewOf(c)
	if err != nil {
		return nil, err
	}
	vm.HostIO = disks.root
	for _, d := range disks.counters {
		vm.PgpgIn += d[procfiles.DiskReadSectors]
		vm.PgpgOut += d[procfiles.DiskWriteSectors]
	}
	vm.PgpgIn /= 2 // sectors to KiB, as the kernel's vmstat does
	vm.PgpgOut /= 2
	out, err := procfiles.RenderVMStat(hostRaw, vm)
	if err != nil {
		return nil, fmt.Errorf("host vmstat: %w", err)
	}
	return out, nil
}

// hostTHPSize is the size of a transparent huge page, in which vmstat
// counts its *_hugepages lines: 2 MiB on x86-64, more with larger base
// pages. It is read once; a kernel without THP counts none (the cgroup's
// THP sizes are 0 then) and 2 MiB stands in.
func (p *Provider) hostTHPSize() uint64 {
	if v := p.thpSize.Load(); v != 0 {
		return v
	}
	v := uint64(2 << 20)
	if b, err := p.sysFile("kernel/mm/transparent_hugepage/hpage_pmd_size"); err == nil {
		if n, err := cgroupview.ParseUint(b); err == nil && n > 0 {
			v = n
		}
	}
	p.thpSize.Store(v)
	return v
}
