package cgroupview

import (
	"errors"
	"fmt"
	"os"
)

func (r v2Reader) Memory(c *Cgroup) (Memory, error) { return r.memory(c, nil) }

// memory reads the memory state and, when vm is not nil, the VMCounters
// from the same reading of memory.stat.
func (r v2Reader) memory(c *Cgroup, vm *VMCounters) (Memory, error) {
	ds, buf, err := r.holdAncestors(c, "memory")
	if err != nil {
		return Memory{}, err
	}
	defer r.letGo(ds, buf)
	var m Memory
	// The root has no memory.max; a missing file is no limit.
	if m.Limit, err = ds.minLimit("memory.max", buf); err != nil {
		return m, fmt.Errorf("memory limit: %w", err)
	}
	if m.Usage, err = ds.readUint(0, "memory.current", buf); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// No memory controller here: see readMemoryV2Nearest.
			return r.memoryNearest(c, ds.Paths, vm)
		}
		return m, fmt.Errorf("memory usage: %w", err)
	}
	data, err := ds.read(0, "memory.stat", buf)
	if err != nil {
		return m, fmt.Errorf("memory stat: %w", err)
	}
	if m.Stat, err = ParseMemoryStatV2(data); err != nil {
		return m, fmt.Errorf("%s/memory.stat: %w", ds.Paths[0], err)
	}
	if vm != nil {
		if *vm, err = ParseVMCountersV2(data); err != nil {
			return m, fmt.Errorf("%s/memory.stat: %w", ds.Paths[0], err)
		}
		if err := ds.readOOMKill(0, "memory.events", buf, vm); err != nil {
			return m, fmt.Errorf("memory events: %w", err)
		}
	}

	m.SwapUsage, err = ds.readUint(0, "memory.swap.current", buf)
	if errors.Is(err, os.ErrNotExist) {
		return m, nil // no swap accounting
	}
	if err != nil {
		return m, fmt.Errorf("swap usage: %w", err)
	}
	m.SwapAccounting = true
	if m.SwapLimit, err = ds.minLimit("memory.swap.max", buf); err != nil {
		return m, fmt.Errorf("swap limit: %w", err)
	}
	return m, nil
}

// ParseMemoryStatV2 reads a v2 memory.stat, which is hierarchical already.
func ParseMemoryStatV2(data []byte) (MemoryStat, error) {
	var s MemoryStat
	err := parseFlatKeyedBytes(data, func(k []byte, v uint64) {
		switch string(k) {
		case "anon":
			s.Anon = v
		case "anon_thp":
			s.AnonTHP = v
		case "file":
			s.File = v
		case "file_mapped":
			s.FileMapped = v
		case "shmem":
			s.Shmem = v
		case "file_dirty":
			s.FileDirty = v
		case "file_writeback":
			s.FileWriteback = v
		case "active_anon":
			s.ActiveAnon = v
		case "inactive_anon":
			s.InactiveAnon = v
		case "active_file":
			s.ActiveFile = v
		case "inactive_file":
			s.InactiveFile = v
		case "unevictable":
			s.Unevictable = v
		case "slab":
			s.Slab = v
		case "slab_reclaimable":
			s.SlabReclaimable = v
		case "slab_unreclaimable":
			s.SlabUnreclaimable = v
		}
	})
	return s, err
}
