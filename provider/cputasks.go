package provider

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/loadavg"
)

// taskScan is what the container's threads say: how many are runnable (R)
// and in uninterruptible sleep (D), for procs_running and procs_blocked, and
// how long each waited on a runqueue so far (ns, from
// /proc/<tid>/schedstat), for steal.
type taskScan struct {
	running, blocked uint64
	waits            map[int]uint64
}

// scanYieldEvery is how many threads a scan reads between yields: the
// daemon runs Go code on one P (cgprocfs mount --gomaxprocs), and a scan of
// a thousand threads would otherwise hold it while reads wait.
const scanYieldEvery = 16

// scanTasks looks at the threads of the caller's cgroup and every cgroup
// below. The threads' stat and schedstat files are read through kernelfs,
// which keeps their descriptors between reads (top re-reads /proc/stat
// every few seconds). Errors count as nothing: a thread that exits mid-walk
// is not worth failing the file for.
func (p *Provider) scanTasks(c *caller.Caller) taskScan {
	ts := taskScan{waits: map[int]uint64{}}
	dir, err := c.Cgroup.Dir(cgroupview.CPUTimeResource)
	if err != nil {
		return ts
	}
	name := p.cfg.Cgroups.ThreadsFile()
	var tids []int
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		tids, _ = p.cfg.FS.ThreadsAt(d, name, tids[:0])
		for i, tid := range tids {
			if i%scanYieldEvery == scanYieldEvery-1 {
				runtime.Gosched()
			}
			state, err := p.cfg.FS.PidState(tid)
			if err != nil {
				continue
			}
			switch state {
			case 'R':
				ts.running++
			case 'D':
				ts.blocked++
			}
			// A kernel without schedstat (no CONFIG_SCHED_INFO)
			// has no file: the thread still counts, with no wait.
			wait, _ := p.cfg.FS.SchedWait(tid)
			ts.waits[tid] = wait
		}
		if depth >= 32 {
			return
		}
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() {
				walk(filepath.Join(d, e.Name()), depth+1)
			}
		}
	}
	walk(dir, 0)
	return ts
}

// taskScanMaxAge is how old a container's thread scan may be before a read
// of its /proc/stat starts a new one.
const taskScanMaxAge = int64(time.Second)

// latestTasks gives the accumulator's latest thread scan, with a.mu held.
// Scanning walks every thread of the container (two /proc files each), so a
// read never waits for it but the first: a scan older than taskScanMaxAge
// starts a new one in the background, and the read goes on with the last.
// What procs_running, procs_blocked and steal show is then at most about a
// second old; no wait is lost, since steal folds in the growth of each
// thread's cumulative runqueue wait whenever a new scan lands.
func (p *Provider) latestTasks(a *cpuAcct, c *caller.Caller, now int64) taskScan {
	if a.scanned == 0 {
		a.noteScan(p.scanTasks(c), now)
		return a.tasks
	}
	if now-a.scanned >= taskScanMaxAge && !a.scanning {
		a.scanning = true
		p.wg.Go(func() {
			ts := p.scanTasks(c)
			taken, _ := bootNanos()
			a.mu.Lock()
			a.noteScan(ts, taken)
			a.scanning = false
			a.mu.Unlock()
		})
	}
	return a.tasks
}

// liveMaxAge is how old the task states behind procs_running and
// procs_blocked may be: a read of /proc/stat that finds them older runs the
// BPF iterator again (one kernel walk for the whole host, shared by every
// container that reads meanwhile).
const liveMaxAge = 100 * time.Millisecond

// liveTasks counts a container's running and blocked threads from a BPF
// walk's states. With the cgroup iterator (cgroups), the walk covers the
// container's cgroup and those below it: every tid it found runnable or in
// uninterruptible sleep is the container's. Without it (before Linux 6.7),
// the walk covers every task on the host, and the tids it found (a few,
// whatever the containers' thread counts) are each looked up in
// /proc/<tid>/cgroup once per snapshot. Either way no read lists the
// container's threads.
type liveTasks struct {
	states  *loadavg.BPFCounter
	cgroups *loadavg.CgroupTasks
	// warned is set once a failed run has been logged.
	warned atomic.Bool

	mu   sync.Mutex
	snap *loadavg.TaskStates
	// paths is the loadResource cgroup of each tid of snap ("" when it
	// could not be read: it exited).
	paths map[int]string
}

// liveCounts gives procs_running and procs_blocked for c, read by thread
// reader: the container's threads (its cgroup and every one below) that
// the kernel counted runnable or uninterruptible at most liveMaxAge ago.
// The reading thread itself counts as running, as the kernel's own file
// counts the thread that reads it (at the snapshot it was likely waiting
// on this very read).
func (p *Provider) liveCounts(c *caller.Caller, reader uint32) (running, blocked uint64, err error) {
	l := p.live
	if l.cgroups != nil {
		dir, err := c.Cgroup.Dir(loadResource)
		if err != nil {
			return 0, 0, err
		}
		snap, err := l.cgroups.Fresh(dir, liveMaxAge)
		if err != nil {
			return 0, 0, err
		}
		running = 1
		for tid, st := range snap.States {
			switch {
			case tid == int(reader):
			case st == 'R':
				running++
			default:
				blocked++
			}
		}
		return running, blocked, nil
	}
	snap, err := l.states.Fresh(liveMaxAge)
	if err != nil {
		return 0, 0, err
	}
	dir := c.Cgroup.Path(loadResource)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.snap != snap {
		l.snap, l.paths = snap, make(map[int]string, len(snap.States))
	}
	running = 1
	for tid, st := range snap.States {
		if tid == int(reader) {
			continue
		}
		path, ok := l.paths[tid]
		if !ok {
			path = p.threadCgroup(tid)
			l.paths[tid] = path
		}
		if path != dir && !strings.HasPrefix(path, dir+"/") {
			continue
		}
		if st == 'R' {
			running++
		} else {
			blocked++
		}
	}
	return running, blocked, nil
}

// threadCgroup is tid's loadResource cgroup path, "" when it cannot be
// read (the thread exited).
func (p *Provider) threadCgroup(tid int) string {
	buf := p.cfg.FS.GetBuf()
	defer p.cfg.FS.PutBuf(buf)
	data, err := p.cfg.FS.PidFile(tid, "cgroup", buf)
	if err != nil || len(data) == 0 {
		return ""
	}
	cg, err := p.cfg.Cgroups.ParseProcCgroup(data)
	if err != nil {
		return ""
	}
	return cg.Path(loadResource)
}
