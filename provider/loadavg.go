// proc/loadavg: the container's own load average, thread count and
// newest pid.

package provider

import (
	"context"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// loadavgFile serves /proc/loadavg.
func (p *Provider) loadavgFile(ctx context.Context, pid uint32) ([]byte, error) {
	c, err := p.caller(ctx, pid)
	if err != nil {
		return nil, err
	}
	if p.load == nil || c.Cgroup.IsRoot(loadResource) {
		return p.hostFile("loadavg")
	}
	dir, err := c.Cgroup.Dir(loadResource)
	if err != nil {
		return nil, err
	}
	snap := p.load.Touch(dir)
	l := procfiles.Loadavg{Avg: loadAverages(snap.Avg)}
	total, newest := p.threadsNow(snap.Dirs)
	l.Total = total
	l.Running = min(snap.Counts.Running, total)
	if c.HostNS {
		host, err := p.hostFile("loadavg")
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

// threadsNow lists the threads of dirs now, for the fourth field's total
// and the fifth field: it returns the count and the highest host tids, the
// newest ones unless host pids wrapped around.
func (p *Provider) threadsNow(dirs []string) (uint64, []int) {
	name := p.cfg.Cgroups.ThreadsFile()
	var total uint64
	var top [3]int // highest first
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
		total += uint64(len(tids))
		for _, t := range tids {
			for i := range top {
				if t > top[i] {
					copy(top[i+1:], top[i:len(top)-1])
					top[i] = t
					break
				}
			}
		}
	}
	var out []int
	for _, t := range top {
		if t > 0 {
			out = append(out, t)
		}
	}
	return total, out
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
		ns, err := p.cfg.FS.NSpid(t)
		if err == nil && len(ns) >= level {
			return ns[level-1]
		}
	}
	return 0
}
