package loadavg

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// CgroupTasks gives the tasks that the kernel's load average counts in one
// cgroup and every cgroup below it, from the BPF cgroup iterator
// (bpf/tasks.bpf.c, loadavg_cgroup_tasks) attached to that cgroup for each
// run: a run walks the container's tasks only, where BPFCounter.Fresh walks
// every task on the host, which on a host of 1,000 containers (14,000
// threads) cost a container's /proc/stat reads about a tenth of their speed.
// It needs the css_task iterator kfuncs (Linux 6.7 and later) and works on
// cgroup v1 and v2 directories alike.
type CgroupTasks struct {
	prog *ebpf.Program
	runs sync.WaitGroup

	// bufs holds the runs' output buffers: shared, since a container's
	// runs write a few records each, and a buffer kept per cgroup would
	// hold memory for every container that ever read its stat.
	bufs sync.Pool

	mu      sync.Mutex
	cgroups map[string]*freshStates // by cgroup directory
}

// BPF commands and the cgroup iterator's order (include/uapi/linux/bpf.h),
// which cilium/ebpf's link package does not take for iterators.
const (
	bpfLinkCreate            = 28 // BPF_LINK_CREATE
	bpfIterCreate            = 33 // BPF_ITER_CREATE
	cgroupIterDescendantsPre = 2  // BPF_CGROUP_ITER_DESCENDANTS_PRE
)

// linkCreateIter is bpf_attr's link_create for an iterator.
type linkCreateIter struct {
	progFD, targetFD, attachType, flags uint32
	iterInfo                            uint64 // *cgroupIterInfo
	iterInfoLen                         uint32
	_                                   uint32
}

// cgroupIterInfo is bpf_iter_link_info's cgroup member.
type cgroupIterInfo struct {
	order, cgroupFD uint32
	cgroupID        uint64
}

// iterCreate is bpf_attr's iter_create.
type iterCreate struct {
	linkFD, flags uint32
}

// NewCgroupTasks loads the cgroup iterator and checks it by walking
// selfDir, the daemon's own cgroup directory in the hierarchy its callers'
// cgroups are looked up in, from a thread that must come out running. It
// fails before Linux 6.7 (no css_task kfuncs) and wherever BPFCounter
// fails.
func NewCgroupTasks(selfDir string) (*CgroupTasks, error) {
	prog, err := loadProgram("loadavg_cgroup_tasks")
	if err != nil {
		return nil, fmt.Errorf("loading the BPF cgroup iterator: %w", err)
	}
	w := &CgroupTasks{prog: prog, cgroups: map[string]*freshStates{}}
	w.bufs.New = func() any { b := make([]byte, 4096); return &b }
	if err := w.selfCheck(selfDir); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *CgroupTasks) selfCheck(dir string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out []byte
	states := map[int]byte{}
	if err := w.run(dir, &out, states); err != nil {
		return err
	}
	if tid := unix.Gettid(); states[tid] != 'R' {
		return fmt.Errorf("the BPF cgroup iterator does not show this thread (%d) running in %s", tid, dir)
	}
	return nil
}

// Fresh returns the task states of cgroup directory dir and the cgroups
// below it, as a run saw them at most maxAge before the call (see
// freshStates: runs are shared by the callers of one cgroup, and run ahead
// while they keep coming).
func (w *CgroupTasks) Fresh(dir string, maxAge time.Duration) (*TaskStates, error) {
	w.mu.Lock()
	f := w.cgroups[dir]
	if f == nil {
		f = &freshStates{run: func(states map[int]byte) error {
			buf := w.bufs.Get().(*[]byte)
			defer w.bufs.Put(buf)
			return w.run(dir, buf, states)
		}, runs: &w.runs}
		w.cgroups[dir] = f
	}
	w.mu.Unlock()
	return f.get(maxAge)
}

// Forget drops the snapshots of cgroups not asked about for idle.
func (w *CgroupTasks) Forget(idle time.Duration) {
	cutoff := time.Now().Add(-idle)
	w.mu.Lock()
	defer w.mu.Unlock()
	for dir, f := range w.cgroups {
		if f.lastAsked().Before(cutoff) {
			delete(w.cgroups, dir)
		}
	}
}

// run walks cgroup directory dir and those below it once, reading the
// output through *out, into states. The link and the iterator are made
// for the run and closed after it: nothing holds the cgroup between runs.
func (w *CgroupTasks) run(dir string, out *[]byte, states map[int]byte) error {
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	// On the heap, where it does not move while the kernel reads it
	// through a plain address.
	info := &cgroupIterInfo{order: cgroupIterDescendantsPre, cgroupFD: uint32(dfd)}
	attr := linkCreateIter{
		progFD:      uint32(w.prog.FD()),
		attachType:  uint32(ebpf.AttachTraceIter),
		iterInfo:    uint64(uintptr(unsafe.Pointer(info))),
		iterInfoLen: uint32(unsafe.Sizeof(*info)),
	}
	lfd, _, errno := unix.Syscall(unix.SYS_BPF, bpfLinkCreate, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	runtime.KeepAlive(info)
	unix.Close(dfd) // the link holds the cgroup
	if errno != 0 {
		return fmt.Errorf("attaching the BPF cgroup iterator to %s: %w", dir, errno)
	}
	ic := iterCreate{linkFD: uint32(lfd)}
	ifd, _, errno := unix.Syscall(unix.SYS_BPF, bpfIterCreate, uintptr(unsafe.Pointer(&ic)), unsafe.Sizeof(ic))
	unix.Close(int(lfd)) // the iterator holds the link
	if errno != 0 {
		return fmt.Errorf("starting the BPF cgroup iterator on %s: %w", dir, errno)
	}
	r := os.NewFile(ifd, "bpf cgroup iterator")
	defer r.Close()
	return readRecords(r, out, states)
}

// readRecords reads an iterator's records to the end through *out (grown
// as needed) and parses them into states.
func readRecords(r io.Reader, out *[]byte, states map[int]byte) error {
	if len(*out) == 0 {
		*out = make([]byte, 64<<10)
	}
	n := 0
	for {
		if n == len(*out) {
			*out = append(*out, make([]byte, len(*out))...)
		}
		m, err := r.Read((*out)[n:])
		n += m
		if err == io.EOF || (err == nil && m == 0) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the BPF iterator: %w", err)
		}
	}
	if err := ParseTaskRecords((*out)[:n], states); err != nil {
		return fmt.Errorf("BPF iterator: %w", err)
	}
	return nil
}

// Close waits for background runs and unloads the program.
func (w *CgroupTasks) Close() error {
	w.runs.Wait()
	return w.prog.Close()
}
