package provider

import (
	"context"
	"errors"
	"fmt"
	"github.com/cgprocfs/cgprocfs/caller"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// containerMemory is the caller's memory view; nil with the host's meminfo
// bytes when the caller sits in the root memory cgroup, which sees the host.
func (p *Provider) containerMemory(pid uint32) (*procfiles.ContainerMemory, *procfiles.Meminfo, []byte, error) {
	c, err := p.caller(pid)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.Cgroup.IsRoot(cgroupview.MemoryResource) {
		raw, err := p.hostFile("meminfo")
		if err != nil {
			return nil, nil, nil, fmt.Errorf("host meminfo: %w", err)
		}
		return nil, nil, raw, nil
	}
	// Readers of one cgroup opening at once share a reading that starts
	// after they arrived (flight.go).
	r := p.memFlights.do(c.Cgroup.Key(cgroupview.MemoryResource), func() memResult {
		return p.readContainerMemory(c)
	})
	return r.cm, r.host, r.raw, r.err
}

// readContainerMemory reads the host's and the cgroup's memory files.
func (p *Provider) readContainerMemory(c *caller.Caller) memResult {
	host, err := p.hostMeminfo()
	if err != nil {
		return memResult{err: fmt.Errorf("host meminfo: %w", err)}
	}
	mem, err := p.cfg.Cgroups.Memory(c.Cgroup)
	if errors.Is(err, cgroupview.ErrNoMemoryController) {
		// v2 without the memory controller below the root: the root is
		// charged, as for a caller in the root cgroup.
		raw, err := p.hostFile("meminfo")
		if err != nil {
			return memResult{err: fmt.Errorf("host meminfo: %w", err)}
		}
		return memResult{raw: raw}
	}
	if err != nil {
		return memResult{err: fmt.Errorf("memory of %s: %w", c.Cgroup.Path(cgroupview.MemoryResource), err)}
	}
	cm := procfiles.ComputeMemory(host, cgroupMemory(mem), p.cfg.Memory.ActiveFileUsedPercent, p.cfg.Memory.HideSwap)
	return memResult{cm: &cm, host: host}
}

func (p *Provider) meminfo(ctx context.Context, pid uint32) ([]byte, error) {
	cm, host, raw, err := p.containerMemory(pid)
	if err != nil || cm == nil {
		return raw, err
	}
	return procfiles.RenderMeminfo(host, *cm), nil
}

func (p *Provider) swaps(ctx context.Context, pid uint32) ([]byte, error) {
	cm, _, _, err := p.containerMemory(pid)
	if err != nil {
		return nil, err
	}
	if cm == nil {
		return p.hostFile("swaps")
	}
	return procfiles.RenderSwaps(*cm), nil
}
