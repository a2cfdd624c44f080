package provider

import (
	"sync"
	"syscall"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// diskState keeps, for every container that read /proc/diskstats, what its
// cgroup's counters were at the last read, so that the file's counters only
// ever grow. The rule, per device and counter:
//
//	shown = offset + raw
//
// where raw is what the cgroup says now. When raw drops below the last raw
// value (v1 blkio.reset_stats clears bfq's counters, a v1 device moves
// between bfq's and throttle's counters when its scheduler changes), the
// counter is taken to have restarted from zero: the last raw value is added
// to offset, so shown keeps growing from where it was. A device whose counters vanish keeps its line with the last values
// while the host lists it; a device the host no longer lists is forgotten,
// so a new device that reuses its number starts at zero.
type diskState struct {
	mu   sync.Mutex
	ctrs map[string]*ctrDisks
}

// ctrDisks is one container's state.
type ctrDisks struct {
	// dir is the cgroup's directory and ino its inode: a cgroup removed
	// and made again under the same path is a new container, whose
	// counters must not start from the old one's.
	dir  string
	ino  uint64
	devs map[procfiles.Dev]*devState
}

type devState struct {
	last, offset procfiles.DiskCounters
}

// update folds the cgroup's current counters raw into the state of the
// container keyed key (cgroup directory dir) and returns the counters to
// show, for devices in host only.
func (s *diskState) update(key, dir string, raw map[procfiles.Dev]procfiles.DiskCounters, host []procfiles.DiskstatsLine) map[procfiles.Dev]procfiles.DiskCounters {
	ino, ok := dirIno(dir)
	if !ok {
		// The cgroup is going away; show what it has, keep nothing.
		s.mu.Lock()
		delete(s.ctrs, key)
		s.mu.Unlock()
		return raw
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctrs == nil {
		s.ctrs = map[string]*ctrDisks{}
	}
	c := s.ctrs[key]
	if c == nil || c.ino != ino || c.dir != dir {
		if len(raw) == 0 {
			// Nothing to remember yet: keep quiet containers cheap.
			return raw
		}
		c = &ctrDisks{dir: dir, ino: ino, devs: map[procfiles.Dev]*devState{}}
		s.ctrs[key] = c
	}
	out := make(map[procfiles.Dev]procfiles.DiskCounters, len(c.devs)+len(raw))
	listed := make(map[procfiles.Dev]bool, len(host))
	for _, l := range host {
		listed[l.Dev] = true
	}
	for dev, r := range raw {
		if !listed[dev] {
			continue
		}
		d := c.devs[dev]
		if d == nil {
			d = &devState{}
			c.devs[dev] = d
		}
		for i := range r {
			if r[i] < d.last[i] {
				d.offset[i] += d.last[i]
			}
			d.last[i] = r[i]
		}
	}
	for dev, d := range c.devs {
		if !listed[dev] {
			delete(c.devs, dev)
			continue
		}
		var v procfiles.DiskCounters
		for i := range v {
			v[i] = d.offset[i] + d.last[i]
		}
		out[dev] = v
	}
	return out
}

// forget drops the state of containers whose cgroup is gone or was made
// anew.
func (s *diskState) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.ctrs {
		if ino, ok := dirIno(c.dir); !ok || ino != c.ino {
			delete(s.ctrs, k)
		}
	}
}

// len is the number of containers with state, for tests.
func (s *diskState) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ctrs)
}

func dirIno(dir string) (uint64, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, false
	}
	return st.Ino, true
}
