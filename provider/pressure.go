// proc/pressure/{cpu,memory,io}: the container's pressure stall information.

package provider

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// pressureResources are the files of /proc/pressure served.
var pressureResources = []cgroupview.PressureResource{"cpu", "memory", "io"}

// pressureFiles serves proc/pressure/<res> for each file the host has
// (none on kernels without PSI, or booted with psi=0).
func (p *Provider) pressureFiles() []fs.File {
	var files []fs.File
	for _, res := range pressureResources {
		if _, err := os.Stat(p.cfg.ProcRoot + "/pressure/" + string(res)); err != nil {
			continue
		}
		files = append(files, fs.File{
			Path: "proc/pressure/" + string(res),
			Content: func(ctx context.Context, pid uint32) ([]byte, error) {
				return p.pressure(ctx, pid, res)
			},
		})
	}
	return files
}

// pressureResource is the resource whose root cgroup sees the host's
// pressure file: on v1 the controller of what stalls (cpuacct for CPU, as
// the CPU and load views read).
func pressureResource(res cgroupview.PressureResource) cgroupview.Resource {
	switch res {
	case "memory":
		return cgroupview.MemoryResource
	case "io":
		return cgroupview.IOResource
	}
	return cgroupview.CPUTimeResource
}

// pressure is the caller's /proc/pressure/<res>: the host's file in the
// root cgroup, the cgroup's <res>.pressure where one tells it, and the
// host's lines with every value 0 where none does (a v1 host without a
// cgroup2 tree, a v1 container left at that tree's root), so that a
// container never acts on the host's stalls as its own.
func (p *Provider) pressure(ctx context.Context, pid uint32, res cgroupview.PressureResource) ([]byte, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	if c.Cgroup.IsRoot(pressureResource(res)) {
		return p.hostRecord("pressure/" + string(res))
	}
	data, err := p.cfg.Cgroups.Pressure(c.Cgroup, res)
	if errors.Is(err, cgroupview.ErrNoPressure) {
		host, err := p.hostRecord("pressure/" + string(res))
		if err != nil {
			return nil, fmt.Errorf("host %s pressure: %w", res, err)
		}
		ps, err := procfiles.ParsePressure(host)
		if err != nil {
			return nil, fmt.Errorf("host %s pressure: %w", res, err)
		}
		return procfiles.RenderPressure(ps.Zero()), nil
	}
	if err != nil {
		return nil, err
	}
	ps, err := procfiles.ParsePressure(data)
	if err != nil {
		return nil, fmt.Errorf("%s pressure of the cgroup: %w", res, err)
	}
	return procfiles.RenderPressure(ps), nil
}
