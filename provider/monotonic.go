package provider

import (
	"sync"
	"syscall"
)

// counter is one counter a container sees, kept from going backwards when
// its source does. The rule:
//
//	shown = offset + raw
//
// where raw is what the cgroup says now. When raw drops below the last raw
// value (v1 blkio.reset_stats clears bfq's counters, a v1 device moves
// between bfq's and throttle's counters when its scheduler changes, a v1
// memory.stat total loses a removed child's events), the counter is taken
// to have restarted from zero: the last raw value is added to offset, so
// shown keeps growing from where it was.
type counter struct{ last, offset uint64 }

// fold takes the source's current value and returns the value to show.
func (c *counter) fold(raw uint64) uint64 {
	if raw < c.last {
		c.offset += c.last
	}
	c.last = raw
	return c.shown()
}

// shown is the value last shown.
func (c *counter) shown() uint64 { return c.offset + c.last }

// ctrStates keeps state of type T per container, between reads, for the
// counters of one served file. A container is its cgroup's key (Cgroup.Key)
// plus the cgroup directory's inode: a cgroup removed and made again under
// the same path is a new container, whose counters must not start from the
// old one's. forget drops the state of containers whose cgroup is gone.
type ctrStates[T any] struct {
	mu   sync.Mutex
	ctrs map[string]*ctrEntry[T]
}

type ctrEntry[T any] struct {
	dir   string
	ino   uint64
	state T
}

// with calls fn, under the lock, with the state of the container keyed key
// whose cgroup directory is dir. A container without state gets a zero T,
// which is kept only when fn returns true, so that containers with nothing
// to remember (no I/O yet, say) cost nothing. A cgroup that is going away
// (dir gone) gets a zero T that is not kept, and its old state is dropped.
func (s *ctrStates[T]) with(key, dir string, fn func(st *T) (keep bool)) {
	ino, ok := dirIno(dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		delete(s.ctrs, key)
		var zero T
		fn(&zero)
		return
	}
	e := s.ctrs[key]
	if e != nil && e.ino == ino && e.dir == dir {
		fn(&e.state)
		return
	}
	e = &ctrEntry[T]{dir: dir, ino: ino}
	if !fn(&e.state) {
		// Whatever was kept under key was another cgroup's.
		delete(s.ctrs, key)
		return
	}
	if s.ctrs == nil {
		s.ctrs = map[string]*ctrEntry[T]{}
	}
	s.ctrs[key] = e
}

// forget drops the state of containers whose cgroup is gone or was made
// anew.
func (s *ctrStates[T]) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.ctrs {
		if ino, ok := dirIno(e.dir); !ok || ino != e.ino {
			delete(s.ctrs, k)
		}
	}
}

// len is the number of containers with state, for tests.
func (s *ctrStates[T]) len() int {
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
