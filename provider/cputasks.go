package provider

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/cgroupview"
)

// maxTaskFDs bounds the threads per container whose /proc files stay open
// between reads (two descriptors each); threads beyond it are read by path.
const maxTaskFDs = 1024

// taskScan is what the container's threads say: how many are runnable (R)
// and in uninterruptible sleep (D), for procs_running and procs_blocked, and
// how long each waited on a runqueue so far (ns, from
// /proc/<tid>/schedstat), for steal.
type taskScan struct {
	running, blocked uint64
	waits            map[int]uint64
}

// taskFiles keeps each thread's /proc/<tid>/stat and schedstat open and
// re-reads them with pread at offset 0, which makes procfs generate fresh
// content: an open costs several times a read, and /proc/stat is read on
// every refresh of top. A descriptor stays bound to the thread it was
// opened for, so a thread id reused by another thread gives an error on
// the old descriptor, which is then opened afresh. Guarded by the
// cpuAcct's lock.
type taskFiles struct {
	fds map[int][2]int
	buf [512]byte
}

// scan looks at the threads of the caller's cgroup and every cgroup below.
// Errors count as nothing: a thread that exits mid-walk is not worth
// failing the file for.
func (tf *taskFiles) scan(c *cgroupview.Caller) taskScan {
	ts := taskScan{waits: map[int]uint64{}}
	dir, err := c.Cgroup.Dir("cpuacct")
	if err != nil {
		return ts
	}
	name := "tasks"
	if c.Cgroup.Hierarchy().Mode == cgroupview.Unified {
		name = "cgroup.threads"
	}
	if tf.fds == nil {
		tf.fds = map[int][2]int{}
	}
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		data, _ := os.ReadFile(filepath.Join(d, name))
		for _, f := range bytes.Fields(data) {
			tid, err := strconv.Atoi(string(f))
			if err != nil || tid <= 0 {
				continue
			}
			state, wait, ok := tf.read(tid)
			if !ok {
				continue
			}
			switch state {
			case 'R':
				ts.running++
			case 'D':
				ts.blocked++
			}
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
	// Threads gone since the last scan close their files.
	for tid, fds := range tf.fds {
		if _, ok := ts.waits[tid]; !ok {
			closeFDs(fds)
			delete(tf.fds, tid)
		}
	}
	return ts
}

// read gives a thread's state and runqueue wait, from cached descriptors
// when it has them. Threads are looked up in the real /proc, as callers
// are.
func (tf *taskFiles) read(tid int) (state byte, wait uint64, ok bool) {
	if fds, cached := tf.fds[tid]; cached {
		if state, wait, ok = tf.readFDs(fds); ok {
			return state, wait, true
		}
		closeFDs(fds)
		delete(tf.fds, tid)
	}
	fds, err := openTask(tid)
	if err != nil {
		return 0, 0, false
	}
	state, wait, ok = tf.readFDs(fds)
	if ok && len(tf.fds) < maxTaskFDs {
		tf.fds[tid] = fds
	} else {
		closeFDs(fds)
	}
	return state, wait, ok
}

func (tf *taskFiles) readFDs(fds [2]int) (state byte, wait uint64, ok bool) {
	n, err := unix.Pread(fds[0], tf.buf[:], 0)
	if err != nil || n <= 0 {
		return 0, 0, false
	}
	if state = taskState(tf.buf[:n]); state == 0 {
		return 0, 0, false
	}
	// A kernel without schedstat (no CONFIG_SCHED_INFO) has no file:
	// the thread still counts, with no wait.
	if fds[1] >= 0 {
		if n, err := unix.Pread(fds[1], tf.buf[:], 0); err == nil && n > 0 {
			wait, _ = schedWait(tf.buf[:n])
		}
	}
	return state, wait, true
}

func openTask(tid int) ([2]int, error) {
	base := "/proc/" + strconv.Itoa(tid)
	st, err := unix.Open(base+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return [2]int{-1, -1}, err
	}
	sched, err := unix.Open(base+"/schedstat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		sched = -1
	}
	return [2]int{st, sched}, nil
}

func closeFDs(fds [2]int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// close closes every cached descriptor.
func (tf *taskFiles) close() {
	for tid, fds := range tf.fds {
		closeFDs(fds)
		delete(tf.fds, tid)
	}
}

// schedWait is the second field of /proc/<tid>/schedstat ("run_ns wait_ns
// timeslices"): the time the thread spent runnable on a runqueue, waiting
// for a CPU. It includes the time a CFS quota held it back.
func schedWait(b []byte) (uint64, bool) {
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	w, err := strconv.ParseUint(string(f[1]), 10, 64)
	return w, err == nil
}

// taskState is the state letter of a /proc/<tid>/stat, after the last ')'.
func taskState(b []byte) byte {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}
