package loadavg

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// tasksObj is the compiled loadavg/bpf/tasks.bpf.c (hack/gen-bpf.sh).
//
//go:embed bpf/tasks.bpf.o
var tasksObj []byte

// Kinds of the iterator's records (tasks.bpf.c).
const (
	kindRunning         = 1
	kindUninterruptible = 2
	taskRecordSize      = 8
)

// BPFCounter counts like ThreadsCounter, from the cgroup's thread list, but
// takes the threads' states from one BPF task iterator run per round
// instead of one /proc/<tid>/stat read per thread: the iterator
// (bpf/tasks.bpf.c) walks every task in the kernel and writes the tid of
// each task that the kernel's load average counts at that moment (runnable,
// or blocked with TASK_UNINTERRUPTIBLE and neither TASK_NOLOAD nor
// TASK_FROZEN), so a round costs one kernel walk plus one thread-list read
// per cgroup, on cgroup v1 and v2 alike.
//
// The iterator runs lazily, on the first Count after EndRound (or after
// creation): the tracker calls Count for every cgroup of a round and then
// EndRound, so each round runs it once, before its counts. Threads that
// start between the iterator run and their cgroup's list read count as
// sleeping, as they would have been a moment earlier.
//
// Tids are the initial pid namespace's (task->pid), the numbers a host
// cgroup's thread list shows a daemon in the host's pid namespace;
// NewBPFCounter checks that by finding its own running thread.
type BPFCounter struct {
	list threadList
	prog *ebpf.Program
	iter *link.Iter

	stale  bool
	states map[int]byte // tid -> 'R' or 'D', this round
	out    []byte

	// live is what Fresh serves, apart from the rounds, and liveOut
	// the output buffer of its runs, which never overlap.
	live    freshStates
	liveOut []byte
	runs    sync.WaitGroup
}

// TaskStates is the tasks that the kernel's load average counts at one
// moment (one run of an iterator), the host's or one cgroup tree's: States
// maps their tids to 'R' (runnable) or 'D' (uninterruptible). Shared
// between readers: never changed.
type TaskStates struct {
	Taken  time.Time
	States map[int]byte
}

// NewBPFCounter loads and attaches the task iterator and runs it once as a
// check. It fails where BPF cannot work: no kernel BTF, a kernel before
// 5.14 (no task_struct.__state) or without task iterators (5.8), no
// CAP_BPF/CAP_SYS_ADMIN, or a pid namespace other than the initial one.
func NewBPFCounter(fs *kernelfs.FS, tidsFile string) (*BPFCounter, error) {
	prog, err := loadProgram("loadavg_tasks")
	if err != nil {
		return nil, fmt.Errorf("loading the BPF task iterator: %w", err)
	}
	it, err := link.AttachIter(link.IterOptions{Program: prog})
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("attaching the BPF task iterator: %w", err)
	}
	c := &BPFCounter{
		list: threadList{fs: fs, file: tidsFile}, prog: prog, iter: it, stale: true,
		states: map[int]byte{},
	}
	c.live = freshStates{run: func(states map[int]byte) error { return c.runInto(&c.liveOut, states) }, runs: &c.runs}
	if err := c.selfCheck(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// loadProgram loads program name of the embedded object (bpf/tasks.bpf.c).
// CO-RE relocations resolve against the running kernel's BTF
// (/sys/kernel/btf/vmlinux) here, and kfunc calls against its functions.
func loadProgram(name string) (*ebpf.Program, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(tasksObj))
	if err != nil {
		return nil, fmt.Errorf("parsing the embedded BPF object: %w", err)
	}
	ps, ok := spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("the embedded BPF object has no %s program", name)
	}
	return ebpf.NewProgram(ps)
}

// selfCheck runs the iterator from a locked thread, which is running while
// it reads, so the thread's own tid must come out as R: this proves the
// program reads __state and pid right and that tids are ours.
func (c *BPFCounter) selfCheck() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.run(); err != nil {
		return err
	}
	c.stale = true
	if tid := unix.Gettid(); c.states[tid] != 'R' {
		return fmt.Errorf("the BPF task iterator does not show this thread (%d) running; is cgprocfs outside the host's pid namespace?", tid)
	}
	return nil
}

func (c *BPFCounter) Name() string { return "bpf" }

// run reads the iterator once into c.states.
func (c *BPFCounter) run() error {
	clear(c.states)
	return c.runInto(&c.out, c.states)
}

// runInto runs the iterator once, reading its output through *out (grown
// as needed), into states. Each run opens an iterator of its own, so the
// rounds' runs and Fresh's may overlap.
func (c *BPFCounter) runInto(out *[]byte, states map[int]byte) error {
	r, err := c.iter.Open()
	if err != nil {
		return fmt.Errorf("starting the BPF task iterator: %w", err)
	}
	defer r.Close()
	return readRecords(r, out, states)
}

// Fresh returns the host's task states as a run of the iterator saw them
// at most maxAge before the call (see freshStates). Safe for concurrent
// use, apart from the tracker's rounds (which it never disturbs).
func (c *BPFCounter) Fresh(maxAge time.Duration) (*TaskStates, error) {
	return c.live.get(maxAge)
}

// ParseTaskRecords parses the task iterator's output, records of a native
// endian u32 tid and u32 kind (1 runnable, 2 uninterruptible), into states
// (tid -> 'R' or 'D').
func ParseTaskRecords(data []byte, states map[int]byte) error {
	if len(data)%taskRecordSize != 0 {
		return fmt.Errorf("output of %d bytes is not whole %d-byte records", len(data), taskRecordSize)
	}
	for ; len(data) > 0; data = data[taskRecordSize:] {
		tid := binary.NativeEndian.Uint32(data)
		kind := binary.NativeEndian.Uint32(data[4:])
		if tid == 0 || tid > 1<<30 {
			// Idle tasks (pid 0) are not iterated; a tid is at most
			// PID_MAX_LIMIT (4M).
			return fmt.Errorf("bad tid %d", tid)
		}
		switch kind {
		case kindRunning:
			states[int(tid)] = 'R'
		case kindUninterruptible:
			states[int(tid)] = 'D'
		default:
			return fmt.Errorf("tid %d: bad kind %d", tid, kind)
		}
	}
	return nil
}

func (c *BPFCounter) Count(dirfd int, dir string) (Counts, error) {
	if c.stale {
		if err := c.run(); err != nil {
			return Counts{}, err
		}
		c.stale = false
	}
	tids, err := c.list.read(dirfd, dir)
	if err != nil {
		return Counts{}, err
	}
	return countStates(tids, c.states), nil
}

// countStates counts tids by their states in the round's set; a tid not
// in it is sleeping (or stopped, or a zombie): in Total only.
func countStates(tids []int, states map[int]byte) Counts {
	n := Counts{Total: uint64(len(tids))}
	for _, tid := range tids {
		n.NoteNewest(tid)
		switch states[tid] {
		case 'R':
			n.Running++
		case 'D':
			n.Uninterruptible++
		}
	}
	return n
}

// States runs the iterator now and returns a copy of what it found (tid ->
// 'R' or 'D'), for tests that compare it with /proc.
func (c *BPFCounter) States() (map[int]byte, error) {
	if err := c.run(); err != nil {
		return nil, err
	}
	c.stale = true
	m := make(map[int]byte, len(c.states))
	for k, v := range c.states {
		m[k] = v
	}
	return m, nil
}

// EndRound makes the next Count run the iterator again.
func (c *BPFCounter) EndRound() { c.stale = true }

func (c *BPFCounter) Close() error {
	c.runs.Wait()
	var errs []error
	if c.iter != nil {
		errs = append(errs, c.iter.Close())
	}
	if c.prog != nil {
		errs = append(errs, c.prog.Close())
	}
	return errors.Join(errs...)
}
