// proc/stat: the container's CPU time per visible CPU, its quota's
// throttling as steal, its own running and blocked threads.

package provider

import (
	"context"
	"fmt"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// stat serves proc/stat.
func (p *Provider) stat(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	raw, err := p.hostRecord("stat")
	if err != nil || hostCPU(c) {
		return raw, err
	}
	host, err := procfiles.ParseStat(raw)
	if err != nil {
		return nil, fmt.Errorf("host stat: %w", err)
	}
	cpus, err := p.visibleCPUs(c)
	if err != nil {
		return nil, err
	}
	r, err := p.cpuReading(c, cpus)
	if err != nil {
		return nil, err
	}
	out := make([]procfiles.CPUStat, len(r.lines))
	for i, l := range r.lines {
		out[i] = toTicks(l)
	}
	// The thread scan (at most about a second old) where the BPF
	// iterator does not run, or failed this time.
	running, blocked := r.tasks.running, r.tasks.blocked
	if p.live != nil {
		if lr, lb, err := p.liveCounts(c, pid); err == nil {
			running, blocked = lr, lb
		} else if p.live.warned.CompareAndSwap(false, true) {
			p.log.Warn("procs_running and procs_blocked from the thread scan: the BPF task iterator failed (logged once)", "err", err)
		}
	}
	return procfiles.RenderStat(host, toTicks(r.total), out, running, blocked), nil
}
