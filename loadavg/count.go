package loadavg

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// Counts is what one sample finds in a cgroup.
type Counts struct {
	// Running is threads in state R (running or runnable), Uninterruptible
	// threads in state D: the two the kernel's load average counts.
	Running, Uninterruptible uint64
	// Total is all threads counted.
	Total uint64
}

// Active is the number the load average folds in.
func (c Counts) Active() uint64 { return c.Running + c.Uninterruptible }

// Add sums two counts.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.Running + o.Running, c.Uninterruptible + o.Uninterruptible, c.Total + o.Total}
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
// its buffers from one cgroup to the next.
type threadList struct {
	file string
	buf  []byte
	tids []int
}

func newThreadList(file string) threadList {
	return threadList{file: file, buf: make([]byte, 4096)}
}

// read returns the thread ids, valid until the next read; ErrGone when the
// cgroup was removed.
func (l *threadList) read(dirfd int, dir string) ([]int, error) {
	fd, err := unix.Openat(dirfd, l.file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%w: %s", ErrGone, dir)
		}
		return nil, fmt.Errorf("opening %s/%s: %w", dir, l.file, err)
	}
	data, err := readAt(fd, l.buf, false)
	unix.Close(fd)
	if cap(data) > cap(l.buf) {
		l.buf = data[:cap(data)]
	}
	if err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%w: %s", ErrGone, dir)
		}
		return nil, fmt.Errorf("reading %s/%s: %w", dir, l.file, err)
	}
	l.tids, err = ParseTids(data, l.tids[:0])
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", dir, l.file, err)
	}
	return l.tids, nil
}

// ParseTids parses a cgroup's tasks or cgroup.threads file: one id a line.
func ParseTids(data []byte, tids []int) ([]int, error) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data
		if i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			continue
		}
		t, err := strconv.Atoi(string(line))
		if err != nil || t <= 0 {
			return tids, fmt.Errorf("malformed thread id %q", line)
		}
		tids = append(tids, t)
	}
	return tids, nil
}

// ParseStatState returns the state letter of a /proc/<tid>/stat line: the
// field after the last ')', since the command name may hold both spaces and
// parentheses.
func ParseStatState(data []byte) (byte, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 || i+2 >= len(data) || data[i+1] != ' ' {
		return 0, errors.New("malformed stat: no state after the command name")
	}
	s := data[i+2]
	if s < 'A' || s > 'z' {
		return 0, fmt.Errorf("malformed stat: state %q", s)
	}
	return s, nil
}

// readAt reads a file from fd at offset 0 into buf, growing it as needed;
// each read of a seq_file at offset 0 regenerates the content. With single
// set the file is one seq_file record (/proc/<tid>/stat), which the kernel
// hands out whole to a large enough buffer, so a short read is the end and
// saves the second, empty read.
func readAt(fd int, buf []byte, single bool) ([]byte, error) {
	n := 0
	for {
		m, err := unix.Pread(fd, buf[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf[:n], err
		}
		if m == 0 {
			return buf[:n], nil
		}
		short := n+m < len(buf)
		n += m
		if single && short {
			return buf[:n], nil
		}
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
	}
}
