package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// diskstats is the caller's /proc/diskstats: the host's file for a caller in
// the root blkio (v2: root) cgroup, else one line per device its cgroup has
// I/O counters for, never the host's counters.
func (p *Provider) diskstats(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(pid)
	if err != nil {
		return nil, err
	}
	raw, err := p.hostFile("diskstats")
	if err != nil {
		return nil, fmt.Errorf("host diskstats: %w", err)
	}
	ctrl := "blkio"
	if c.Cgroup.Hierarchy().Mode == cgroupview.Unified {
		ctrl = "io"
	}
	if c.Cgroup.IsRoot(ctrl) {
		return raw, nil
	}
	host, err := procfiles.ParseDiskstats(raw)
	if err != nil {
		return nil, fmt.Errorf("host diskstats: %w", err)
	}
	dir, err := c.Cgroup.Dir(ctrl)
	if errors.Is(err, cgroupview.ErrNoCgroup) {
		// v1 blkio not mounted: nothing tells this container's I/O.
		return []byte{}, nil
	}
	if err != nil {
		return nil, err
	}
	io, err := cgroupview.ReadIO(c.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("I/O of %s: %w", dir, err)
	}
	counters := make(map[cgroupview.Dev]procfiles.DiskCounters, len(io))
	for dev, d := range io {
		counters[dev] = procfiles.DiskCountersFrom(d)
	}
	return procfiles.RenderDiskstats(host, p.disks.update(c.Cgroup.Key(ctrl), dir, counters, host)), nil
}
