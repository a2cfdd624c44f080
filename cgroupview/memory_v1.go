package cgroupview

import (
	"errors"
	"fmt"
	"os"
)

func (r v1Reader) Memory(c *Cgroup) (Memory, error) { return r.memory(c, nil) }

// memory reads the memory state and, when vm is not nil, the VMCounters
// from the same reading of memory.stat.
func (r v1Reader) memory(c *Cgroup, vm *VMCounters) (Memory, error) {
	ds, buf, done, err := r.holdAncestors(c, "memory")
	if err != nil {
		return Memory{}, err
	}
	defer done()
	var m Memory
	if m.Limit, err = ds.minLimit("memory.limit_in_bytes", buf); err != nil {
		return m, fmt.Errorf("memory limit: %w", err)
	}
	if m.Usage, err = ds.readUint(0, "memory.usage_in_bytes", buf); err != nil {
		return m, fmt.Errorf("memory usage: %w", err)
	}
	data, err := ds.read(0, "memory.stat", buf)
	if err != nil {
		return m, fmt.Errorf("memory stat: %w", err)
	}
	if m.Stat, err = ParseMemoryStatV1(data); err != nil {
		return m, fmt.Errorf("%s/memory.stat: %w", ds.Paths[0], err)
	}
	if vm != nil {
		if *vm, err = ParseVMCountersV1(data); err != nil {
			return m, fmt.Errorf("%s/memory.stat: %w", ds.Paths[0], err)
		}
		if err := ds.readOOMKill(0, "memory.oom_control", buf, vm); err != nil {
			return m, fmt.Errorf("memory oom_control: %w", err)
		}
	}

	// memsw counts memory plus swap; without swap accounting its files
	// are absent.
	memswUsage, err := ds.readUint(0, "memory.memsw.usage_in_bytes", buf)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("memsw usage: %w", err)
	}
	memswLimit, err := ds.minLimit("memory.memsw.limit_in_bytes", buf)
	if err != nil {
		return m, fmt.Errorf("memsw limit: %w", err)
	}
	m.SwapAccounting = true
	m.SwapUsage = memswUsage - min(memswUsage, m.Usage)
	switch {
	case memswLimit == NoLimit:
		m.SwapLimit = NoLimit
	case m.Limit == NoLimit:
		// memsw is limited but memory is not: memory can take it all,
		// so swap gets at most that same amount.
		m.SwapLimit = memswLimit
	default:
		m.SwapLimit = memswLimit - min(memswLimit, m.Limit)
	}
	return m, nil
}

// ParseMemoryStatV1 reads the hierarchical total_* keys of a v1
// memory.stat, which include descendants (the non-total keys do not).
func ParseMemoryStatV1(data []byte) (MemoryStat, error) {
	var s MemoryStat
	err := parseFlatKeyedBytes(data, func(k []byte, v uint64) {
		switch string(k) {
		case "total_rss":
			s.Anon = v
		case "total_rss_huge":
			s.AnonTHP = v
		case "total_cache":
			s.File = v
		case "total_mapped_file":
			s.FileMapped = v
		case "total_shmem":
			s.Shmem = v
		case "total_dirty":
			s.FileDirty = v
		case "total_writeback":
			s.FileWriteback = v
		case "total_active_anon":
			s.ActiveAnon = v
		case "total_inactive_anon":
			s.InactiveAnon = v
		case "total_active_file":
			s.ActiveFile = v
		case "total_inactive_file":
			s.InactiveFile = v
		case "total_unevictable":
			s.Unevictable = v
		}
	})
	return s, err
}
