package provider

import (
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// diskState keeps, for every container that read /proc/diskstats, what its
// cgroup's counters were at the last read, so that the file's counters only
// ever grow (the counter rule of monotonic.go, per device and counter). A
// device whose counters vanish keeps its line with the last values while
// the host lists it; a device the host no longer lists is forgotten, so a
// new device that reuses its number starts at zero. Containers that did no
// I/O yet have no state.
type diskState struct {
	ctrStates[map[procfiles.Dev]*devState]
}

type devState [procfiles.NumDiskCounters]counter

// update folds the cgroup's current counters raw into the state of the
// container keyed key (cgroup directory dir) and returns the counters to
// show, for devices in host only.
func (s *diskState) update(key, dir string, raw map[procfiles.Dev]procfiles.DiskCounters, host []procfiles.DiskstatsLine) map[procfiles.Dev]procfiles.DiskCounters {
	out := raw
	s.with(key, dir, func(devs *map[procfiles.Dev]*devState) bool {
		if *devs == nil {
			if len(raw) == 0 {
				// Nothing to remember yet: keep quiet containers cheap.
				return false
			}
			*devs = map[procfiles.Dev]*devState{}
		}
		out = foldDisks(*devs, raw, host)
		return true
	})
	return out
}

// foldDisks folds raw into one container's devices and returns what to show.
func foldDisks(devs map[procfiles.Dev]*devState, raw map[procfiles.Dev]procfiles.DiskCounters, host []procfiles.DiskstatsLine) map[procfiles.Dev]procfiles.DiskCounters {
	listed := make(map[procfiles.Dev]bool, len(host))
	for _, l := range host {
		listed[l.Dev] = true
	}
	for dev, r := range raw {
		if !listed[dev] {
			continue
		}
		d := devs[dev]
		if d == nil {
			d = &devState{}
			devs[dev] = d
		}
		for i := range r {
			d[i].fold(r[i])
		}
	}
	out := make(map[procfiles.Dev]procfiles.DiskCounters, len(devs))
	for dev, d := range devs {
		if !listed[dev] {
			delete(devs, dev)
			continue
		}
		var v procfiles.DiskCounters
		for i := range v {
			v[i] = d[i].shown()
		}
		out[dev] = v
	}
	return out
}
