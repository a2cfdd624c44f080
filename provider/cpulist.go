// sys/devices/system/cpu/{online,present,possible}.

package provider

import (
	"context"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// cpuList serves /sys/devices/system/cpu/{online,present,possible}: the
// visible CPUs, numbered from 0.
func (p *Provider) cpuList(name string) func(context.Context, uint32) ([]byte, error) {
	return func(ctx context.Context, pid uint32) ([]byte, error) {
		c, err := p.caller(ctx, pid)
		if err != nil {
			return nil, err
		}
		if hostCPU(c) {
			return p.sysRecord("devices/system/cpu/" + name)
		}
		cpus, err := p.visibleCPUs(c)
		if err != nil {
			return nil, err
		}
		return procfiles.RenderCPURange(len(cpus)), nil
	}
}
