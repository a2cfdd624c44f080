package cgroupview

// Memory is what a memory cgroup says about itself, normalised over v1 and
// v2. Limits are already the smallest over the cgroup and its ancestors.
type Memory struct {
	// Limit is the memory limit in bytes, or NoLimit.
	Limit uint64
	// Usage is the memory charged to the cgroup in bytes.
	Usage uint64
	// SwapAccounting is false when the kernel does not account swap (no
	// memsw files on v1, no memory.swap.* files on v2).
	SwapAccounting bool
	// SwapLimit is how much the cgroup may swap, or NoLimit.
	SwapLimit uint64
	// SwapUsage is the cgroup's swap in use, in bytes.
	SwapUsage uint64
	Stat      MemoryStat
}

// MemoryStat holds the memory.stat counters cgprocfs uses, in bytes. v1
// fills them from the hierarchical total_* keys, v2 from its own keys.
type MemoryStat struct {
	Anon, AnonTHP                   uint64
	File, FileMapped                uint64
	Shmem, FileDirty, FileWriteback uint64
	ActiveAnon, InactiveAnon        uint64
	ActiveFile, InactiveFile        uint64
	Unevictable                     uint64
	Slab, SlabReclaimable           uint64
	SlabUnreclaimable               uint64
}
