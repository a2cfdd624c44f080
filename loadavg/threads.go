package loadavg

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// ThreadsCounter lists a cgroup's threads (v1 "tasks", v2
// "cgroup.threads") and reads each thread's state from /proc/<tid>/stat:
// exact, since the stat letter D is the kernel's own test for a task that
// contributes to the load (TASK_UNINTERRUPTIBLE set, TASK_NOLOAD not).
//
// Opening /proc/<tid>/stat costs far more than reading it (a procfs path
// walk per thread), so the counter keeps one descriptor per thread and
// re-reads it with pread at offset 0, which regenerates the line. A
// descriptor pins the thread's struct pid, not its number: once the thread
// exits the read fails with ESRCH, so a reused tid is never read through an
// old descriptor. Descriptors of threads not seen for a round are closed,
// and at most maxFDs are kept; threads beyond that are opened per read.
type ThreadsCounter struct {
	procRoot string
	list     threadList
	maxFDs   int

	round uint64
	fds   map[int]*tidFD
	stat  []byte
}

type tidFD struct {
	fd    int
	round uint64
}

// NewThreadsCounter makes a counter that reads threads from the cgroup file
// tidsFile ("tasks" on v1, "cgroup.threads" on v2) and their states from
// procRoot, keeping at most maxFDs descriptors open.
func NewThreadsCounter(procRoot, tidsFile string, maxFDs int) *ThreadsCounter {
	return &ThreadsCounter{
		procRoot: procRoot, list: newThreadList(tidsFile), maxFDs: maxFDs,
		fds: map[int]*tidFD{}, stat: make([]byte, 1024),
	}
}

func (c *ThreadsCounter) Name() string { return "threads" }

func (c *ThreadsCounter) Count(dirfd int, dir string) (Counts, error) {
	tids, err := c.list.read(dirfd, dir)
	if err != nil {
		return Counts{}, err
	}
	var n Counts
	for _, tid := range tids {
		st, ok := c.state(tid)
		if !ok {
			continue // exited since the list was read
		}
		n.Total++
		switch st {
		case 'R':
			n.Running++
		case 'D':
			n.Uninterruptible++
		}
	}
	return n, nil
}

// state reads one thread's state letter; false when the thread is gone.
func (c *ThreadsCounter) state(tid int) (byte, bool) {
	if e, ok := c.fds[tid]; ok {
		e.round = c.round
		data, err := readAt(e.fd, c.stat, true)
		if err == nil {
			if s, err := ParseStatState(data); err == nil {
				return s, true
			}
		}
		// ESRCH: the thread behind this descriptor exited; the tid in
		// the list may be a new thread with the same number.
		unix.Close(e.fd)
		delete(c.fds, tid)
	}
	fd, err := unix.Open(c.procRoot+"/"+strconv.Itoa(tid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, false
	}
	data, err := readAt(fd, c.stat, true)
	if err != nil {
		unix.Close(fd)
		return 0, false
	}
	s, err := ParseStatState(data)
	if err != nil {
		unix.Close(fd)
		return 0, false
	}
	if len(c.fds) < c.maxFDs {
		c.fds[tid] = &tidFD{fd: fd, round: c.round}
	} else {
		unix.Close(fd)
	}
	return s, true
}

// EndRound closes the descriptors of threads not counted this round.
func (c *ThreadsCounter) EndRound() {
	for tid, e := range c.fds {
		if e.round != c.round {
			unix.Close(e.fd)
			delete(c.fds, tid)
		}
	}
	c.round++
}

// OpenFDs is how many thread descriptors are kept, for tests and logs.
func (c *ThreadsCounter) OpenFDs() int { return len(c.fds) }

func (c *ThreadsCounter) Close() error {
	for tid, e := range c.fds {
		unix.Close(e.fd)
		delete(c.fds, tid)
	}
	return nil
}
