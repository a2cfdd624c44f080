package cgroupview

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// VMCounters are the values of a memory cgroup that /proc/vmstat also
// shows and Memory does not hold, index for index with the names VMKey
// gives: memory.stat keys by their v2 names (v1: the hierarchical total_*
// keys, prefix dropped) and memory.events' oom_kill. A key the kernel does
// not print is 0. Sizes are in bytes, events are counts.
type VMCounters [NumVMKeys]uint64

// vmKeys are the names, sorted so that a key is found by binary search
// while memory.stat is parsed, without a map per open. For events the name
// is also the /proc/vmstat line's: memory.stat prints them by the kernel's
// vm_event_name. Kernels differ in which of them they print (6.1 has no
// pswpin/pswpout; 5.8 and before have workingset_refault without the
// _anon/_file split).
var vmKeys = [...]struct {
	name  string
	event bool
}{
	{"file_thp", false},
	{"hugetlb", false},
	{"kernel_stack", false},
	{"numa_hint_faults", true},
	{"numa_pages_migrated", true},
	{"numa_pte_updates", true},
	{"oom_kill", true},
	{"pagetables", false},
	{"pgactivate", true},
	{"pgdeactivate", true},
	{"pgdemote_direct", true},
	{"pgdemote_khugepaged", true},
	{"pgdemote_kswapd", true},
	{"pgdemote_proactive", true},
	{"pgfault", true},
	{"pglazyfree", true},
	{"pglazyfreed", true},
	{"pgmajfault", true},
	{"pgpromote_success", true},
	{"pgrefill", true},
	{"pgscan_direct", true},
	{"pgscan_khugepaged", true},
	{"pgscan_kswapd", true},
	{"pgscan_proactive", true},
	{"pgsteal_direct", true},
	{"pgsteal_khugepaged", true},
	{"pgsteal_kswapd", true},
	{"pgsteal_proactive", true},
	{"pswpin", true},
	{"pswpout", true},
	{"sec_pagetables", false},
	{"shmem_thp", false},
	{"swapcached", false},
	{"swpin_zero", true},
	{"swpout_zero", true},
	{"thp_collapse_alloc", true},
	{"thp_fault_alloc", true},
	{"thp_swpout", true},
	{"thp_swpout_fallback", true},
	{"workingset_activate", true},
	{"workingset_activate_anon", true},
	{"workingset_activate_file", true},
	{"workingset_nodereclaim", true},
	{"workingset_refault", true},
	{"workingset_refault_anon", true},
	{"workingset_refault_file", true},
	{"workingset_restore", true},
	{"workingset_restore_anon", true},
	{"workingset_restore_file", true},
	{"zswpin", true},
	{"zswpout", true},
	{"zswpwb", true},
}

// NumVMKeys is the number of VMCounters.
const NumVMKeys = len(vmKeys)

// VMKey is the name of the i-th VMCounters value and whether it counts
// events (never decreasing while the cgroup lives) rather than a size.
func VMKey(i int) (name string, event bool) { return vmKeys[i].name, vmKeys[i].event }

// vmKeyIndex finds key among vmKeys.
func vmKeyIndex(key []byte) (int, bool) {
	lo, hi := 0, len(vmKeys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if vmKeys[m].name < string(key) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(vmKeys) && vmKeys[lo].name == string(key)
}

// ParseVMCountersV2 fills the VMCounters a v2 memory.stat holds.
func ParseVMCountersV2(data []byte) (VMCounters, error) {
	var vm VMCounters
	err := parseFlatKeyedBytes(data, func(k []byte, v uint64) {
		if i, ok := vmKeyIndex(k); ok && vmKeys[i].name != "oom_kill" {
			vm[i] = v
		}
	})
	return vm, err
}

// ParseVMCountersV1 fills the VMCounters a v1 memory.stat holds, from its
// hierarchical total_* keys. Its total_pgpgin and total_pgpgout are not
// among them: v1 counts there the pages charged to and uncharged from the
// cgroup, not the KiB read from and written to disks that /proc/vmstat's
// pgpgin and pgpgout count.
func ParseVMCountersV1(data []byte) (VMCounters, error) {
	var vm VMCounters
	err := parseFlatKeyedBytes(data, func(k []byte, v uint64) {
		k, ok := bytes.CutPrefix(k, []byte("total_"))
		if !ok {
			return
		}
		if i, ok := vmKeyIndex(k); ok && vmKeys[i].name != "oom_kill" {
			vm[i] = v
		}
	})
	return vm, err
}

// oomKillIndex is oom_kill's index in VMCounters.
func oomKillIndex() int {
	i, _ := vmKeyIndex([]byte("oom_kill"))
	return i
}

// readOOMKill reads the oom_kill line of a flat-keyed events file (v2
// memory.events, v1 memory.oom_control) of the i-th directory of ds into
// vm; a missing file or line leaves 0.
func (ds dirSet) readOOMKill(i int, name string, buf *[]byte, vm *VMCounters) error {
	data, err := ds.read(i, name, buf)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	oom := oomKillIndex()
	err = parseFlatKeyedBytes(data, func(k []byte, v uint64) {
		if string(k) == "oom_kill" {
			vm[oom] = v
		}
	})
	if err != nil {
		return fmt.Errorf("%s/%s: %w", ds.Paths[i], name, err)
	}
	return nil
}

// MemoryVM is Memory plus the cgroup's VMCounters, from one reading of
// memory.stat. v2's memory.events counts OOM kills in the cgroup and its
// descendants; v1's memory.oom_control only in the cgroup itself.
func (r v2Reader) MemoryVM(c *Cgroup) (Memory, VMCounters, error) {
	var vm VMCounters
	m, err := r.memory(c, &vm)
	return m, vm, err
}

func (r v1Reader) MemoryVM(c *Cgroup) (Memory, VMCounters, error) {
	var vm VMCounters
	m, err := r.memory(c, &vm)
	return m, vm, err
}
