package cgroupview

import "github.com/cgprocfs/cgprocfs/procfiles"

// Memory is what a memory cgroup says about itself, normalised over v1 and
// v2. Limits are already the smallest over the cgroup and its ancestors;
// NoLimit (math.MaxUint64) when there is none. It is defined once, in
// procfiles, as the memory view's input: cgroupview fills it, the renderer
// takes it as it is.
type Memory = procfiles.CgroupMemory

// MemoryStat holds the memory.stat counters cgprocfs uses, in bytes. v1
// fills them from the hierarchical total_* keys, v2 from its own keys.
type MemoryStat = procfiles.MemoryStat
