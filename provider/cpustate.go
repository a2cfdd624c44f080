package provider

import (
	"math/bits"
	"os"
	"sync"

	"github.com/cgprocfs/cgprocfs/cgroupview"
)

// cpuTimes is one line of a container's /proc/stat, in nanoseconds (the
// file shows them in USER_HZ ticks of 10 ms).
type cpuTimes struct {
	User, System, Steal, Idle uint64
}

func (t cpuTimes) sum() uint64 { return t.User + t.System + t.Steal + t.Idle }

func (t *cpuTimes) add(o cpuTimes) {
	t.User += o.User
	t.System += o.System
	t.Steal += o.Steal
	t.Idle += o.Idle
}

// cpuLine is a cpuN line's counters and its capacity: the wall time it was
// visible for, which its four counters fill.
type cpuLine struct {
	cpuTimes
	capacity uint64
}

// cpuAcct is the state behind one container's /proc/stat. The file's
// counters are not computed from the cgroup's totals on each read but
// accumulated from the changes between reads, so that they only ever grow,
// whatever happens to the cpuset, the quota or the cgroup's own counters:
//
//   - every visible line gains the wall time since the last read as
//     capacity;
//   - user and system grow by the cgroup's new user and system time (v1:
//     each host CPU's to the line showing it, time on CPUs not shown spread
//     evenly; v2: all of it spread evenly);
//   - steal grows by the time the container's threads waited for a CPU
//     (their runqueue wait from schedstat, which includes the time the
//     CFS quota held them back; at least the cgroup's new throttled time),
//     at most the room left on the lines (capacity not yet filled), shared
//     in proportion to that room: a container that had work and no CPU to
//     run it on was denied that CPU, by its quota or by the host's other
//     tasks, as a VM is by its hypervisor;
//   - idle takes the rest of the room.
//
// A line whose user and system outgrew its capacity (a burst over a short
// interval) owes the excess: it gets no idle or steal until its capacity
// has caught up, so over time the four counters add up to the line's wall
// time. The `cpu` line adds up what the cpuN lines gained, so it also grows
// when a line disappears.
type cpuAcct struct {
	mu sync.Mutex
	// dir is a directory of the cgroup; the state goes when it does.
	dir   string
	last  int64 // CLOCK_BOOTTIME ns of the last update
	raw   cgroupview.CPUUsage
	waits map[int]uint64 // runqueue wait of each thread at the last scan
	// waitGrowth is the runqueue wait the threads gained over the scans
	// that landed since the last update (noteScan): summed once per scan,
	// not per read, which would cost every read the container's threads.
	waitGrowth uint64
	lines      []cpuLine
	total      cpuTimes
	// tasks is the latest scan of the container's threads, taken at
	// scanned (CLOCK_BOOTTIME ns); scanning is set while a scan runs in
	// the background (see latestTasks).
	tasks    taskScan
	scanned  int64
	scanning bool
}

// cpuState holds the accumulators of every container read so far.
type cpuState struct {
	mu    sync.Mutex
	accts map[string]*cpuAcct
}

// get returns the accumulator for key, and whether it is new.
func (s *cpuState) get(key, dir string) (*cpuAcct, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accts == nil {
		s.accts = map[string]*cpuAcct{}
	}
	a, ok := s.accts[key]
	if !ok {
		a = &cpuAcct{dir: dir}
		s.accts[key] = a
	}
	return a, !ok
}

// forget drops the state of cgroups that no longer exist.
func (s *cpuState) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, a := range s.accts {
		if _, err := os.Stat(a.dir); os.IsNotExist(err) {
			delete(s.accts, k)
		}
	}
}

// update folds a new reading into the accumulator and returns the visible
// lines and the total. now and start are CLOCK_BOOTTIME nanoseconds; start
// (the container's start) only matters on the first update, which treats
// the time since start as one interval and then forgives any excess of
// user and system over it, as that history predates the daemon.
//
// The threads' runqueue wait comes from the scans noted since the last
// update (noteScan).
func (a *cpuAcct) update(now, start int64, cpus []int, u cgroupview.CPUUsage) ([]cpuTimes, cpuTimes) {
	n := len(cpus)
	first := a.last == 0
	var wall uint64
	if first {
		if start > now {
			start = now
		}
		wall = uint64(now - start)
	} else if now > a.last {
		wall = uint64(now - a.last)
	}
	if now > a.last {
		a.last = now
	}
	for len(a.lines) < n {
		a.lines = append(a.lines, cpuLine{})
	}

	user, sys := make([]uint64, n), make([]uint64, n)
	if u.PerCPU != nil {
		shown := make(map[int]int, n)
		for i, c := range cpus {
			shown[c] = i
		}
		var restU, restS uint64
		for c, t := range u.PerCPU {
			var prev cgroupview.CPUTime
			if c < len(a.raw.PerCPU) {
				prev = a.raw.PerCPU[c]
			}
			du, ds := delta(t.User, prev.User), delta(t.System, prev.System)
			if i, ok := shown[c]; ok {
				user[i] += du
				sys[i] += ds
			} else {
				restU += du
				restS += ds
			}
		}
		spread(user, restU)
		spread(sys, restS)
	} else {
		spread(user, delta(u.User, a.raw.User))
		spread(sys, delta(u.System, a.raw.System))
	}
	steal := max(delta(u.Throttled, a.raw.Throttled), a.waitGrowth)
	a.raw, a.waitGrowth = u, 0

	room := make([]uint64, n)
	var rooms uint64
	for i := range n {
		l := &a.lines[i]
		l.capacity += wall
		l.User += user[i]
		l.System += sys[i]
		if s := l.sum(); l.capacity > s {
			room[i] = l.capacity - s
			rooms += room[i]
		}
	}
	steal = min(steal, rooms)
	out := make([]cpuTimes, n)
	for i := range n {
		l := &a.lines[i]
		st := mulDiv(room[i], steal, rooms)
		d := cpuTimes{User: user[i], System: sys[i], Steal: st, Idle: room[i] - st}
		l.Steal += d.Steal
		l.Idle += d.Idle
		a.total.add(d)
		if first {
			l.capacity = max(l.capacity, l.sum())
		}
		out[i] = l.cpuTimes
	}
	return out, a.total
}

// noteScan takes a new scan of the container's threads, taken at (CLOCK_
// BOOTTIME ns), with a.mu held: the runqueue wait each thread gained since
// the last scan (all of it for a thread not seen then) waits for the next
// update.
func (a *cpuAcct) noteScan(ts taskScan, at int64) {
	for tid, w := range ts.waits {
		a.waitGrowth += delta(w, a.waits[tid])
	}
	a.waits, a.tasks, a.scanned = ts.waits, ts, at
}

// delta is cur-prev, or 0 when a counter went back (a v1 cpuacct.usage
// reset, a cgroup removed and made again under the same name).
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return 0
	}
	return cur - prev
}

// spread adds v evenly to every element, the remainder to the first ones.
func spread(to []uint64, v uint64) {
	if len(to) == 0 || v == 0 {
		return
	}
	n := uint64(len(to))
	each, rest := v/n, v%n
	for i := range to {
		to[i] += each
		if uint64(i) < rest {
			to[i]++
		}
	}
}

// mulDiv is a*b/c for a <= c, b <= c without overflow; 0 when c is 0.
func mulDiv(a, b, c uint64) uint64 {
	if c == 0 {
		return 0
	}
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c)
	return q
}
