package provider

import (
	"os"
	"path/filepath"
	"time"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
)

// taskScan is what the container's threads say: how many are runnable (R)
// and in uninterruptible sleep (D), for procs_running and procs_blocked, and
// how long each waited on a runqueue so far (ns, from
// /proc/<tid>/schedstat), for steal.
type taskScan struct {
	running, blocked uint64
	waits            map[int]uint64
}

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
		for _, tid := range tids {
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
		a.tasks, a.scanned = p.scanTasks(c), now
		return a.tasks
	}
	if now-a.scanned >= taskScanMaxAge && !a.scanning {
		a.scanning = true
		p.wg.Go(func() {
			ts := p.scanTasks(c)
			taken, _ := bootNanos()
			a.mu.Lock()
			a.tasks, a.scanned, a.scanning = ts, taken, false
			a.mu.Unlock()
		})
	}
	return a.tasks
}
