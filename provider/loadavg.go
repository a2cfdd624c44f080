// proc/loadavg: the container's own load average, thread count and
// newest pid.

package provider

import (
	"context"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/loadavg"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// loadavgFile serves /proc/loadavg.
func (p *Provider) loadavgFile(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	if p.load == nil || c.Cgroup.IsRoot(loadResource) {
		return p.hostRecord("loadavg")
	}
	dir, err := c.Cgroup.Dir(loadResource)
	if err != nil {
		return nil, err
	}
	snap := p.load.Touch(dir)
	l := procfiles.Loadavg{Avg: loadAverages(snap.Avg)}
	// The sampler's counts and newest threads (at most a sampling period
	// old) make the fourth and fifth fields, so no read lists the
	// container's threads; before its first sample the first read lists
	// them and seeds the tracker with them for the reads until that
	// sample, and with a counter that lists none (cgroupstats) every read
	// lists them.
	counts := snap.Counts
	switch {
	case snap.Samples == 0 && !snap.Seeded:
		counts = p.threadsNow(snap.Dirs)
		p.load.Seed(dir, counts)
	case snap.Samples > 0 && counts.Newest[0] == 0:
		counts = p.threadsNow(snap.Dirs)
	}
	total, newest := counts.Total, counts.Newest[:]
	l.Total = total
	l.Running = min(snap.Counts.Running, total)
	if c.HostNS {
		host, err := p.hostRecord("loadavg")
		if err != nil {
			return nil, err
		}
		if l.LastPid, err = procfiles.ParseLoadavgLastPid(host); err != nil {
			return nil, err
		}
	} else {
		l.LastPid = p.newestNSPid(c, newest)
	}
	return procfiles.RenderLoadavg(l), nil
}

// threadsNow lists the threads of dirs now: their count and the newest.
func (p *Provider) threadsNow(dirs []string) loadavg.Counts {
	name := p.cfg.Cgroups.ThreadsFile()
	var n loadavg.Counts
	var tids []int
	for _, d := range dirs {
		var err error
		tids, err = p.cfg.FS.ThreadsAt(d, name, tids[:0])
		if err != nil {
			if !kernelfs.IsGone(err) { // else removed since the last sample
				p.log.Warn("reading threads", "cgroup", d, "err", err)
			}
			continue
		}
		n.Total += uint64(len(tids))
		for _, t := range tids {
			n.NoteNewest(t)
		}
	}
	return n
}

// newestNSPid numbers the newest thread as the caller's pid namespace does,
// from the NSpid line of /proc/<tid>/status. A thread outside the caller's
// namespace (its NSpid is too short) is skipped; 0 when none is left.
func (p *Provider) newestNSPid(c *caller.Caller, tids []int) int {
	level, ok := p.nsLevel(c)
	if !ok {
		return 0
	}
	for _, t := range tids {
		if t <= 0 {
			continue
		}
		ns, err := p.cfg.FS.NSpid(t)
		if err == nil && len(ns) >= level {
			return ns[level-1]
		}
	}
	return 0
}
