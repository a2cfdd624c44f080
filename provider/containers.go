// The containers the daemon tracks, and their figures for metrics, computed
// when asked (a scrape) by the same code that renders their files.

package provider

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/loadavg"
)

// Observer is told what the provider does, for metrics. Its methods run on
// the read path: they must be cheap and must not block.
type Observer interface {
	// ResolveFailed is told each time a caller's container could not be
	// found (the caller gone, its /proc files unreadable).
	ResolveFailed()
	// HostFallback is told each time a container got the host's figures
	// for file ("proc/meminfo") because its cgroup could not say, and
	// why (a short snake_case reason).
	HostFallback(file, reason string)
	// LoadRound is told how long each round of the load sampler took.
	LoadRound(took time.Duration)
}

type nopObserver struct{}

func (nopObserver) ResolveFailed()              {}
func (nopObserver) HostFallback(string, string) {}
func (nopObserver) LoadRound(time.Duration)     {}

// Host fallback reasons.
const (
	// FallbackNoMemoryController: a v2 cgroup without the memory
	// controller below the root; its pages are charged to the root.
	FallbackNoMemoryController = "no_memory_controller"
)

// seenTouchEvery is how stale a container's last-read time may get before
// a read refreshes it: the set only needs to know who read lately, and
// fewer stores keep readers of one container off each other's cache line.
const seenTouchEvery = time.Second

// seenSet is every container (cgroup) whose files were read, with the
// latest caller from it and when. Keyed by the resolver's parsed cgroup,
// which is one pointer for every process of one cgroup, so a read costs a
// map lookup and no allocation.
type seenSet struct {
	epoch time.Time
	m     sync.Map // *cgroupview.Cgroup -> *seenEntry
}

type seenEntry struct {
	caller atomic.Pointer[caller.Caller]
	last   atomic.Int64 // ns since epoch
}

func (s *seenSet) now() int64 { return int64(time.Since(s.epoch)) }

// touch records a read by c. Callers that see the host (the root cgroup
// of memory and every CPU controller) are no container.
func (s *seenSet) touch(c *caller.Caller) {
	if c.Cgroup.IsRoot(cgroupview.MemoryResource) && hostCPU(c) {
		return
	}
	now := s.now()
	v, ok := s.m.Load(c.Cgroup)
	if !ok {
		e := &seenEntry{}
		e.caller.Store(c)
		e.last.Store(now)
		v, _ = s.m.LoadOrStore(c.Cgroup, e)
	}
	e := v.(*seenEntry)
	if now-e.last.Load() >= int64(seenTouchEvery) {
		e.caller.Store(c)
		e.last.Store(now)
	}
}

// ContainerStats is what metrics export of one container, as its files
// show it. A nil pointer is a figure it does not have: memory for a
// container that sees the host's, load while untracked or not yet sampled.
type ContainerStats struct {
	// Cgroup is its memory cgroup's path from the hierarchy's root,
	// "/system.slice/docker-<id>.scope", as /proc/<pid>/cgroup shows it.
	Cgroup string
	// Load is its load average over 1, 5 and 15 minutes.
	Load *[3]float64
	// Memory is its MemTotal and MemAvailable, in bytes.
	Memory *MemoryStats
	// StealSeconds is the steal time of its /proc/stat.
	StealSeconds *float64
	// CPUs is how many CPUs its files show.
	CPUs int
}

// MemoryStats are a container's meminfo figures in bytes.
type MemoryStats struct {
	Total, Available uint64
}

// Containers returns the figures of every container whose files were read
// within the container idle time (Config.ContainerIdle), or, with all,
// every cgroup of the hierarchy, sorted by cgroup. It reads the cgroups
// now; containers whose cgroup is gone are dropped. Each one's CPU time is
// read as its /proc/stat would be, advancing the same counters.
func (p *Provider) Containers(all bool) []ContainerStats {
	callers := p.trackedCallers()
	if all {
		callers = p.allCgroups(callers)
	}
	out := make([]ContainerStats, 0, len(callers))
	for path, c := range callers {
		st, err := p.containerStats(c)
		if err != nil {
			if !errors.Is(err, errCgroupGone) {
				p.log.Debug("container figures for metrics", "cgroup", path, "err", err)
			}
			continue
		}
		st.Cgroup = path
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cgroup < out[j].Cgroup })
	return out
}

// TrackedContainers is how many containers Containers(false) would cover.
func (p *Provider) TrackedContainers() int { return len(p.trackedCallers()) }

var errCgroupGone = errors.New("cgroup removed")

// trackedCallers is the latest caller of each container read lately, by
// cgroup path; it forgets containers idle too long or whose cgroup is gone.
func (p *Provider) trackedCallers() map[string]*caller.Caller {
	now := p.seen.now()
	out := map[string]*caller.Caller{}
	newest := map[string]int64{}
	p.seen.m.Range(func(k, v any) bool {
		cg, e := k.(*cgroupview.Cgroup), v.(*seenEntry)
		last := e.last.Load()
		if p.cfg.ContainerIdle > 0 && time.Duration(now-last) > p.cfg.ContainerIdle || cgroupGone(cg) {
			p.seen.m.CompareAndDelete(k, v)
			return true
		}
		// The resolver's cache may hold two parses of one cgroup (it
		// starts afresh when full): the latest read wins.
		path := cg.Path(cgroupview.MemoryResource)
		if t, ok := newest[path]; !ok || last > t {
			newest[path] = last
			out[path] = e.caller.Load()
		}
		return true
	})
	return out
}

// cgroupGone tells whether the cgroup's directory was removed.
func cgroupGone(cg *cgroupview.Cgroup) bool {
	dir, err := cg.Dir(cgroupview.MemoryResource)
	if err != nil {
		dir, err = cg.Dir(cgroupview.CPUTimeResource)
	}
	if err != nil {
		return false
	}
	_, err = os.Stat(dir)
	return errors.Is(err, fs.ErrNotExist)
}

// allCgroups adds every cgroup of the memory hierarchy (v2: the tree) that
// callers lacks, as a caller in the host's pid namespace would see it.
func (p *Provider) allCgroups(callers map[string]*caller.Caller) map[string]*caller.Caller {
	h := p.cfg.Cgroups.Hierarchy()
	root, ok := h.RootDir(cgroupview.MemoryResource)
	if !ok {
		return callers
	}
	self := os.Getpid()
	filepath.WalkDir(root, func(d string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() || d == root {
			return nil
		}
		rel, err := filepath.Rel(root, d)
		if err != nil {
			return nil
		}
		path := "/" + filepath.ToSlash(rel)
		if _, ok := callers[path]; !ok {
			callers[path] = &caller.Caller{Pid: self, HostNS: true, InitPid: self, Cgroup: cgroupview.NewCgroup(h, path)}
		}
		return nil
	})
	return callers
}

// containerStats computes one container's figures.
func (p *Provider) containerStats(c *caller.Caller) (ContainerStats, error) {
	var st ContainerStats
	if cgroupGone(c.Cgroup) {
		return st, errCgroupGone
	}
	if hostCPU(c) {
		cpus, err := p.onlineCPUs.get(p.readOnlineCPUs)
		if err != nil {
			return st, err
		}
		st.CPUs = len(cpus)
	} else {
		t, err := p.ContainerCPUTimes(c)
		if err != nil {
			return st, err
		}
		st.CPUs = t.VisibleCPUs
		steal := float64(t.Steal) / 1e9
		st.StealSeconds = &steal
	}
	if !c.Cgroup.IsRoot(cgroupview.MemoryResource) {
		r := p.readContainerMemory(c)
		if r.err != nil {
			return st, r.err
		}
		if m := r.view.container; m != nil {
			st.Memory = &MemoryStats{Total: m.Total, Available: m.Available}
		}
	}
	if p.load != nil && !c.Cgroup.IsRoot(loadResource) {
		if dir, err := c.Cgroup.Dir(loadResource); err == nil {
			// A tracked container's load is tracked while it is, also
			// when it reads other files than loadavg.
			if snap := p.load.Touch(dir); snap.Samples > 0 {
				st.Load = &[3]float64{loadFloat(snap.Avg[0]), loadFloat(snap.Avg[1]), loadFloat(snap.Avg[2])}
			}
		}
	}
	return st, nil
}

func loadFloat(fixed uint64) float64 { return float64(fixed) / loadavg.Fixed1 }
