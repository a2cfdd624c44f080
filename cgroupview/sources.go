package cgroupview

// Sources names, for people, the files and keys a Reader reads: what
// `cgprocfs show --explain` prints beside the values. It lives here, with
// the readers, so that nothing else has to know a version's file names.
type Sources struct {
	// MemoryLimit, MemoryUsage and Swap are the memory files.
	MemoryLimit, MemoryUsage, Swap string
	// CPUTime is where user and system time come from, IO the per-disk
	// counters.
	CPUTime, IO string
	// StatKeys maps a MemoryStat field's name to its memory.stat key, or
	// to a note where the version has none.
	StatKeys map[string]string
}

// StatKey is the memory.stat key of MemoryStat's field.
func (s Sources) StatKey(field string) string { return s.StatKeys[field] }

func (r v1Reader) Sources() Sources {
	return Sources{
		MemoryLimit: "memory.limit_in_bytes",
		MemoryUsage: "memory.usage_in_bytes",
		Swap:        "memory.memsw.usage_in_bytes and memory.memsw.limit_in_bytes, less memory's",
		CPUTime:     "cpuacct.usage_all per host CPU (time on CPUs not shown spread evenly)",
		IO:          "blkio.throttle.io_serviced_recursive and io_service_bytes_recursive (blkio.bfq.* where present)",
		StatKeys: map[string]string{
			"Anon": "total_rss", "AnonTHP": "total_rss_huge", "File": "total_cache", "FileMapped": "total_mapped_file",
			"Shmem": "total_shmem", "FileDirty": "total_dirty", "FileWriteback": "total_writeback",
			"ActiveAnon": "total_active_anon", "InactiveAnon": "total_inactive_anon", "ActiveFile": "total_active_file",
			"InactiveFile": "total_inactive_file", "Unevictable": "total_unevictable",
			"Slab": "(none on v1: 0)", "SlabReclaimable": "(none on v1: 0)", "SlabUnreclaimable": "(none on v1: 0)",
		},
	}
}

func (r v2Reader) Sources() Sources {
	return Sources{
		MemoryLimit: "memory.max",
		MemoryUsage: "memory.current",
		Swap:        "memory.swap.current and memory.swap.max",
		CPUTime:     "cpu.stat user_usec and system_usec, spread evenly over the CPUs shown",
		IO:          "io.stat (rios, wios, dios, rbytes, wbytes, dbytes)",
		StatKeys: map[string]string{
			"Anon": "anon", "AnonTHP": "anon_thp", "File": "file", "FileMapped": "file_mapped",
			"Shmem": "shmem", "FileDirty": "file_dirty", "FileWriteback": "file_writeback",
			"ActiveAnon": "active_anon", "InactiveAnon": "inactive_anon", "ActiveFile": "active_file",
			"InactiveFile": "inactive_file", "Unevictable": "unevictable",
			"Slab": "slab", "SlabReclaimable": "slab_reclaimable", "SlabUnreclaimable": "slab_unreclaimable",
		},
	}
}
