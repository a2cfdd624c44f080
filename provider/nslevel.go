package provider

import (
	"sync"

	"github.com/cgprocfs/cgprocfs/caller"
)

// nsLevel is how deep the caller's pid namespace is: the length of its
// init's NSpid, cached per namespace (a namespace's depth never changes; the
// key holds the init and its start time too, since a namespace inode number
// may be reused by a later namespace).
func (p *Provider) nsLevel(c *caller.Caller) (int, bool) {
	key := nsKey{c.PidNS, c.InitPid, c.InitStart}
	p.nsLevels.mu.Lock()
	l, ok := p.nsLevels.m[key]
	p.nsLevels.mu.Unlock()
	if ok {
		return l, true
	}
	ns, err := p.cfg.FS.NSpid(c.InitPid)
	if err != nil || len(ns) == 0 {
		return 0, false
	}
	p.nsLevels.mu.Lock()
	if p.nsLevels.m == nil || len(p.nsLevels.m) > 4096 {
		p.nsLevels.m = map[nsKey]int{}
	}
	p.nsLevels.m[key] = len(ns)
	p.nsLevels.mu.Unlock()
	return len(ns), true
}

// nsLevelCache maps pid namespaces to their depth.
type nsLevelCache struct {
	mu sync.Mutex
	m  map[nsKey]int
}

type nsKey struct {
	ns    uint64
	init  int
	start uint64
}
