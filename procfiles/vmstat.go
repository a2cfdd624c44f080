package procfiles

import (
	"bytes"
	"fmt"
	"strconv"
)

// VMValue is one memory.stat value (v2 name) or memory.events' oom_kill.
type VMValue struct {
	Key   string
	Value uint64
}

// ContainerVM is what a container's /proc/vmstat is rendered from.
type ContainerVM struct {
	// Memory is the container's memory view, as its meminfo shows it:
	// nr_free_pages is its Free, the page-count lines its Stat.
	Memory ContainerMemory
	// Values are the cgroup's other memory.stat values by v2 name (sizes
	// in bytes, events as counts) and oom_kill, sorted by Key. An event
	// line missing here has no source: 0.
	Values []VMValue
	// HostIO is set when the container's I/O is the host's (its blkio or
	// io cgroup is the root): pgpgin and pgpgout are then the host's.
	HostIO bool
	// PgpgIn and PgpgOut are the KiB the container read from and wrote
	// to disks, as the kernel counts pgpgin and pgpgout.
	PgpgIn, PgpgOut uint64
	// PageSize is the size of a page; THPSize the size of a transparent
	// huge page (PMD), in which /proc/vmstat counts its *_hugepages lines.
	PageSize, THPSize uint64
}

func (c *ContainerVM) value(key string) uint64 {
	lo, hi := 0, len(c.Values)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c.Values[m].Key < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(c.Values) && c.Values[lo].Key == key {
		return c.Values[lo].Value
	}
	return 0
}

// RenderVMStat renders /proc/vmstat for a container: every line of the
// host's file, in its order, each either computed for the container, kept
// from the host, or 0 (see vmstatValue).
func RenderVMStat(host []byte, c ContainerVM) ([]byte, error) {
	b := make([]byte, 0, len(host))
	for n := 1; len(host) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(host, '\n'); i >= 0 {
			line, host = host[:i], host[i+1:]
		} else {
			line, host = host, nil
		}
		if len(line) == 0 {
			continue
		}
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 {
			return nil, fmt.Errorf("vmstat line %d: malformed %q", n, line)
		}
		name := line[:sp]
		hostVal, ok := parseDecimal(line[sp+1:])
		if !ok {
			return nil, fmt.Errorf("vmstat line %d: malformed value in %q", n, line)
		}
		b = append(b, name...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, vmstatValue(string(name), hostVal, &c), 10)
		b = append(b, '\n')
	}
	return b, nil
}

// vmstatValue is the container's value of one /proc/vmstat line; hostVal
// is the host's. A switch rather than a map: this runs for every one of
// the ~190 lines of every open (string(name) in a switch does not
// allocate). The README's vmstat table says why each line is what it is.
func vmstatValue(name string, hostVal uint64, c *ContainerVM) uint64 {
	s := &c.Memory.Stat
	pages := func(bytes uint64) uint64 { return bytes / max(c.PageSize, 1) }
	thps := func(bytes uint64) uint64 { return bytes / max(c.THPSize, 1) }
	switch name {
	// Page counts that mirror meminfo, from memory.stat's byte sizes.
	case "nr_free_pages":
		return pages(c.Memory.Free)
	case "nr_inactive_anon", "nr_zone_inactive_anon":
		return pages(s.InactiveAnon)
	case "nr_active_anon", "nr_zone_active_anon":
		return pages(s.ActiveAnon)
	case "nr_inactive_file", "nr_zone_inactive_file":
		return pages(s.InactiveFile)
	case "nr_active_file", "nr_zone_active_file":
		return pages(s.ActiveFile)
	case "nr_unevictable", "nr_zone_unevictable":
		return pages(s.Unevictable)
	case "nr_zone_write_pending":
		return pages(s.FileDirty + s.FileWriteback)
	case "nr_slab_reclaimable":
		return pages(s.SlabReclaimable)
	case "nr_slab_unreclaimable":
		return pages(s.SlabUnreclaimable)
	case "nr_anon_pages":
		return pages(s.Anon)
	case "nr_mapped":
		return pages(s.FileMapped)
	case "nr_file_pages":
		return pages(s.File)
	case "nr_dirty":
		return pages(s.FileDirty)
	case "nr_writeback":
		return pages(s.FileWriteback)
	case "nr_shmem":
		return pages(s.Shmem)
	case "nr_anon_transparent_hugepages":
		return thps(s.AnonTHP)
	case "nr_shmem_hugepages":
		return thps(c.value("shmem_thp"))
	case "nr_file_hugepages":
		return thps(c.value("file_thp"))
	case "nr_kernel_stack": // in KiB, as the kernel counts it
		return c.value("kernel_stack") / 1024
	case "nr_page_table_pages":
		return pages(c.value("pagetables"))
	case "nr_sec_page_table_pages":
		return pages(c.value("sec_pagetables"))
	case "nr_swapcached":
		return pages(c.value("swapcached"))
	case "nr_hugetlb":
		return pages(c.value("hugetlb"))

	// Disk I/O in KiB.
	case "pgpgin":
		if c.HostIO {
			return hostVal
		}
		return c.PgpgIn
	case "pgpgout":
		if c.HostIO {
			return hostVal
		}
		return c.PgpgOut

	// The machine's, not any task's: writeback thresholds, the kernel's
	// own page maps, the hypervisor's balloon, the administrator's
	// drop_caches writes.
	case "nr_dirty_threshold", "nr_dirty_background_threshold",
		"nr_memmap_pages", "nr_memmap_boot_pages",
		"direct_map_level2_splits", "direct_map_level3_splits",
		"direct_map_level2_collapses", "direct_map_level3_collapses",
		"nr_balloon_pages", "balloon_inflate", "balloon_deflate", "balloon_migrate",
		"drop_pagecache", "drop_slab":
		return hostVal
	}
	// Events memory.stat counts by the same name (pgfault, pswpin,
	// workingset_*, ...) and oom_kill; every other line (activity of the
	// machine's tasks with no per-cgroup source) is 0, so that a
	// container never sees the host's activity as its own.
	return c.value(name)
}
