// proc/uptime: the time since the container's init started, and its idle
// CPU time as its proc/stat shows it.

package provider

import (
	"context"
	"fmt"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// uptimeFile serves /proc/uptime: the time since the caller's pid
// namespace's init started, and as idle the container's idle CPU time as
// its /proc/stat shows it.
func (p *Provider) uptimeFile(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	if c.HostNS {
		return p.hostRecord("uptime")
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
		raw, err := p.hostRecord("uptime")
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
