// proc/diskstats and sys/block/DISK/stat: the container's own I/O per disk.

package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// diskView is a caller's view of the block devices: the host's diskstats
// (the raw file for a caller in the root blkio (v2: root) cgroup, which
// sees the host's; for others the disk list, shared and never changed) and
// the counters to show per device. A container that did no I/O has none;
// it never gets the host's counters.
type diskView struct {
	hostRaw []byte
	host    []procfiles.DiskstatsLine
	// root is true for a caller in the root cgroup: it sees the host.
	root     bool
	counters map[procfiles.Dev]procfiles.DiskCounters
}

func (p *Provider) diskView(ctx context.Context, pid uint32) (*diskView, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	return p.diskViewOf(c)
}

// diskViewOf is the disk view of a caller already resolved.
func (p *Provider) diskViewOf(c *caller.Caller) (*diskView, error) {
	v := &diskView{}
	var err error
	if c.Cgroup.IsRoot(cgroupview.IOResource) {
		if v.hostRaw, err = p.hostFile("diskstats"); err != nil {
			return nil, fmt.Errorf("host diskstats: %w", err)
		}
		v.root = true
		return v, nil
	}
	if v.host, err = p.hostDisks.get(p.readHostDisks); err != nil {
		return nil, fmt.Errorf("host diskstats: %w", err)
	}
	dir, err := c.Cgroup.Dir(cgroupview.IOResource)
	if errors.Is(err, cgroupview.ErrNoCgroup) {
		// v1 blkio not mounted: nothing tells this container's I/O.
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	io, err := p.cfg.Cgroups.IO(c.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("I/O of %s: %w", dir, err)
	}
	raw := make(map[procfiles.Dev]procfiles.DiskCounters, len(io))
	for dev, d := range io {
		raw[diskDev(dev)] = procfiles.DiskCountersFrom(diskIO(d))
	}
	v.counters = p.disks.update(c.Cgroup.Key(cgroupview.IOResource), dir, raw, v.host)
	return v, nil
}

// readHostDisks reads and parses the host's /proc/diskstats.
func (p *Provider) readHostDisks() ([]procfiles.DiskstatsLine, error) {
	data, err := p.hostFile("diskstats")
	if err != nil {
		return nil, err
	}
	return procfiles.ParseDiskstats(data)
}

// diskstats is the caller's /proc/diskstats: the host's file for a caller in
// the root cgroup, else one line per device its cgroup has counters for.
func (p *Provider) diskstats(ctx context.Context, pid uint32) ([]byte, error) {
	v, err := p.diskView(ctx, pid)
	if err != nil {
		return nil, err
	}
	if v.root {
		return v.hostRaw, nil
	}
	return procfiles.RenderDiskstats(v.host, v.counters), nil
}

// blockStat is the caller's /sys/block/<name>/stat: the host's for a caller
// in the root cgroup, else the device's counters from the caller's
// diskstats, zeros when it has none, with as many counters as the host's
// diskstats lines.
func (p *Provider) blockStat(ctx context.Context, pid uint32, name string, dev procfiles.Dev) ([]byte, error) {
	v, err := p.diskView(ctx, pid)
	if err != nil {
		return nil, err
	}
	if v.root {
		return p.sysRecord("block/" + name + "/stat")
	}
	n := procfiles.NumDiskCounters
	if len(v.host) > 0 {
		n = len(v.host[0].Counters)
	}
	for _, l := range v.host {
		if l.Dev == dev {
			n = len(l.Counters)
			break
		}
	}
	return procfiles.RenderBlockStat(v.counters[dev], n), nil
}
