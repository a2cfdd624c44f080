package provider

import (
	"context"
	"errors"
	"fmt"
	"github.com/cgprocfs/cgprocfs/caller"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// memView is a caller's memory view: the container's figures and the
// host's meminfo they are rendered into, or, for a caller that sees the
// host (the root memory cgroup), only the host's meminfo bytes.
type memView struct {
	container *procfiles.ContainerMemory // nil: the caller sees the host
	host      *procfiles.Meminfo
	hostRaw   []byte
	// fallback says why a container got the host's figures ("": it did
	// not, or it is the host).
	fallback string
}

// containerMemory is the caller's memory view, for file.
func (p *Provider) containerMemory(ctx context.Context, pid uint32, file string) (memView, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return memView{}, err
	}
	v, err := p.memoryView(c)
	if v.fallback != "" {
		p.obs.HostFallback(file, v.fallback)
	}
	return v, err
}

// memoryView is the memory view of a resolved caller.
func (p *Provider) memoryView(c *caller.Caller) (memView, error) {
	if c.Cgroup.IsRoot(cgroupview.MemoryResource) {
		raw, err := p.hostRecord("meminfo")
		if err != nil {
			return memView{}, fmt.Errorf("host meminfo: %w", err)
		}
		return memView{hostRaw: raw}, nil
	}
	// Readers of one cgroup opening at once share a reading that starts
	// after they arrived (flight.go).
	r := p.memFlights.do(c.Cgroup.Key(cgroupview.MemoryResource), func() memResult {
		return p.readContainerMemory(c)
	})
	return r.view, r.err
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
		raw, err := p.hostRecord("meminfo")
		if err != nil {
			return memResult{err: fmt.Errorf("host meminfo: %w", err)}
		}
		return memResult{view: memView{hostRaw: raw, fallback: FallbackNoMemoryController}}
	}
	if err != nil {
		return memResult{err: fmt.Errorf("memory of %s: %w", c.Cgroup.Path(cgroupview.MemoryResource), err)}
	}
	cm := procfiles.ComputeMemory(host, mem, p.cfg.Memory.ActiveFileUsedPercent, p.cfg.Memory.HideSwap)
	return memResult{view: memView{container: &cm, host: host}}
}

func (p *Provider) meminfo(ctx context.Context, pid uint32) ([]byte, error) {
	v, err := p.containerMemory(ctx, pid, "proc/meminfo")
	if err != nil || v.container == nil {
		return v.hostRaw, err
	}
	return procfiles.RenderMeminfo(v.host, *v.container), nil
}

func (p *Provider) swaps(ctx context.Context, pid uint32) ([]byte, error) {
	v, err := p.containerMemory(ctx, pid, "proc/swaps")
	if err != nil {
		return nil, err
	}
	if v.container == nil {
		return p.hostFile("swaps")
	}
	return procfiles.RenderSwaps(*v.container), nil
}
