package cgroupview

import (
	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// Reader reads what a cgroup says, normalised over cgroup v1 and v2. Which
// of the two is chosen once, by New, from the layout found: callers never
// name a controller or a version's file.
type Reader interface {
	// Hierarchy is where the cgroups are.
	Hierarchy() *Hierarchy
	// ParseProcCgroup parses a /proc/<pid>/cgroup file.
	ParseProcCgroup(data []byte) (*Cgroup, error)
	// Memory is the memory state, limits already the smallest over the
	// cgroup and its ancestors.
	Memory(c *Cgroup) (Memory, error)
	// CPUUsage is the CPU time used by the cgroup and its descendants.
	CPUUsage(c *Cgroup) (CPUUsage, error)
	// CPUQuota is the tightest CFS quota up the tree in whole CPUs, 0
	// for none.
	CPUQuota(c *Cgroup) (int, error)
	// CPUSet is the effective cpuset; nil means every CPU.
	CPUSet(c *Cgroup) ([]int, error)
	// IO is the per-disk I/O of the cgroup and its descendants.
	IO(c *Cgroup) (IO, error)
	// MemoryVM is Memory plus what /proc/vmstat shows of the memory
	// cgroup, from one reading of memory.stat.
	MemoryVM(c *Cgroup) (Memory, VMCounters, error)
	// Pressure is the cgroup's <res>.pressure file as the kernel wrote
	// it, ErrNoPressure when no cgroup file has it.
	Pressure(c *Cgroup, res PressureResource) ([]byte, error)
	// ThreadsFile names the file listing a cgroup's own threads.
	ThreadsFile() string
	// Sources names the files and keys the reader reads, for people.
	Sources() Sources
}

// New finds the cgroup layout under root and returns its reader, which
// reads through fs.
func New(root string, fs *kernelfs.FS) (Reader, error) {
	h, err := Detect(root)
	if err != nil {
		return nil, err
	}
	return NewReader(h, fs), nil
}

// NewReader returns the reader of hierarchy h.
func NewReader(h *Hierarchy, fs *kernelfs.FS) Reader {
	if h.Mode == Unified {
		return v2Reader{reader{h: h, files: files{fs}}}
	}
	return v1Reader{reader{h: h, files: files{fs}}}
}

// reader is what both readers share: the hierarchy and the file access.
type reader struct {
	h *Hierarchy
	files
}

func (r reader) Hierarchy() *Hierarchy { return r.h }
func (r reader) ParseProcCgroup(data []byte) (*Cgroup, error) {
	return ParseProcCgroup(r.h, data)
}

// v1Reader reads cgroup v1: one hierarchy per controller, the hierarchical
// total_* and *_recursive files.
type v1Reader struct{ reader }

func (r v1Reader) ThreadsFile() string { return "tasks" }

// v2Reader reads cgroup v2: one tree, every controller's files side by side.
type v2Reader struct{ reader }

func (r v2Reader) ThreadsFile() string { return "cgroup.threads" }
