// proc/cpuinfo: the host's entries for the CPUs the container sees,
// numbered from 0.

package provider

import (
	"context"
	"fmt"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// cpuinfo serves proc/cpuinfo.
func (p *Provider) cpuinfo(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	raw, err := p.hostFile("cpuinfo")
	if err != nil || hostCPU(c) {
		return raw, err
	}
	cpus, err := p.visibleCPUs(c)
	if err != nil {
		return nil, err
	}
	host, err := procfiles.ParseCPUInfo(raw)
	if err != nil {
		return nil, fmt.Errorf("host cpuinfo: %w", err)
	}
	return procfiles.RenderCPUInfo(host, cpus), nil
}
