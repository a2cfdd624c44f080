package loadavg

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// Counts is what one sample finds in a cgroup.
type Counts struct {
	// Running is threads in state R (running or runnable), Uninterruptible
	// threads in state D: the two the kernel's load average counts.
	Running, Uninterruptible uint64
	// Total is all threads counted.
	Total uint64
	// Newest are the highest thread ids counted, highest first (0: none):
	// the newest threads unless pids wrapped around, for the last field of
	// /proc/loadavg.
	Newest [3]int
}

// Active is the number the load average folds in.
func (c Counts) Active() uint64 { return c.Running + c.Uninterruptible }

// Add sums two counts.
func (c Counts) Add(o Counts) Counts {
	n := Counts{Running: c.Running + o.Running, Uninterruptible: c.Uninterruptible + o.Uninterruptible, Total: c.Total + o.Total, Newest: c.Newest}
	for _, t := range o.Newest {
		n.NoteNewest(t)
	}
	return n
}

// NoteNewest keeps tid among Newest if it is one of the highest seen.
func (c *Counts) NoteNewest(tid int) {
	for i := range c.Newest {
		if tid > c.Newest[i] {
			copy(c.Newest[i+1:], c.Newest[i:len(c.Newest)-1])
			c.Newest[i] = tid
			return
		}
	}
}

// Counter counts the threads directly in one cgroup (not its descendants;
// the tracker walks those). Count is called from one goroutine at a time.
type Counter interface {
	Count(dirfd int, dir string) (Counts, error)
	// EndRound tells the counter one sample of every tracked cgroup is
	// done, so it can drop per-thread state of threads not seen since.
	EndRound()
	Close() error
	Name() string
}

// ErrGone is returned when the cgroup directory was removed.
var ErrGone = errors.New("cgroup is gone")

// CgroupstatsCounter counts with the TASKSTATS netlink family's
// CGROUPSTATS_CMD_GET: one syscall pair per cgroup, no per-thread I/O. It is
// exact for R, and for D only where the sleep is plain TASK_UNINTERRUPTIBLE
// or an I/O wait: cgroupstats_build buckets task->__state by exact value, so
// a TASK_KILLABLE or freezable uninterruptible sleep that is not an I/O wait
// (mmap_lock contention, a vfork parent) is in no bucket, and neither is a
// freezable interruptible sleep such as nanosleep, so Total undercounts.
// cgroup v1 only.
type CgroupstatsCounter struct{ nl *Netlink }

// NewCgroupstatsCounter opens the netlink socket.
func NewCgroupstatsCounter() (*CgroupstatsCounter, error) {
	nl, err := OpenNetlink()
	if err != nil {
		return nil, err
	}
	return &CgroupstatsCounter{nl: nl}, nil
}

func (c *CgroupstatsCounter) Count(dirfd int, dir string) (Counts, error) {
	s, err := c.nl.CgroupStats(dirfd)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Counts{}, fmt.Errorf("%w: %s", ErrGone, dir)
		}
		return Counts{}, fmt.Errorf("cgroupstats of %s: %w", dir, err)
	}
	return Counts{Running: s.Running, Uninterruptible: s.Uninterruptible + s.IOWait, Total: s.Sum()}, nil
}

func (c *CgroupstatsCounter) EndRound()    {}
func (c *CgroupstatsCounter) Close() error { return c.nl.Close() }
func (c *CgroupstatsCounter) Name() string { return "cgroupstats" }

// threadList reads a cgroup's own thread list ("tasks" on v1,
// "cgroup.threads" on v2) through the cgroup's directory descriptor, reusing
// its slice from one cgroup to the next.
type threadList struct {
	fs   *kernelfs.FS
	file string
	tids []int
}

// read returns the thread ids, valid until the next read; ErrGone when the
// cgroup was removed.
func (l *threadList) read(dirfd int, dir string) ([]int, error) {
	tids, err := l.fs.Threads(dirfd, l.file, l.tids[:0])
	l.tids = tids
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%w: %s", ErrGone, dir)
		}
		return nil, fmt.Errorf("reading %s/%s: %w", dir, l.file, err)
	}
	return tids, nil
}
