package cgroupview

import (
	"errors"
	"fmt"
	"os"
)

func (r v1Reader) Memory(c *Cgroup) (Memory, error) { return r.memory(c, nil) }

// memory reads the memory state and, when vm is not nil, the VMCounters
// from the same reading of memory.stat.
//
// The limits come from memory.stat's hierarchical_memory_limit and
// hierarchical_memsw_limit: the kernel's own smallest limit from the cgroup
// up to the real root (above a cgroup namespace's root too), in the
// reading of memory.stat that the figures need anyway. That saves reading
// two files per ancestor on every open (eight for a Kubernetes container
// four levels down). A memory.stat without them is met with a walk of the
// ancestors' limit files.
func (r v1Reader) memory(c *Cgroup, vm *VMCounters) (Memory, error) {
	dirs, err := c.ancestors("memory")
	if err != nil {
		return Memory{}, err
	}
	ds := r.openDirs(dirs[:1]) // the cgroup's own directory (shared list)
	defer ds.release()
	buf := r.fs.GetBuf()
	defer r.fs.PutBuf(buf)
	var m Memory
	if m.Usage, err = ds.readUint(0, "memory.usage_in_bytes", buf); err != nil {
		return m, fmt.Errorf("memory usage: %w", err)
	}
	data, err := ds.read(0, "memory.stat", buf)
	if err != nil {
		return m, fmt.Errorf("memory stat: %w", err)
	}
	var limits hierarchicalLimits
	if m.Stat, limits, err = parseMemoryStatV1(data); err != nil {
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
	if m.Limit, err = r.limitV1(c, limits.memory, limits.hasMemory, "memory.limit_in_bytes"); err != nil {
		return m, fmt.Errorf("memory limit: %w", err)
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
	memswLimit, err := r.limitV1(c, limits.memsw, limits.hasMemsw, "memory.memsw.limit_in_bytes")
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

// hierarchicalLimits are memory.stat's hierarchical limits; has* is false
// where the file has no such line.
type hierarchicalLimits struct {
	memory, memsw       uint64
	hasMemory, hasMemsw bool
}

// limitBytesV1 is a limit as memory.stat writes it: bytes, PAGE_COUNTER_MAX
// pages of them for none (as the limit files, ParseLimit).
func limitBytesV1(v uint64) uint64 {
	if v >= v1Unlimited {
		return NoLimit
	}
	return v
}

// limitV1 is the hierarchical limit when memory.stat gave one (has), else
// the smallest of file over c's ancestors.
func (r v1Reader) limitV1(c *Cgroup, hierarchical uint64, has bool, file string) (uint64, error) {
	if has {
		return hierarchical, nil
	}
	ds, buf, err := r.holdAncestors(c, "memory")
	if err != nil {
		return 0, err
	}
	defer r.letGo(ds, buf)
	return ds.minLimit(file, buf)
}

// ParseMemoryStatV1 reads the hierarchical total_* keys of a v1
// memory.stat, which include descendants (the non-total keys do not).
func ParseMemoryStatV1(data []byte) (MemoryStat, error) {
	s, _, err := parseMemoryStatV1(data)
	return s, err
}

// parseMemoryStatV1 is ParseMemoryStatV1 and the hierarchical limits, in
// one pass over the file.
func parseMemoryStatV1(data []byte) (MemoryStat, hierarchicalLimits, error) {
	var s MemoryStat
	var l hierarchicalLimits
	err := parseFlatKeyedBytes(data, func(k []byte, v uint64) {
		switch string(k) {
		case "hierarchical_memory_limit":
			l.memory, l.hasMemory = limitBytesV1(v), true
		case "hierarchical_memsw_limit":
			l.memsw, l.hasMemsw = limitBytesV1(v), true
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
	return s, l, err
}
